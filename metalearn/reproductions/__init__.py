"""Reproduction logic driven by the thin binaries of ``experiments/``: the reports of the
``launch/reproduce/`` scripts, their bars, and the experiments that are not one meta-training run."""
