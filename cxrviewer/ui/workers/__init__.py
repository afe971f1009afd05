"""Qt bridges to work off the GUI thread: image loader and folder scanner, thumbnails, the inference worker process."""
