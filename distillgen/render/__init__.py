"""Rendering: checked documents to HTML pages. Knows nothing of torch."""
