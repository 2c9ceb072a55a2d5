"""Page templates, static assets and the `distillgen new` scaffold, shipped as package data."""
