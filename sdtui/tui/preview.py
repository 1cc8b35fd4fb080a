"""The preview pane: the selected or newest image, and live step previews.

`textual_image.widget` probes the terminal when imported, so this module must be
imported before the app runs (sdtui.tui.app imports it at the top).
"""

from __future__ import annotations

import os
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static
from textual_image import widget as image_widgets

from sdtui.regular_files import open_regular

# The base class every textual_image widget shares (each has an `image` to set).
ImageWidget = image_widgets.BaseImage

RENDERERS: dict[str, type[ImageWidget]] = {
    "auto": image_widgets.Image,
    "tgp": image_widgets.TGPImage,
    "sixel": image_widgets.SixelImage,
    "halfcell": image_widgets.HalfcellImage,
    "unicode": image_widgets.UnicodeImage,
}


def _in_memory(image: Any) -> Any:
    """A file read now. The image widget reads a path again at every redraw, so a
    file deleted meanwhile (from the gallery screen, or by hand) would stop the app."""
    if not isinstance(image, (str, os.PathLike)):
        return image
    from PIL import Image

    try:
        with open_regular(image) as fh, Image.open(fh) as im:
            im.load()
            return im.copy()
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


class PreviewPane(Vertical):
    """An image widget of the chosen renderer plus a one-line caption."""

    def __init__(self, renderer: str = "auto", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.renderer = renderer if renderer in RENDERERS else "auto"
        self.source: Any = None  # what is shown: a path or a PIL image

    def compose(self) -> ComposeResult:
        yield RENDERERS[self.renderer](id="image")
        yield Static(Text("no image yet: write a prompt and press ctrl+g"), id="caption")

    def show(self, image: Any, caption: str) -> None:
        """Show a PIL image or an image file path; the caption is shown literally."""
        self.source = image
        self.query_one("#image", ImageWidget).image = _in_memory(image)
        self.set_caption(caption)

    def set_caption(self, caption: str) -> None:
        self.query_one("#caption", Static).update(Text(caption, no_wrap=True, overflow="ellipsis"))
