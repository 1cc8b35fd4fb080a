"""The parameter fields: model, scheduler, steps, guidance, seed (+lock), size, count.

Fields hold text as typed; `read()` turns them into request fields and the
request type validates them, so a bad value is refused with its own message.
"""

from __future__ import annotations

import random
from typing import Any

from textual.app import ComposeResult
from textual.containers import Grid
from textual.suggester import SuggestFromList
from textual.widgets import Checkbox, Input, Label

from sdtui.errors import ValidationError
from sdtui.models import MODELS
from sdtui.params import CFG_RANGE, MAX_SEED, STEPS_RANGE, GenerationRequest
from sdtui.schedulers import DEFAULT_SCHEDULER, canonical_scheduler, scheduler_names
from sdtui.tui.model_defaults import scheduler_choices
from sdtui.tui.sizes import native_size, next_preset, shape_name

FIELDS = ("model", "scheduler", "steps", "cfg", "seed", "width", "height", "count")
# img2img: the picture to start from (empty: text to image) and how much to repaint.
IMAGE_FIELDS = ("init_image", "strength")


class ParamsPane(Grid):
    """A compact grid of labelled fields."""

    def __init__(self, model: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._model = model

    def compose(self) -> ComposeResult:
        width, height = native_size(self._model)
        yield Label("Model")
        yield Input(
            self._model,
            id="model",
            suggester=SuggestFromList(list(MODELS), case_sensitive=False),
            tooltip="short name, hub id, folder or .safetensors file",
        )
        yield Label("Scheduler")
        yield Input(
            DEFAULT_SCHEDULER,
            id="scheduler",
            suggester=SuggestFromList(scheduler_names(), case_sensitive=False),
        )
        yield Label("Steps")
        yield Input("25", id="steps", restrict=r"[0-9]*")
        yield Label("Guidance")
        yield Input("7", id="cfg", restrict=r"[0-9.]*")
        yield Label("Seed")
        yield Input("", id="seed", placeholder="random", restrict=r"[0-9]*")
        yield Label("")
        yield Checkbox(_lock_label(False), id="seed_lock")
        yield Label("Width")
        yield Input(str(width), id="width", restrict=r"[0-9]*")
        yield Label("Height")
        yield Input(str(height), id="height", restrict=r"[0-9]*")
        yield Label("Count")
        yield Input("1", id="count", restrict=r"[0-9]*")
        yield Label("")
        yield Label(shape_name(width, height), id="shape")
        yield Label("Init img")
        yield Input("", id="init_image", placeholder="none: text to image",
                    tooltip="img2img: start from this picture (a path)")  # fmt: skip
        yield Label("Strength")
        yield Input("0.75", id="strength", restrict=r"[0-9.]*",
                    tooltip="img2img: how much to repaint, 0-1")  # fmt: skip

    # -- reading and writing -------------------------------------------------

    def value(self, name: str) -> str:
        return self.query_one(f"#{name}", Input).value.strip()

    def set_value(self, name: str, value: object) -> None:
        self.query_one(f"#{name}", Input).value = str(value)
        if name in ("width", "height"):
            self._update_shape()

    @property
    def seed_locked(self) -> bool:
        return self.query_one("#seed_lock", Checkbox).value

    @seed_locked.setter
    def seed_locked(self, value: bool) -> None:
        self.query_one("#seed_lock", Checkbox).value = value

    def read(self) -> dict[str, Any]:
        """Request fields from the form. A locked seed must be a number;
        an unlocked one is picked at random now so the queue shows it."""
        names = FIELDS + IMAGE_FIELDS
        fields: dict[str, Any] = {name: self.value(name) for name in names if name != "seed"}
        seed = self.value("seed")
        if self.seed_locked:
            if not seed:
                raise ValidationError("seed", "is locked but empty; type a number or unlock it")
            fields["seed"] = seed
        else:
            fields["seed"] = random.randint(0, MAX_SEED)
        return fields

    def load(self, request: GenerationRequest) -> None:
        """Show every setting of `request`; its seed is locked so it reproduces."""
        for name in FIELDS + IMAGE_FIELDS:
            value = getattr(request, name)
            if name in ("cfg", "strength"):
                value = f"{value:g}"
            if name in ("seed", "init_image"):
                value = "" if value is None else value
            self.set_value(name, value)
        self.seed_locked = request.seed is not None

    # -- keyboard tweaks -----------------------------------------------------

    def bump_steps(self, delta: int) -> int:
        steps = _parse_int(self.value("steps"), 25) + delta
        steps = min(max(steps, STEPS_RANGE[0]), STEPS_RANGE[1])
        self.set_value("steps", steps)
        return steps

    def bump_cfg(self, delta: float) -> float:
        try:
            cfg = float(self.value("cfg"))
        except ValueError:
            cfg = 7.0
        cfg = round(min(max(cfg + delta, CFG_RANGE[0]), CFG_RANGE[1]), 2)
        self.set_value("cfg", f"{cfg:g}")
        return cfg

    def bump_strength(self, delta: float) -> float:
        try:
            strength = float(self.value("strength"))
        except ValueError:
            strength = 0.75
        strength = round(min(max(strength + delta, 0.0), 1.0), 2)
        self.set_value("strength", f"{strength:g}")
        return strength

    def reroll_seed(self) -> int:
        seed = random.randint(0, MAX_SEED)
        self.set_value("seed", seed)
        return seed

    def cycle_scheduler(self) -> str:
        names = scheduler_choices(self.value("model") or self._model)
        try:
            current = names.index(canonical_scheduler(self.value("scheduler")))
        except KeyError:
            current = -1
        name = names[(current + 1) % len(names)]
        self.set_value("scheduler", name)
        return name

    def cycle_size(self) -> tuple[int, int]:
        current = (_parse_int(self.value("width"), 0), _parse_int(self.value("height"), 0))
        width, height = next_preset(self.value("model") or self._model, current)
        self.set_value("width", width)
        self.set_value("height", height)
        return width, height

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.checkbox.label = _lock_label(event.value)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id in ("width", "height"):
            self._update_shape()

    def _update_shape(self) -> None:
        width, height = _parse_int(self.value("width"), 0), _parse_int(self.value("height"), 0)
        text = shape_name(width, height) if width and height else ""
        self.query_one("#shape", Label).update(text)


def _lock_label(locked: bool) -> str:
    return "locked" if locked else "new each time"


def _parse_int(text: str, default: int) -> int:
    try:
        return int(text)
    except ValueError:
        return default
