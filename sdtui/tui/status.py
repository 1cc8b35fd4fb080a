"""The status panel: model and device, what runs now, step n/N with a bar, speed,
time left, the queue's length, the gallery folder, and the last error."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import ProgressBar, Static

from sdtui.results import StepProgress


def format_speed(progress: StepProgress) -> str:
    """'step 3/25 · image 1/2 · 4.1 it/s · 5s left' from one progress event."""
    done = progress.image_index * progress.total + progress.step
    all_steps = progress.total * progress.image_count
    text = f"step {progress.step}/{progress.total}"
    if progress.image_count > 1:
        text += f" · image {progress.image_index + 1}/{progress.image_count}"
    if progress.elapsed > 0 and done > 0:
        rate = done / progress.elapsed
        left = (all_steps - done) / rate
        text += f" · {rate:.1f} it/s" if rate >= 1 else f" · {1 / rate:.1f} s/it"
        text += f" · {left:.0f}s left"
    return text


class StatusPanel(Vertical):
    def __init__(self, model: str, device: str, gallery: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.device = device
        self.gallery = gallery
        self.state = "starting"
        self.queue_length = 0
        self.queue_paused = False

    def compose(self) -> ComposeResult:
        yield Static(id="status-line")
        with Horizontal(id="progress-row"):
            yield ProgressBar(total=100, show_eta=False, id="progress")
            yield Static("", id="step-text")
        yield Static("", id="error-line")

    def on_mount(self) -> None:
        self.refresh_line()

    def refresh_line(self) -> None:
        line = Text()
        line.append(f"{self.model}", style="bold")
        line.append(f" on {self.device}  ·  {self.state}  ·  ")
        paused = " (paused)" if self.queue_paused else ""
        line.append(
            f"queue: {self.queue_length} waiting{paused}",
            style="bold" if self.queue_length else "",
        )
        line.append(f"  ·  gallery: {self.gallery}", style="dim")
        self.query_one("#status-line", Static).update(line)

    def set_state(self, state: str) -> None:
        self.state = state
        self.refresh_line()

    def set_model(self, model: str, device: str) -> None:
        self.model, self.device = model, device
        self.refresh_line()

    def set_queue(self, length: int, paused: bool = False) -> None:
        self.queue_length = length
        self.queue_paused = paused
        self.refresh_line()

    def show_progress(self, progress: StepProgress) -> None:
        self.query_one("#progress", ProgressBar).update(progress=progress.fraction * 100)
        self.query_one("#step-text", Static).update(format_speed(progress))

    def reset_progress(self) -> None:
        self.query_one("#progress", ProgressBar).update(progress=0)
        self.query_one("#step-text", Static).update("")

    def show_error(self, message: str) -> None:
        self.query_one("#error-line", Static).update(Text(message, style="bold red"))

    def clear_error(self) -> None:
        self.query_one("#error-line", Static).update("")
