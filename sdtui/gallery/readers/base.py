"""What every reader returns, and the careful value parsing they share.

Metadata comes from strangers' files: every helper here takes any JSON value or
string and gives a clean value or None, never an exception. Integers (seeds
above all) are parsed from their digits, never through a float, so a 64-bit
seed stays exact.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

from sdtui import workflows
from sdtui.errors import SdtuiError, ValidationError
from sdtui.params import MAX_SEED, GenerationRequest
from sdtui.schedulers import DEFAULT_SCHEDULER, canonical_scheduler

SDTUI_CHUNK = "sdtui"
PARAMETERS_CHUNK = "parameters"
SOURCES = (
    "sdtui",
    "a1111",
    "comfyui",
    "invokeai",
    "fooocus",
    "ruinedfooocus",
    "novelai",
    "swarmui",
    "stabilitymatrix",
    "none",
)


class ImageReadError(SdtuiError):
    """A file is not an image we can read (not an image, truncated, too large)."""


@dataclass(frozen=True)
class ImageMetadata:
    """What an image file says about how it was made; fields are None when unknown.

    `notes` says what a reader could not follow (a graph it does not understand,
    which of several samplers it took); they are shown, never written back.
    """

    source: str = "none"
    prompt: str = ""
    negative_prompt: str = ""
    steps: int | None = None
    sampler: str | None = None
    cfg_scale: float | None = None
    seed: int | None = None
    width: int | None = None
    height: int | None = None
    model: str | None = None
    extras: dict[str, str] = field(default_factory=dict)
    # Ours only: the exact request and the generation record (device, timings, ...).
    request_dict: dict[str, Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def request(self) -> GenerationRequest:
        """A request that makes this image again (or as close as our settings allow).

        A sampler we do not know is kept in `extras` and the default is used; so
        is a seed beyond the range sdtui can seed (kept as `Original seed`).
        Raises ValidationError when the file holds no prompt or out-of-range values.
        """
        if self.request_dict is not None:
            try:
                return GenerationRequest.from_dict(self.request_dict)
            except TypeError as exc:  # a hand-edited record missing a field
                raise ValidationError("image", f"holds an incomplete request ({exc})") from None
        if not self.prompt.strip():
            raise ValidationError("image", "holds no prompt to make it again")
        extras = dict(self.extras)
        fields: dict[str, Any] = {"prompt": self.prompt, "negative_prompt": self.negative_prompt}
        if self.sampler:
            try:
                fields["scheduler"] = canonical_scheduler(self.sampler)
            except KeyError:
                extras.setdefault("Sampler", self.sampler)
                fields["scheduler"] = DEFAULT_SCHEDULER
        seed = self.seed
        if seed is not None and not 0 <= seed <= MAX_SEED:
            extras.setdefault("Original seed", str(seed))
            seed = None
        for name, value in (
            ("steps", self.steps),
            ("cfg", self.cfg_scale),
            ("seed", seed),
            ("width", self.width),
            ("height", self.height),
            ("model", self.model),
        ):
            if value is not None:
                fields[name] = value
        fields.update(workflows.fields_from_a1111(extras))  # A1111's hires fix keys
        used = workflows.used_a1111_keys(extras)
        fields["extras"] = tuple((k, v) for k, v in extras.items() if k not in used)
        return GenerationRequest(**fields)

    def to_json_dict(self) -> dict[str, Any]:
        """The settings as plain JSON values (what `--json` prints)."""
        data: dict[str, Any] = {
            "prompt": self.prompt,
            "negative_prompt": self.negative_prompt,
            "steps": self.steps,
            "sampler": self.sampler,
            "cfg_scale": self.cfg_scale,
            "seed": self.seed,
            "width": self.width,
            "height": self.height,
            "model": self.model,
            "extras": dict(self.extras),
            "source": self.source,
        }
        if self.notes:
            data["notes"] = list(self.notes)
        return data

    def with_changes(self, **changes: Any) -> ImageMetadata:
        return replace(self, **changes)


# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------

_INT_TEXT = re.compile(r"[+-]?\d{1,20}(?:\.0*)?")
_INT_LIMIT = 2**64


def exact_int(value: Any) -> int | None:
    """An integer written as digits or a JSON integer; None for anything else.

    "123", 123 and 123.0 are 123; 1.5, "abc", True, NaN and numbers beyond 64 bits
    are None. A float is accepted only where it is exact (below 2**53).
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if abs(value) < _INT_LIMIT else None
    if isinstance(value, float):
        if value == value and abs(value) < 2**53 and value.is_integer():
            return int(value)
        return None
    if isinstance(value, str):
        text = value.strip()
        if _INT_TEXT.fullmatch(text):
            number = int(text.split(".", 1)[0])
            return number if abs(number) < _INT_LIMIT else None
    return None


def finite_float(value: Any) -> float | None:
    """A float from a number or its text; None for NaN, infinities, huge values, text."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number == number and abs(number) < 1e9 else None


def text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def json_object(raw: str) -> dict[str, Any] | None:
    """A JSON object, or None for anything else (bad JSON, a list, nesting too deep)."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def extra_text(value: Any) -> str:
    """An extra value as text: strings as they are, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return str(value)


def size_pair(value: Any) -> tuple[int | None, int | None]:
    """`1024x768`, `(1024, 768)`, `1024,768` or `[1024, 768]` as (width, height)."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return exact_int(value[0]), exact_int(value[1])
    raw = text(value).strip().strip("()[] ")
    for sep in ("x", "×", ","):
        if sep in raw:
            w, _, h = raw.partition(sep)
            return exact_int(w), exact_int(h)
    return None, None
