"""Typed failures that every front end (TUI, CLI) can explain to a person.

Each error carries a one-line message meant for the user; `hint` says what to do.
"""

from __future__ import annotations


class SdtuiError(Exception):
    """Base of every failure sdtui explains to the user."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ValidationError(SdtuiError, ValueError):
    """A field of a request or setting is out of range or malformed."""

    exit_code = 2

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class ModelNotFoundError(SdtuiError):
    """No model at that name, id or path."""


class ModelOfflineError(SdtuiError):
    """The model is not cached and the hub cannot be reached (or HF_HUB_OFFLINE is set)."""


class GatedModelError(SdtuiError):
    """The repository needs an accepted licence and a token."""


class UnsafeCheckpointError(SdtuiError):
    """A pickle checkpoint (.ckpt, .pt, .bin) was given without the explicit opt-in."""

    exit_code = 2


class BadCheckpointError(SdtuiError):
    """The checkpoint file is damaged, truncated or not a Stable Diffusion model."""


class OutOfMemoryError(SdtuiError):
    """The device ran out of memory; the hint says what to lower or turn on."""


class GenerationCancelled(SdtuiError):
    """The user cancelled a running generation; nothing was saved."""

    exit_code = 130

    def __init__(self, message: str = "generation cancelled") -> None:
        super().__init__(message)


class SaveError(SdtuiError):
    """An image could not be written to the gallery (disk full, read-only folder)."""
