"""Parsing: Markdown files to `Document`s. Knows nothing of models or rendering."""

from distillgen.source.document import Directive, Document, Role, parse_document

__all__ = ["Directive", "Document", "Role", "parse_document"]
