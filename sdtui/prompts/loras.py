"""`<lora:name:weight>` tags in a prompt, as AUTOMATIC1111 and Forge write them.

Stdlib only: the prompt editor highlights tags as the user types, and requests
are checked before anything heavy is imported. The tags stay in the prompt that
is recorded; `strip_lora_tags` gives the text the text encoder sees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sdtui.errors import ValidationError

WEIGHT_RANGE = (-5.0, 5.0)
DEFAULT_WEIGHT = 1.0

# `<lora:name>`, `<lora:name:0.8>`; `lyco` is the older spelling some prompts still use.
LORA_TAG = re.compile(r"<(?:lora|lyco):([^<>]*)>", re.IGNORECASE)


@dataclass(frozen=True)
class LoraTag:
    """One tag: the file's name (stem or path under the folder), its weight, where it is."""

    name: str
    weight: float
    start: int
    end: int


def _parse_tag(body: str, field: str) -> tuple[str, float]:
    name, sep, rest = body.partition(":")
    name = name.strip()
    if not name:
        raise ValidationError(field, "a <lora:...> tag has no name; write <lora:NAME:WEIGHT>")
    if not sep:
        return name, DEFAULT_WEIGHT
    if ":" in rest:
        raise ValidationError(
            field, f"<lora:{body}> has more than one weight; write <lora:{name}:WEIGHT>"
        )
    try:
        weight = float(rest.strip())
    except ValueError:
        raise ValidationError(
            field, f"<lora:{body}> has the weight {rest.strip()!r}; give a number such as 0.8"
        ) from None
    lo, hi = WEIGHT_RANGE
    if weight != weight or not lo <= weight <= hi:
        raise ValidationError(
            field, f"<lora:{name}:{rest.strip()}>: the weight must be from {lo:g} to {hi:g}"
        )
    return name, weight


def find_lora_tags(text: str, field: str = "prompt") -> list[LoraTag]:
    """Every tag in `text`, in order; ValidationError for a malformed one or a name twice."""
    tags: list[LoraTag] = []
    seen: set[str] = set()
    for match in LORA_TAG.finditer(text or ""):
        name, weight = _parse_tag(match.group(1), field)
        if name.lower() in seen:
            raise ValidationError(field, f"<lora:{name}> appears twice; keep one tag per LoRA")
        seen.add(name.lower())
        tags.append(LoraTag(name, weight, match.start(), match.end()))
    return tags


def lora_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, name) of each tag-shaped run, even a malformed one (for highlighting)."""
    return [
        (m.start(), m.end(), m.group(1).partition(":")[0].strip()) for m in LORA_TAG.finditer(text)
    ]


def strip_lora_tags(text: str) -> str:
    """`text` without its tags, and without the stray commas and spaces they leave."""
    if not text or "<" not in text:
        return text
    stripped = LORA_TAG.sub("", text)
    if stripped == text:
        return text
    lines = []
    for line in stripped.split("\n"):
        line = re.sub(r"[ \t]{2,}", " ", line)
        line = re.sub(r"\s*,(\s*,)+", ",", line)  # "a, , b" -> "a, b"
        lines.append(line.strip().strip(",").strip())
    return "\n".join(lines).strip()


def format_lora_tag(name: str, weight: float = DEFAULT_WEIGHT) -> str:
    return f"<lora:{name}:{weight:g}>"
