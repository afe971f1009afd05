"""The inference worker process and the viewer's Qt-free client for it."""
