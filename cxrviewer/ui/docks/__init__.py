"""Dock panels: study browser, DICOM tags, AI panel and heat-map controls, read-first panel, problems."""
