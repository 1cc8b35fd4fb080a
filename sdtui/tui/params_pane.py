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
from sdtui.models import MODELS, resolve_model_name
from sdtui.params import CFG_RANGE, MAX_SEED, STEPS_RANGE, GenerationRequest
from sdtui.schedulers import DEFAULT_SCHEDULER, canonical_scheduler, scheduler_names
from sdtui.tui.model_defaults import scheduler_choices
from sdtui.tui.sizes import native_size, next_preset, shape_name

FIELDS = ("model", "scheduler", "steps", "cfg", "seed", "width", "height", "count")
# img2img: the picture to start from (empty: text to image) and how much to repaint.
IMAGE_FIELDS = ("init_image", "strength")

RANDOM_SEEDS = ("", "-1")  # what the seed field holds for "a new one each time"


class SeedLock(Checkbox):
    """The seed lock, drawn [x] when on and [ ] when off (not by colour alone)."""

    BUTTON_LEFT = "["
    BUTTON_RIGHT = "]"

    @property
    def BUTTON_INNER(self) -> str:  # type: ignore[override]  # noqa: N802 (Textual's name)
        return "x" if self.value else " "


class ParamsPane(Grid):
    """A compact grid of labelled fields."""

    def __init__(self, model: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._model = model
        # Per field: changes made by the app whose Changed message has not arrived yet.
        self._programmatic: dict[str, int] = {}
        # The size last filled in for the model: while the fields still hold it, a
        # change of model brings that model's own size.
        self._auto_size: tuple[int, int] | None = native_size(model)

    def compose(self) -> ComposeResult:
        width, height = native_size(self._model)
        yield Label("Model")
        yield Input(
            self._model,
            id="model",
            classes="wide",
            suggester=SuggestFromList(list(MODELS), case_sensitive=False),
            tooltip="short name, hub id, folder or .safetensors file",
        )
        yield Label("Scheduler")
        yield Input(
            DEFAULT_SCHEDULER,
            id="scheduler",
            classes="wide",
            suggester=SuggestFromList(scheduler_names(), case_sensitive=False),
        )
        yield Label("Steps")
        yield Input("25", id="steps", restrict=r"[0-9]*")
        yield Label("Guidance")
        yield Input("7", id="cfg", restrict=r"[0-9.]*")
        yield Label("Seed")
        yield Input(
            "",
            id="seed",
            placeholder="random",
            restrict=r"-?[0-9]*",
            tooltip="a number to reuse (typing one locks it); empty or -1: random",
            classes="seed",
        )
        yield SeedLock("lock", id="seed_lock", tooltip="keep this seed (alt+l)")
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
        """Change a field as the app (the user's typing goes through Input itself)."""
        field = self.query_one(f"#{name}", Input)
        text = str(value)
        if field.value != text:
            self._programmatic[name] = self._programmatic.get(name, 0) + 1
            field.value = text
        if name in ("width", "height"):
            self._update_shape()

    def snapshot(self) -> tuple[dict[str, str], bool]:
        """Each field's text as it stands, and the lock (for the session file)."""
        return {name: self.query_one(f"#{name}", Input).value for name in FIELDS}, self.seed_locked

    def restore(self, fields: dict[str, str], locked: bool) -> None:
        """Put back a snapshot; unknown names are ignored."""
        for name in FIELDS:
            if name in fields:
                self.set_value(name, fields[name])
        if "width" in fields or "height" in fields:
            self._auto_size = None  # chosen last time: kept
        self.seed_locked = locked

    def model_loaded(self, model: str, size: tuple[int, int]) -> None:
        """The engine reports `model`'s native size: show it where the size fields
        still hold the one filled in automatically."""
        if self.value("model") == model:
            self._follow_model_size(size)

    def _follow_model_size(self, size: tuple[int, int]) -> None:
        current = (_parse_int(self.value("width"), 0), _parse_int(self.value("height"), 0))
        if self._auto_size is not None and current != self._auto_size:
            return  # the user chose a size: keep it
        self._auto_size = size
        self.set_value("width", size[0])
        self.set_value("height", size[1])

    @property
    def seed_locked(self) -> bool:
        return self.query_one("#seed_lock", Checkbox).value

    @seed_locked.setter
    def seed_locked(self, value: bool) -> None:
        self.query_one("#seed_lock", Checkbox).value = value

    def read(self) -> dict[str, Any]:
        """Request fields from the form. A locked seed is used as it is; an empty one,
        -1, or any seed while unlocked is picked at random now so the queue shows it."""
        names = FIELDS + IMAGE_FIELDS
        fields: dict[str, Any] = {name: self.value(name) for name in names if name != "seed"}
        seed = self.value("seed")
        if self.seed_locked and not seed:
            raise ValidationError(
                "seed", "is locked but empty; type a number, -1 for random, or unlock it"
            )
        if self.seed_locked and seed != "-1":
            if not seed.isdigit():
                raise ValidationError("seed", f"must be a whole number, or -1 for random: {seed!r}")
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
        self._auto_size = None  # the request's size was chosen
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

    def on_input_changed(self, event: Input.Changed) -> None:
        name = event.input.id or ""
        by_app = self._programmatic.get(name, 0) > 0
        if by_app:
            self._programmatic[name] -= 1
        if name in ("width", "height"):
            self._update_shape()
        if by_app:
            return
        if name == "seed":
            # Typing a seed means "this one"; -1 or clearing it means random again.
            self.seed_locked = event.value.strip() not in RANDOM_SEEDS
        elif name == "model":
            entry = resolve_model_name(event.value.strip()).entry if event.value.strip() else None
            if entry is not None:
                self._follow_model_size(entry.native_size)

    def _update_shape(self) -> None:
        width, height = _parse_int(self.value("width"), 0), _parse_int(self.value("height"), 0)
        text = shape_name(width, height) if width and height else ""
        self.query_one("#shape", Label).update(text)


def _parse_int(text: str, default: int) -> int:
    try:
        return int(text)
    except ValueError:
        return default
