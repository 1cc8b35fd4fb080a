"""A footer that shows only the keys that fit.

Textual's footer lays its keys in one row and docks the palette key on the
right; keys that overflow the row show through at the terminal's last cell
(a stray letter). This one drops the keys that do not fit, from the end of the
table (the most used come first), so the row never overflows.
"""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

PALETTE_ROOM = 13  # "▏^p Palette" and its padding


class FittingFooter(Footer):
    def compose(self) -> ComposeResult:
        room = (self.size.width or self.app.size.width) - PALETTE_ROOM
        used = 0
        for widget in super().compose():
            if isinstance(widget, FooterKey) and not widget.has_class("-command-palette"):
                need = len(widget.key_display) + len(widget.description) + 2
                if used + need > room:
                    continue
                used += need
            yield widget

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != getattr(self, "_composed_width", None):
            self._composed_width = event.size.width
            self.call_after_refresh(self.recompose)
