"""Tinker-shaped fine-tuning primitives over metalearn's decoder LM (in-process), with the
official SDK's types; losses in :mod:`metalearn.tinker.losses`."""
