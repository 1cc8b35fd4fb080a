"""The history list: past generations, newest first (prompt, seed, size, time)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from sdtui.display import one_line


def _created(entry: Any) -> str:
    created = getattr(entry, "created", None)
    if isinstance(created, (int, float)):
        created = dt.datetime.fromtimestamp(created)
    if isinstance(created, str):
        try:
            created = dt.datetime.fromisoformat(created)
        except ValueError:
            return created[:16]
    if isinstance(created, dt.datetime):
        if created.tzinfo is not None:
            created = created.astimezone()
        today = dt.datetime.now(created.tzinfo).date()
        return created.strftime("%H:%M" if created.date() == today else "%Y-%m-%d %H:%M")
    return ""


def entry_label(entry: Any) -> Text:
    """One history line. Built from Text so prompts are shown literally, never as markup."""
    request = entry.request
    prompt = getattr(entry, "prompt", "") or (request.prompt if request else "")
    label = Text(no_wrap=True, overflow="ellipsis")
    # Imported images may carry escape sequences: shown as U+FFFD, never sent to the terminal.
    label.append(one_line(prompt)[:200] or one_line(str(entry.path)))
    details = f"  seed {entry.seed}"
    width = getattr(entry, "width", None) or (request.width if request else None)
    height = getattr(entry, "height", None) or (request.height if request else None)
    if width and height:
        details += f" · {width}x{height}"
    when = _created(entry)
    if when:
        details += f" · {when}"
    label.append(details, style="dim")
    return label


class HistoryList(OptionList):
    """Gallery entries newest first; Enter/r remix, v variations."""

    BINDINGS = [
        Binding("enter,r", "app.remix", "Remix", show=True),
        Binding("v", "app.variations", "Variations", show=True),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.entries: list[Any] = []

    def set_entries(self, entries: list[Any]) -> None:
        self.entries = list(entries)
        self.clear_options()
        self.add_options(Option(entry_label(e), id=str(e.id)) for e in self.entries)
        if self.entries:
            self.highlighted = 0

    def add_newest(self, entries: list[Any]) -> None:
        """Put freshly saved entries on top and highlight the newest."""
        self.set_entries(list(reversed(entries)) + self.entries)

    @property
    def selected_entry(self) -> Any | None:
        index = self.highlighted
        if index is None or not 0 <= index < len(self.entries):
            return None
        return self.entries[index]
