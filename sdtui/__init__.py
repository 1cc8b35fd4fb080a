"""sdtui: a keyboard-driven terminal app for Stable Diffusion."""

__version__ = "0.1.0"
