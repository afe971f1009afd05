"""The window shell: the application, main window, action registry, menus, settings, theme, reading room."""
