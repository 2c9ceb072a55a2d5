"""distillgen: build Distill-style interpretability articles from Markdown."""

__version__ = "0.1.0"
