"""Dialogs: about, model card, keyboard shortcuts, practice setup, score sheet, My Reads."""
