"""Features of the window, one module each. Each gets the state models it needs and a `ui.shell.Shell`
(status bar, notices, docks, menu actions by menu id), never the MainWindow itself."""
