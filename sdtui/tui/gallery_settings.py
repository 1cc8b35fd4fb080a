"""An entry's settings as rows of text, the A1111 text to copy, and what differs between two.

Everything returns rich `Text` built with `append`, so prompts are shown as
written, never read as markup.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from sdtui.display import path_text, printable
from sdtui.params import format_parameters, quote_value

DIFF_STYLE = "bold black on yellow"
# Rows that name the file rather than a setting: shown, never counted as a difference.
IDENTITY_LABELS = frozenset({"Created", "File", "Favourite", "Source"})


def _size(entry: Any) -> str:
    if entry.width and entry.height:
        return f"{entry.width}x{entry.height}"
    return ""


def _number(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def settings_rows(entry: Any) -> list[tuple[str, str]]:
    """(label, value) for every setting of an entry, in a fixed order; empty values kept."""
    request = entry.request
    rows = [
        ("Prompt", entry.prompt or (request.prompt if request else "")),
        ("Negative prompt", entry.negative_prompt or (request.negative_prompt if request else "")),
        ("Model", entry.model or (request.model if request else "") or ""),
        ("Sampler", entry.scheduler or (request.scheduler if request else "") or ""),
        ("Steps", _number(entry.steps)),
        ("CFG scale", _number(entry.cfg)),
        ("Seed", _number(entry.seed)),
        ("Size", _size(entry)),
    ]
    rows += [(str(k), str(v)) for k, v in sorted(entry.extras.items())]
    rows += [
        ("Created", entry.created.strftime("%Y-%m-%d %H:%M:%S")),
        ("Favourite", "yes" if entry.favorite else "no"),
        ("Source", entry.source),
        ("File", path_text(entry.path)),
    ]
    # Images from other tools may carry escape sequences: shown as U+FFFD, never obeyed.
    return [(label, printable(value)) for label, value in rows]


def parameters_text(entry: Any) -> str:
    """The AUTOMATIC1111 `parameters` text of an entry, as other tools read it."""
    if entry.request is not None:
        return format_parameters(entry.request, entry.seed)
    pairs = [
        ("Steps", _number(entry.steps)),
        ("Sampler", entry.scheduler or ""),
        ("CFG scale", _number(entry.cfg)),
        ("Seed", _number(entry.seed)),
        ("Size", _size(entry)),
        ("Model", entry.model or ""),
    ]
    pairs += [(k, v) for k, v in entry.extras.items()]
    lines = [entry.prompt]
    if entry.negative_prompt:
        lines.append(f"Negative prompt: {entry.negative_prompt}")
    lines.append(", ".join(f"{k}: {quote_value(v)}" for k, v in pairs if v))
    return "\n".join(lines)


@dataclass(frozen=True)
class CompareRow:
    label: str
    left: str
    right: str

    @property
    def differs(self) -> bool:
        return self.label not in IDENTITY_LABELS and self.left != self.right


def compare_rows(left: Any, right: Any) -> list[CompareRow]:
    """Both entries' settings side by side, rows in the left entry's order then the rest."""
    a = dict(settings_rows(left))
    b = dict(settings_rows(right))
    labels = list(a) + [label for label in b if label not in a]
    return [CompareRow(label, a.get(label, ""), b.get(label, "")) for label in labels]


def word_diff(left: str, right: str) -> tuple[Text, Text]:
    """The two texts with the words that differ highlighted."""
    a_words, b_words = left.split(" "), right.split(" ")
    a_text, b_text = Text(), Text()
    matcher = difflib.SequenceMatcher(None, a_words, b_words, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        style = "" if tag == "equal" else DIFF_STYLE
        for text, words in ((a_text, a_words[i1:i2]), (b_text, b_words[j1:j2])):
            if words:
                if text:
                    text.append(" ")
                text.append(" ".join(words), style=style)
    return a_text, b_text


def settings_text(entry: Any) -> Text:
    """Every setting, one per line, values literal (prompts may span lines)."""
    text = Text()
    for label, value in settings_rows(entry):
        text.append(f"{label}: ", style="bold")
        text.append(value or "—")
        text.append("\n")
    text.rstrip()
    return text


def settings_text_short(entry: Any) -> Text:
    """The settings that fit beside the list: prompts, then the numbers on one line."""
    rows = dict(settings_rows(entry))
    text = Text()
    text.append(rows["Prompt"] or entry.shown_path)
    if rows["Negative prompt"]:
        text.append("\nnegative: ", style="bold")
        text.append(rows["Negative prompt"])
    numbers = [
        ("", rows["Model"]),
        ("", rows["Sampler"]),
        ("steps ", rows["Steps"]),
        ("cfg ", rows["CFG scale"]),
        ("seed ", rows["Seed"]),
        ("", rows["Size"]),
    ]
    text.append("\n\n" + " · ".join(f"{k}{v}" for k, v in numbers if v), style="dim")
    text.append(f"\n{rows['Created']}", style="dim")
    if entry.favorite:
        text.append("  ★ favourite", style="bold yellow")
    return text
