"""Wildcards: `{red|green|blue}` picks one choice, `__name__` a line of `wildcards/name.txt`.

A pick is seeded by the image's seed, so the same seed always gives the same
prompt; `combinations` lists every choice instead. Stdlib only.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

from sdtui.config import config_dir
from sdtui.errors import ValidationError
from sdtui.regular_files import read_regular_text

MAX_DEPTH = 8  # wildcard files may use wildcards; this stops a file that includes itself
MAX_COMBINATIONS = 1000

_FILE = re.compile(r"__([A-Za-z0-9_\-]+(?:/[A-Za-z0-9_\-]+)*)__")
_GROUP = re.compile(r"\{([^{}]*\|[^{}]*)\}")  # innermost `{a|b}`; `{word}` alone is text


@dataclass(frozen=True)
class Choice:
    """One wildcard and what it became."""

    source: str  # "{red|blue}" or "__animal__"
    value: str


def wildcards_dir() -> Path:
    return config_dir() / "wildcards"


def has_wildcards(text: str) -> bool:
    return bool(_GROUP.search(text) or _FILE.search(text))


def _file_lines(name: str, folder: Path) -> list[str]:
    path = folder / f"{name}.txt"
    try:
        text = read_regular_text(path)
    except FileNotFoundError:
        raise ValidationError(
            "prompt", f"no wildcard file for __{name}__ (expected {path})"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError("prompt", f"cannot read wildcard file {path}: {exc}") from None
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    if not lines:
        raise ValidationError("prompt", f"wildcard file {path} has no lines to choose from")
    return lines


def _first_wildcard(text: str) -> re.Match[str] | None:
    matches = [m for m in (_GROUP.search(text), _FILE.search(text)) if m]
    return min(matches, key=lambda m: m.start()) if matches else None


def _options(match: re.Match[str], folder: Path) -> list[str]:
    if match.re is _FILE:
        return _file_lines(match.group(1), folder)
    return match.group(1).split("|")


def resolve_wildcards(text: str, seed: int, folder: Path | None = None) -> tuple[str, list[Choice]]:
    """`text` with every wildcard replaced by a seeded pick, and the picks made."""
    folder = wildcards_dir() if folder is None else folder
    rng = random.Random(seed)
    choices: list[Choice] = []
    for _ in range(MAX_DEPTH * 100):
        match = _first_wildcard(text)
        if match is None:
            return text, choices
        value = rng.choice(_options(match, folder))
        choices.append(Choice(match.group(0), value))
        text = text[: match.start()] + value + text[match.end() :]
    raise ValidationError("prompt", "wildcards nest too deeply (does a file include itself?)")


def combinations(
    text: str, folder: Path | None = None, limit: int = MAX_COMBINATIONS
) -> list[tuple[str, list[Choice]]]:
    """Every prompt the wildcards can make, in order, with the picks of each."""
    folder = wildcards_dir() if folder is None else folder
    results: list[tuple[str, list[Choice]]] = []

    def expand(current: str, picks: list[Choice], depth: int) -> None:
        match = _first_wildcard(current)
        if match is None:
            results.append((current, picks))
            if len(results) > limit:
                raise ValidationError(
                    "prompt", f"the wildcards make more than {limit} combinations; use fewer"
                )
            return
        if depth > MAX_DEPTH * 100:
            raise ValidationError(
                "prompt", "wildcards nest too deeply (does a file include itself?)"
            )
        for value in _options(match, folder):
            text = current[: match.start()] + value + current[match.end() :]
            expand(text, [*picks, Choice(match.group(0), value)], depth + 1)

    expand(text, [], 0)
    # Identical prompts (e.g. `{a|a}`) are made once.
    unique = {prompt: picks for prompt, picks in results}
    return list(unique.items())


def combination_count(text: str, folder: Path | None = None) -> int:
    """How many prompts `combinations` would make (for a confirmation before queueing)."""
    return len(combinations(text, folder))


def describe_choices(choices: list[Choice]) -> str:
    """The picks as one metadata value: `{red|blue}=red; __animal__=cat`."""
    return "; ".join(f"{c.source}={c.value}" for c in choices)
