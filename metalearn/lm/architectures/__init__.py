"""Decoder architectures, one module each; every module registers an
:class:`~metalearn.lm.config.Architecture` in :data:`~metalearn.lm.config.ARCHITECTURES`."""
