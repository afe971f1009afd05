"""Small reusable widgets (no application state of their own)."""
