"""Embedded models: the procedural shapes dataset, the shapes network and its training.

The weights of two seeds ship in `weights/` with a model card each; `distillgen zoo train`
retrains them from scratch, deterministically.
"""
