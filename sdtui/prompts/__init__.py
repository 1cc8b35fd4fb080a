"""Prompt craft: expansion, styles, wildcards and weighting."""
