"""Model loading and image generation (torch and diffusers are imported lazily)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sdtui.engine.engine import Engine, LoadedModel

__all__ = ["Engine", "LoadedModel"]


def __getattr__(name: str) -> Any:
    # `import sdtui.engine` stays cheap; the engine module pulls in nothing heavy
    # at import either, but this keeps the package safe to import anywhere.
    if name in __all__:
        from sdtui.engine import engine

        return getattr(engine, name)
    raise AttributeError(name)
