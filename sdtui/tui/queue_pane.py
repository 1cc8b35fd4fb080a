"""The queue pane: the requests waiting for the device, focusable and editable.

x removes the highlighted request (undo puts it back), shift+↑/↓ move it, enter
takes it out of the queue and back into the editor. Its title says how many
wait, whether the queue is paused, and how many are out of view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from sdtui.tui.jobs import Job


class QueueList(OptionList):
    """One row per waiting generation, oldest (next to run) first."""

    BINDINGS = [
        Binding("x,delete", "remove", "Remove", show=True),
        Binding("shift+up", "move(-1)", "Move up", show=True),
        Binding("shift+down", "move(1)", "Move down", show=True),
        Binding("enter", "edit", "Edit", show=True),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    @dataclass
    class Remove(Message):
        job_id: int

    @dataclass
    class Move(Message):
        job_id: int
        delta: int

    @dataclass
    class Edit(Message):
        job_id: int

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.jobs: list[Job] = []
        self.paused = False

    def set_jobs(self, jobs: list[Job], paused: bool = False) -> None:
        """Show `jobs`, keeping the highlight on the same request where it is still there."""
        keep = self.selected_job.id if self.selected_job is not None else None
        self.jobs = list(jobs)
        self.paused = paused
        self.clear_options()
        self.add_options(
            Option(Text(f"{n}. {job.label()}", no_wrap=True)) for n, job in enumerate(self.jobs, 1)
        )
        if self.jobs:
            ids = [job.id for job in self.jobs]
            self.highlighted = ids.index(keep) if keep in ids else 0
        self.display = bool(self.jobs)
        self.update_title()

    def highlight_job(self, job_id: int) -> None:
        ids = [job.id for job in self.jobs]
        if job_id in ids:
            self.highlighted = ids.index(job_id)

    @property
    def selected_job(self) -> Job | None:
        index = self.highlighted
        if index is None or not 0 <= index < len(self.jobs):
            return None
        return self.jobs[index]

    def hidden_count(self) -> int:
        """Rows out of view (the pane shows only a few)."""
        rows = self.scrollable_content_region.height
        if rows <= 0:
            return 0
        return max(0, len(self.jobs) - rows)

    def update_title(self) -> None:
        count = len(self.jobs)
        title = f"Queue: {count} waiting"
        if self.paused:
            title += " · paused"
        self.border_title = title
        hidden = self.hidden_count()
        self.border_subtitle = f"+{hidden} more" if hidden else ""

    def on_resize(self, event: events.Resize) -> None:
        self.update_title()

    def action_remove(self) -> None:
        job = self.selected_job
        if job is not None:
            self.post_message(self.Remove(job.id))

    def action_move(self, delta: int) -> None:
        job = self.selected_job
        if job is not None:
            self.post_message(self.Move(job.id, delta))

    def action_edit(self) -> None:
        job = self.selected_job
        if job is not None:
            self.post_message(self.Edit(job.id))
