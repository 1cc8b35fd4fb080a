"""Upscaling a gallery image from the gallery screens, on a worker thread.

The upscaler is the `upscaler` config setting, or the only one in the
upscaler folder. torch and spandrel are imported in the worker, never at start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sdtui.config import Settings
from sdtui.errors import SdtuiError, ValidationError


def pick_upscaler(settings: Settings) -> Path:
    """The upscaler file to use; ValidationError saying what to set when it is not clear."""
    from sdtui.engine.upscale import find_upscaler, list_upscalers, upscaler_dir

    folder = upscaler_dir(None, settings.extra.get("upscalers"))
    chosen = settings.extra.get("upscaler")
    if isinstance(chosen, str) and chosen.strip():
        return find_upscaler(chosen.strip(), folder)
    found = list_upscalers(folder)
    if len(found) == 1:
        return found[0].path
    if not found:
        raise ValidationError(
            "upscaler", f"none in {folder}; put an ESRGAN-family .safetensors file there"
        )
    names = ", ".join(item.name for item in found)
    raise ValidationError("upscaler", f'several in {folder} ({names}); set upscaler = "NAME"')


def start_upscale(screen: Any, entry: Any) -> None:
    """Upscale `entry`'s picture into a new gallery image; `screen` hears back on the UI thread.

    `screen` needs `gallery`, `reload()` and `_error(text)` (the gallery screen has them).
    """
    app = screen.app
    settings: Settings = getattr(app, "settings", None) or Settings()
    try:
        upscaler = pick_upscaler(settings)
    except SdtuiError as exc:
        screen._error(str(exc))
        return
    gallery = screen.gallery
    if gallery is None:
        screen._error("The gallery is still opening; try again in a moment.")
        return
    screen.notify(f"Upscaling {entry.path.name} with {upscaler.stem}…", markup=False)

    def work() -> None:
        try:
            from sdtui.engine.device import choose_device
            from sdtui.engine.upscale_job import upscale_into_gallery

            done = upscale_into_gallery(
                entry.path,
                upscaler,
                gallery,
                device=choose_device(settings.device),
                allow_pickle=settings.allow_pickle,
            )
        except Exception as exc:  # the app goes on; the message says what happened
            text = str(exc) if isinstance(exc, SdtuiError) else f"{type(exc).__name__}: {exc}"
            app.call_from_thread(screen._error, f"Upscale failed: {text}")
            return
        width, height = done.size
        message = f"Upscaled to {width}x{height}: {done.entry.path.name}"
        app.call_from_thread(screen.notify, message, markup=False)
        app.call_from_thread(_refresh, screen)

    screen.run_worker(work, thread=True, exit_on_error=False, group="gallery-upscale")


def _refresh(screen: Any) -> None:
    screen.changed = True  # the history lists the new image when the gallery closes
    if screen.is_attached:
        screen.reload()
