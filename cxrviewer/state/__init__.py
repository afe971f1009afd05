"""Qt-free evented application state (session, overlay settings, AI session, read-first flow) that widgets bind to."""
