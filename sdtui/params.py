"""The generation request and the AUTOMATIC1111 `parameters` text.

Stdlib only: the TUI, the CLI, the gallery and the engine all speak this one
request type, and the TUI must import it without pulling in torch.
"""

from __future__ import annotations

import dataclasses
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sdtui import workflows
from sdtui.errors import ValidationError
from sdtui.models import DEFAULT_MODEL
from sdtui.schedulers import DEFAULT_SCHEDULER, canonical_scheduler

MAX_SEED = 2**32 - 1
STEPS_RANGE = (1, 150)
CFG_RANGE = (0.0, 30.0)
SIZE_RANGE = (64, 2048)
SIZE_MULTIPLE = 8
COUNT_RANGE = (1, 64)
REFINER_SWITCH_RANGE = (0.01, 0.99)
MAX_PROMPT_CHARS = 20_000

# Newline and tab are part of normal prompts; every other control character
# (ANSI escapes, NUL, ...) is refused rather than written into files and logs.
_ALLOWED_CONTROLS = {"\n", "\t"}


def _check_text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise ValidationError(name, f"must be text, got {type(value).__name__}")
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    if len(value) > MAX_PROMPT_CHARS:
        raise ValidationError(
            name, f"is {len(value):,} characters long; the limit is {MAX_PROMPT_CHARS:,}"
        )
    for ch in value:
        if ch not in _ALLOWED_CONTROLS and unicodedata.category(ch) == "Cc":
            raise ValidationError(
                name, f"contains the control character U+{ord(ch):04X}; remove it"
            )
    return _check_utf8(name, value)


def _check_utf8(name: str, value: str) -> str:
    """Refuse lone surrogates: bytes that were not UTF-8 (from a shell or a file name).
    A tokenizer, a PNG text chunk and the index would each fail on them later."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError(
            name, f"is not valid UTF-8 text (character {exc.start + 1}); retype or remove it"
        ) from None
    return value


def _check_int(name: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool):
        raise ValidationError(name, f"must be a whole number from {lo} to {hi}")
    if isinstance(value, str):
        value = value.strip()
        try:
            value = int(value)
        except ValueError:
            raise ValidationError(
                name, f"must be a whole number from {lo} to {hi}, got {value!r}"
            ) from None
    if isinstance(value, float):
        if not value.is_integer():
            raise ValidationError(name, f"must be a whole number from {lo} to {hi}, got {value}")
        value = int(value)
    if not isinstance(value, int):
        raise ValidationError(name, f"must be a whole number from {lo} to {hi}")
    if not lo <= value <= hi:
        raise ValidationError(name, f"must be from {lo} to {hi}, got {value}")
    return value


def _check_float(name: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool):
        raise ValidationError(name, f"must be a number from {lo:g} to {hi:g}")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise ValidationError(
            name, f"must be a number from {lo:g} to {hi:g}, got {value!r}"
        ) from None
    if number != number or not lo <= number <= hi:  # NaN fails too
        raise ValidationError(name, f"must be from {lo:g} to {hi:g}, got {value}")
    return number


def _check_size(name: str, value: object) -> int:
    size = _check_int(name, value, *SIZE_RANGE)
    if size % SIZE_MULTIPLE:
        lower = size - size % SIZE_MULTIPLE
        raise ValidationError(
            name,
            f"must be a multiple of {SIZE_MULTIPLE}, got {size} (try {max(lower, SIZE_RANGE[0])})",
        )
    return size


@dataclass(frozen=True)
class GenerationRequest:
    """Everything needed to make one batch of images; validated when built.

    `seed=None` means "pick a random seed"; the engine records the seed that
    each image actually used. `extras` carries additional `Key: value` pairs
    (styles applied, wildcard choices, keys read from another tool's PNG) that
    travel into the image metadata unchanged.
    """

    prompt: str
    negative_prompt: str = ""
    model: str = DEFAULT_MODEL
    scheduler: str = DEFAULT_SCHEDULER
    steps: int = 25
    cfg: float = 7.0
    seed: int | None = None
    width: int = 512
    height: int = 512
    count: int = 1
    extras: tuple[tuple[str, str], ...] = field(default=())
    # SDXL's second stage: a refiner model takes over at this fraction of the steps.
    refiner: str = ""
    refiner_switch: float = 0.8
    # Image-to-image workflows (checked in sdtui.workflows): files by path + sha256.
    init_image: str | None = None
    init_image_sha256: str | None = None
    strength: float = 0.75  # denoising strength of img2img / inpaint / outpaint
    mask: str | None = None  # white = repaint
    mask_sha256: str | None = None
    mask_blur: int = 4
    inpaint_only_masked: bool = False  # repaint the masked area alone, at full resolution
    mask_padding: int = 32  # pixels around it that the model sees as context
    outpaint: tuple[tuple[str, int], ...] = field(default=())  # (side, pixels)
    hires_scale: float | None = None  # None: no hires fix
    hires_steps: int = 0  # 0: as many as the first pass
    hires_denoise: float = 0.5
    hires_upscaler: str = "latent"  # or an upscaler model's name

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise through the back door once
        set_(self, "prompt", _check_text("prompt", self.prompt))
        set_(self, "negative_prompt", _check_text("negative prompt", self.negative_prompt))
        if not self.prompt.strip():
            raise ValidationError("prompt", "is empty; write what the image should show")
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValidationError("model", "is empty; give a short name, hub id or path")
        set_(self, "model", _check_utf8("model", self.model.strip()))
        try:
            set_(self, "scheduler", canonical_scheduler(self.scheduler))
        except KeyError as exc:
            raise ValidationError("scheduler", str(exc.args[0])) from None
        set_(self, "steps", _check_int("steps", self.steps, *STEPS_RANGE))
        set_(self, "cfg", _check_float("guidance", self.cfg, *CFG_RANGE))
        if self.seed is not None:
            set_(self, "seed", _check_int("seed", self.seed, 0, MAX_SEED))
        set_(self, "width", _check_size("width", self.width))
        set_(self, "height", _check_size("height", self.height))
        set_(self, "count", _check_int("count", self.count, *COUNT_RANGE))
        set_(self, "refiner", _check_text("refiner", self.refiner).strip())
        set_(
            self,
            "refiner_switch",
            _check_float("refiner switch", self.refiner_switch, *REFINER_SWITCH_RANGE),
        )
        extras = self.extras.items() if isinstance(self.extras, Mapping) else self.extras
        try:
            pairs = tuple((str(k), str(v)) for k, v in extras)
        except (TypeError, ValueError):
            raise ValidationError("extras", "must be pairs of key and value") from None
        for pair in pairs:
            _check_utf8("extras", "".join(pair))
        set_(self, "extras", pairs)
        workflows.check_workflow_fields(self)

    def replace(self, **changes: Any) -> GenerationRequest:
        """A copy with some fields changed, validated again."""
        return dataclasses.replace(self, **changes)

    def image_seeds(self, base_seed: int) -> list[int]:
        """The seed of each image in the batch: base, base+1, ... (as AUTOMATIC1111 does)."""
        return [(base_seed + i) % (MAX_SEED + 1) for i in range(self.count)]

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["extras"] = dict(self.extras)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GenerationRequest:
        """Build from a dict such as `to_dict()` wrote; unknown keys are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> GenerationRequest:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError("request", f"is not valid JSON ({exc.msg})") from None
        if not isinstance(data, dict):
            raise ValidationError("request", "must be a JSON object")
        return cls.from_dict(data)


# ---------------------------------------------------------------------------
# AUTOMATIC1111 "parameters" text
# ---------------------------------------------------------------------------

# One `Key: value` pair of the settings line; the value is either a JSON-quoted
# string or runs to the next comma (the same grammar A1111 itself parses).
_PAIR = re.compile(r'\s*([\w][\w \-/+.()]*):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')
_NEGATIVE = "Negative prompt:"


def quote_value(value: str) -> str:
    """Quote a settings value the way A1111 does: JSON string if it holds , : or newline."""
    if any(ch in value for ch in ',:\n"'):
        return json.dumps(value, ensure_ascii=False)
    return value


def unquote_value(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError:
            return value
        return decoded if isinstance(decoded, str) else value
    return value


@dataclass(frozen=True)
class ParsedParameters:
    """The three parts of a `parameters` text; `settings` keeps every key, in order."""

    prompt: str
    negative_prompt: str
    settings: dict[str, str]


def _parse_settings_line(line: str) -> dict[str, str] | None:
    """The `Key: value, ...` pairs of a line, or None when it is not such a line."""
    pairs: dict[str, str] = {}
    pos = 0
    line = line.strip()
    while pos < len(line):
        match = _PAIR.match(line, pos)
        if not match or match.end() == pos:
            return None
        pairs[match.group(1).strip()] = unquote_value(match.group(2))
        pos = match.end()
    # A prompt line can look like "a: b"; A1111 requires several pairs too.
    return pairs if len(pairs) >= 3 else None


def parse_parameters(text: str) -> ParsedParameters:
    """Split an A1111-style `parameters` text into prompt, negative prompt, settings.

    Never raises on any string: malformed input ends up in the prompt.
    """
    lines = str(text).replace("\r\n", "\n").replace("\r", "\n").strip("\n").split("\n")
    settings: dict[str, str] = {}
    if lines:
        parsed = _parse_settings_line(lines[-1])
        if parsed is not None:
            settings = parsed
            lines = lines[:-1]
    prompt_lines: list[str] = []
    negative_lines: list[str] = []
    in_negative = False
    for line in lines:
        if not in_negative and line.startswith(_NEGATIVE):
            in_negative = True
            line = line[len(_NEGATIVE) :].lstrip(" ")
        (negative_lines if in_negative else prompt_lines).append(line)
    return ParsedParameters(
        "\n".join(prompt_lines).strip(), "\n".join(negative_lines).strip(), settings
    )


# Keys we write ourselves; everything else in `settings` is kept as an extra.
_OWN_KEYS = (
    "Steps",
    "Sampler",
    "Schedule type",
    "CFG scale",
    "Seed",
    "Size",
    "Model",
    "Refiner",
    "Refiner switch at",
)
# A1111 writes the refiner as "name [hash]".
_HASH_SUFFIX = re.compile(r"\s*\[[0-9a-fA-F]{6,}\]$")
# Forge's name for FLUX's distilled guidance; its `CFG scale` is then 1 (no CFG pass).
DISTILLED_CFG_KEY = "Distilled CFG Scale"


def format_parameters(request: GenerationRequest, seed: int | None = None) -> str:
    """The A1111 `parameters` text for one image of `request` (with its actual seed)."""
    seed = request.seed if seed is None else seed
    pairs: list[tuple[str, str]] = [
        ("Steps", str(request.steps)),
        ("Sampler", request.scheduler),
        # With distilled guidance the guidance is written under its own key, as Forge does.
        ("CFG scale", "1" if DISTILLED_CFG_KEY in dict(request.extras) else f"{request.cfg:g}"),
    ]
    if seed is not None:
        pairs.append(("Seed", str(seed)))
    pairs += [("Size", f"{request.width}x{request.height}"), ("Model", request.model)]
    if request.refiner:
        switch = f"{request.refiner_switch:g}"
        pairs += [("Refiner", request.refiner), ("Refiner switch at", switch)]
    workflow_pairs = workflows.a1111_pairs(request)
    pairs += workflow_pairs
    written = set(_OWN_KEYS) | {k for k, _ in workflow_pairs}
    pairs += [(k, v) for k, v in request.extras if k not in written]
    lines = [request.prompt]
    if request.negative_prompt:
        lines.append(f"{_NEGATIVE} {request.negative_prompt}")
    lines.append(", ".join(f"{k}: {quote_value(v)}" for k, v in pairs))
    return "\n".join(lines)


def request_from_parameters(text: str, **overrides: Any) -> GenerationRequest:
    """A request holding the settings of an A1111 `parameters` text.

    Keys we do not use (Model hash, Hires upscale, Lora hashes, ...) are kept in
    `extras`. Raises ValidationError when a value is out of range or missing.
    """
    parsed = parse_parameters(text)
    s = parsed.settings
    fields: dict[str, Any] = {"prompt": parsed.prompt, "negative_prompt": parsed.negative_prompt}
    if "Steps" in s:
        fields["steps"] = s["Steps"]
    if "Sampler" in s:
        sampler = s["Sampler"]
        schedule = s.get("Schedule type", "")
        if (
            schedule
            and schedule.lower() not in ("automatic", "uniform")
            and schedule not in sampler
        ):
            sampler = f"{sampler} {schedule}"
        fields["scheduler"] = sampler
    if "CFG scale" in s:
        fields["cfg"] = s["CFG scale"]
    if DISTILLED_CFG_KEY in s:
        fields["cfg"] = s[DISTILLED_CFG_KEY]
    if "Seed" in s:
        fields["seed"] = s["Seed"]
    if "Size" in s:
        width, _, height = s["Size"].partition("x")
        fields["width"], fields["height"] = width, height
    if "Model" in s:
        fields["model"] = s["Model"]
    if s.get("Refiner"):
        fields["refiner"] = _HASH_SUFFIX.sub("", s["Refiner"])
        if "Refiner switch at" in s:
            fields["refiner_switch"] = s["Refiner switch at"]
    fields.update(workflows.fields_from_a1111(s))
    used = set(_OWN_KEYS) | workflows.used_a1111_keys(s)
    fields["extras"] = tuple((k, v) for k, v in s.items() if k not in used)
    fields.update(overrides)
    return GenerationRequest(**fields)
