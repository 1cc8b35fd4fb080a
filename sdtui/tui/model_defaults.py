"""The parameter form follows the loaded model: its size, presets, steps, guidance, samplers.

After each load the app calls `apply_model_defaults(form, model, defaults)`.
A field still showing the previous default takes the new model's; a field the
person typed into stays, unless the new model cannot use it (a DDPM sampler on
FLUX): then it changes and the returned notices say what changed. The size
presets and sampler list that `f`-keys cycle through are remembered per model.

No torch here: `ModelDefaults` is plain data from `sdtui.families`.
"""

from __future__ import annotations

import weakref
from typing import Protocol

from sdtui.families import CFG, NEGATIVE_PROMPT, ModelDefaults, get_family
from sdtui.models import resolve_model_name
from sdtui.schedulers import DEFAULT_SCHEDULER, canonical_scheduler, scheduler_names

# What the form shows before any model is loaded (as ParamsPane composes it).
_FORM_START = {"steps": "25", "cfg": "7", "scheduler": DEFAULT_SCHEDULER}

_presets: dict[str, list[tuple[int, int]]] = {}
_schedulers: dict[str, list[str]] = {}
# Each form -> the defaults it last showed (a value still equal to one was not typed).
_shown: weakref.WeakKeyDictionary[object, dict[str, str]] = weakref.WeakKeyDictionary()


class Form(Protocol):
    """The part of ParamsPane this module needs."""

    def value(self, name: str) -> str: ...

    def set_value(self, name: str, value: object) -> None: ...


def _key(model: str) -> str:
    return model.strip().lower()


def loaded_presets(model: str) -> list[tuple[int, int]] | None:
    """The size presets of `model` once it has been loaded (None before)."""
    return _presets.get(_key(model))


def scheduler_choices(model: str) -> list[str]:
    """The samplers that fit `model` (every sampler until it has been loaded)."""
    return _schedulers.get(_key(model)) or scheduler_names()


def _form_start(model: str) -> dict[str, str]:
    """What ParamsPane shows when it is made for `model` (sizes from the short-name table)."""
    entry = resolve_model_name(model).entry
    width, height = entry.native_size if entry else (512, 512)
    return {**_FORM_START, "width": str(width), "height": str(height)}


def _values(defaults: ModelDefaults) -> dict[str, str]:
    values = {
        "width": str(defaults.width),
        "height": str(defaults.height),
        "steps": str(defaults.steps),
        "cfg": f"{defaults.cfg:g}",
    }
    if defaults.scheduler:
        values["scheduler"] = defaults.scheduler
    return values


def _same(name: str, typed: str, shown: str) -> bool:
    if name == "scheduler":
        try:
            return canonical_scheduler(typed) == canonical_scheduler(shown)
        except KeyError:
            return False
    try:
        return float(typed) == float(shown)
    except ValueError:
        return typed == shown


def apply_model_defaults(form: Form, model: str, defaults: ModelDefaults | None) -> list[str]:
    """Show `defaults` in `form` where the person did not type; returns notices."""
    if defaults is None:
        return []
    _presets[_key(model)] = list(defaults.size_presets)
    if defaults.schedulers:
        _schedulers[_key(model)] = list(defaults.schedulers)
    # Before the first load the form shows its start values and the short-name table's size.
    shown = _shown.get(form) or _form_start(model)
    new = _values(defaults)
    notices: list[str] = []
    for name, value in new.items():
        typed = form.value(name)
        if name not in shown or _same(name, typed, shown[name]):
            form.set_value(name, value)
        elif name == "scheduler" and defaults.schedulers:
            try:
                fits = canonical_scheduler(typed) in defaults.schedulers
            except KeyError:
                fits = False
            if not fits:
                form.set_value(name, value)
                notices.append(f"{typed} does not fit {defaults.family} models; now {value}")
        elif name in ("width", "height"):
            multiple = get_family(defaults.family).size_multiple
            if typed.isdigit() and int(typed) % multiple:
                fitted = max(64, int(typed) - int(typed) % multiple)
                form.set_value(name, fitted)
                notices.append(f"{name} {typed} is not a multiple of {multiple}; now {fitted}")
    _shown[form] = new
    label = defaults.family + (f" {defaults.tuning}" if defaults.tuning else "")
    if NEGATIVE_PROMPT in defaults.unused and defaults.family == "flux":
        notices.append(f"{label}: the negative prompt is not used")
    if CFG in defaults.unused:
        notices.append(f"{label}: made for guidance {defaults.cfg:g}; other values are not used")
    if defaults.plain:
        notices.append(f"{label} runs in plain mode: {', '.join(defaults.plain)}")
    return notices
