"""AUTOMATIC1111-style `parameters` text (A1111, Forge, reForge, SD.Next, Fooocus's
A1111 scheme, Civitai, Stability Matrix...).

The text is the prompt, an optional `Negative prompt:` part, and a last line of
`Key: value` pairs. As A1111's own reader does, the last line is the settings
line when at least three pairs are found in it. Values are plain up to the next
comma, JSON-quoted strings, or (as Civitai and Forge write them) raw JSON
objects and lists such as `Hashes: {...}` and `Civitai resources: [{...}]`,
which are kept whole as their JSON text.
"""

from __future__ import annotations

import json
import re

from sdtui.gallery.readers.base import ImageMetadata, exact_int, finite_float, size_pair
from sdtui.params import ParsedParameters

NEGATIVE = "Negative prompt:"
_KEY = re.compile(r"\s*(\w[\w \-/+.()]*):\s*")
_QUOTED = re.compile(r'"(?:\\.|[^\\"])*"')
_DECODER = json.JSONDecoder()
# A1111 needs this many pairs on the last line before it treats it as settings.
MIN_PAIRS = 3


def _unquote(raw: str) -> str:
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return value if isinstance(value, str) else raw


def _value_at(line: str, pos: int) -> tuple[str, int]:
    """The value starting at `pos` and the position just past it (before any comma)."""
    if pos < len(line) and line[pos] == '"':
        match = _QUOTED.match(line, pos)
        if match:
            return _unquote(match.group(0)), match.end()
    if pos < len(line) and line[pos] in "{[":
        try:
            _, end = _DECODER.raw_decode(line, pos)
        except (ValueError, RecursionError):
            end = -1
        rest = line[end:].lstrip() if end > 0 else "?"
        if end > 0 and (not rest or rest[0] == ","):
            return line[pos:end], end
    comma = line.find(",", pos)
    end = len(line) if comma < 0 else comma
    return line[pos:end].strip(), end


def parse_settings_line(line: str) -> dict[str, str]:
    """Every `Key: value` pair of a line, in order; text that is no pair is skipped."""
    pairs: dict[str, str] = {}
    pos, line = 0, line.strip()
    while pos < len(line):
        match = _KEY.match(line, pos)
        if match is None:
            comma = line.find(",", pos)
            if comma < 0:
                break
            pos = comma + 1
            continue
        value, pos = _value_at(line, match.end())
        pairs[match.group(1).strip()] = value
        comma = line.find(",", pos)
        pos = len(line) if comma < 0 else comma + 1
    return pairs


def parse_infotext(raw: str) -> ParsedParameters:
    """Prompt, negative prompt and settings of a `parameters` text; never raises."""
    lines = str(raw).replace("\r\n", "\n").replace("\r", "\n").strip().split("\n")
    settings: dict[str, str] = {}
    if lines:
        found = parse_settings_line(lines[-1])
        if len(found) >= MIN_PAIRS:
            settings = found
            lines = lines[:-1]
    prompt: list[str] = []
    negative: list[str] = []
    for line in lines:
        if not negative and line.lstrip().startswith(NEGATIVE):
            negative.append(line.lstrip()[len(NEGATIVE) :].lstrip(" "))
            continue
        (negative if negative else prompt).append(line)
    return ParsedParameters("\n".join(prompt).strip(), "\n".join(negative).strip(), settings)


def looks_like_infotext(raw: str) -> bool:
    """True when a text has an A1111 settings line (used for JPEG comments and EXIF)."""
    return bool(parse_infotext(raw).settings)


def sampler_name(settings: dict[str, str]) -> str | None:
    """`Sampler` with A1111 1.9's separate `Schedule type` folded back in (DPM++ 2M Karras)."""
    sampler = settings.get("Sampler")
    schedule = settings.get("Schedule type", "")
    if sampler and schedule and schedule.lower() not in ("automatic", "uniform"):
        if schedule.lower() not in sampler.lower():
            sampler = f"{sampler} {schedule}"
    return sampler


_OWN = ("Sampler", "Size", "Steps", "CFG scale", "Seed", "Model")


def read(raw: str, source: str = "a1111") -> ImageMetadata:
    parsed = parse_infotext(raw)
    s = dict(parsed.settings)
    width, height = size_pair(s.get("Size"))
    version = s.get("Version", "")
    if source == "a1111" and version.startswith("Fooocus"):
        source = "fooocus"
    return ImageMetadata(
        source=source,
        prompt=parsed.prompt,
        negative_prompt=parsed.negative_prompt,
        steps=exact_int(s.get("Steps")),
        sampler=sampler_name(s),
        cfg_scale=finite_float(s.get("CFG scale")),
        seed=exact_int(s.get("Seed")),
        width=width,
        height=height,
        model=s.get("Model") or None,
        extras={k: v for k, v in s.items() if k not in _OWN},
    )
