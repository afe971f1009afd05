"""The image view: canvas, its transforms, overlay item, measurement tools, loupe, corner text, compare pane."""
