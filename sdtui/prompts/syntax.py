"""Reading AUTOMATIC1111 attention syntax: `(word:1.3)`, `(word)`, `[word]`, `\\(`.

Stdlib only: the TUI uses `highlight` while the user types, and the request
checks use `parse_weighted` before anything heavy is imported. Unlike A1111,
which quietly repairs broken brackets, a malformed prompt is refused with a
message that says where the problem is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sdtui.errors import ValidationError
from sdtui.prompts.loras import lora_spans

UP = 1.1  # what one pair of ( ) multiplies by, as in A1111
DOWN = 1 / 1.1  # what one pair of [ ] multiplies by
MAX_WEIGHT = 10.0

# After a ':' inside ( ): the weight, up to the closing bracket.
_WEIGHT_TAIL = re.compile(r":\s*([^()\[\]:\\]*?)\s*\)")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)")
# Wildcards are resolved before encoding; they are only highlighted here.
_WILDCARD = re.compile(r"\{[^{}]*\|[^{}]*\}|__[\w\-/]+__")


@dataclass(frozen=True)
class Fragment:
    """A run of text with one weight; `start`/`end` index the source prompt."""

    text: str
    weight: float
    start: int
    end: int


@dataclass(frozen=True)
class WeightedPrompt:
    fragments: tuple[Fragment, ...]
    has_syntax: bool  # brackets or escapes were used: the plain text path would differ

    @property
    def plain_text(self) -> str:
        """The words alone, brackets and weights removed (what the tokenizer sees)."""
        return "".join(f.text for f in self.fragments)

    @property
    def is_weighted(self) -> bool:
        return any(f.weight != 1.0 for f in self.fragments)


@dataclass(frozen=True)
class Span:
    """A highlighted stretch of a prompt. `kind` is one of: bracket, weight,
    emphasis, deemphasis, escape, wildcard, error."""

    start: int
    end: int
    kind: str


def _column(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"line {line}, column {col}" if "\n" in text else f"column {col}"


class _Parser:
    def __init__(self, text: str, field: str) -> None:
        self.text = text
        self.field = field
        self.fragments: list[Fragment] = []
        self.spans: list[Span] = []
        self.has_syntax = False

    def fail(self, pos: int, message: str) -> ValidationError:
        self.spans.append(Span(pos, pos + 1, "error"))
        return ValidationError(self.field, f"{message} at {_column(self.text, pos)}")

    def add_text(self, text: str, weight: float, start: int, end: int) -> None:
        last = self.fragments[-1] if self.fragments else None
        if last is not None and last.weight == weight and last.end == start:
            self.fragments[-1] = Fragment(last.text + text, weight, last.start, end)
        else:
            self.fragments.append(Fragment(text, weight, start, end))

    def run(self) -> WeightedPrompt:
        text = self.text
        # Each open bracket: (char, position, weight factor it applies).
        stack: list[tuple[str, int, float]] = []
        weight = 1.0
        pos = 0
        while pos < len(text):
            ch = text[pos]
            if ch == "\\" and pos + 1 < len(text) and text[pos + 1] in "()[]\\":
                self.has_syntax = True
                self.spans.append(Span(pos, pos + 2, "escape"))
                self.add_text(text[pos + 1], weight, pos, pos + 2)
                pos += 2
            elif ch == "(":
                self.has_syntax = True
                self.spans.append(Span(pos, pos + 1, "bracket"))
                factor = UP
                close = self._explicit_weight(pos, stack)
                if close is not None:
                    factor = close
                stack.append(("(", pos, factor))
                weight *= factor
                pos += 1
            elif ch == "[":
                self.has_syntax = True
                self.spans.append(Span(pos, pos + 1, "bracket"))
                stack.append(("[", pos, DOWN))
                weight *= DOWN
                pos += 1
            elif ch in ")]":
                want = "(" if ch == ")" else "["
                if not stack:
                    raise self.fail(
                        pos,
                        f"'{ch}' has no '{want}' before it (write \\{ch} for a literal bracket)",
                    )
                open_ch, open_pos, factor = stack[-1]
                if open_ch != want:
                    raise self.fail(
                        pos,
                        f"'{ch}' closes the '{open_ch}' opened at {_column(text, open_pos)}",
                    )
                stack.pop()
                weight /= factor
                self.spans.append(Span(pos, pos + 1, "bracket"))
                pos += 1
            elif ch == ":" and stack and stack[-1][0] == "(":
                match = _WEIGHT_TAIL.match(text, pos)
                if match is None:
                    self.add_text(ch, weight, pos, pos + 1)  # a colon in ordinary words
                    pos += 1
                else:
                    self.spans.append(Span(pos, match.end() - 1, "weight"))
                    pos = match.end() - 1  # the ')' is handled as a close
            elif ch == ":" and stack and stack[-1][0] == "[":
                raise self.fail(
                    pos,
                    "prompt editing [from:to:when] is not supported; "
                    "use ( ) or [ ] without ':' inside [ ]",
                )
            else:
                end = pos + 1
                while end < len(text) and text[end] not in "\\()[]:":
                    end += 1
                self.add_text(text[pos:end], weight, pos, end)
                kind = "emphasis" if weight > 1 else "deemphasis" if weight < 1 else ""
                if kind:
                    self.spans.append(Span(pos, end, kind))
                pos = end
        if stack:
            open_ch, open_pos, _ = stack[-1]
            closer = ")" if open_ch == "(" else "]"
            raise self.fail(open_pos, f"'{open_ch}' is never closed (add '{closer}')")
        return WeightedPrompt(tuple(self.fragments), self.has_syntax)

    def _explicit_weight(self, open_pos: int, stack: list) -> float | None:
        """The number of `(text:1.3)` opened at `open_pos`, None for a plain `(text)`."""
        text = self.text
        depth = 0
        pos = open_pos + 1
        while pos < len(text):
            ch = text[pos]
            if ch == "\\":
                pos += 2
                continue
            if ch in "([":
                depth += 1
            elif ch in ")]":
                if depth == 0:
                    return None
                depth -= 1
            elif ch == ":" and depth == 0:
                match = _WEIGHT_TAIL.match(text, pos)
                if match is not None:
                    return self._number(match.group(1), pos)
            pos += 1
        return None

    def _number(self, value: str, pos: int) -> float:
        if not value:
            raise self.fail(pos, "a weight is missing after ':' (write e.g. (word:1.2))")
        if not _NUMBER.fullmatch(value):
            raise self.fail(pos, f"the weight {value!r} is not a number (write e.g. (word:1.2))")
        number = float(value)
        if not 0 <= number <= MAX_WEIGHT:
            raise self.fail(pos, f"the weight {value} must be from 0 to {MAX_WEIGHT:g}")
        return number


def parse_weighted(prompt: str, field: str = "prompt") -> WeightedPrompt:
    """Split a prompt into weighted fragments; ValidationError(field, ...) when malformed."""
    return _Parser(prompt, field).run()


def highlight(prompt: str) -> list[Span]:
    """Spans to colour in an editor: brackets, weights, weighted words, escapes,
    wildcards, `<lora:...>` tags, and the spot of a syntax error. Never raises."""
    parser = _Parser(prompt, "prompt")
    try:
        parser.run()
    except ValidationError:
        pass
    spans = parser.spans
    spans += [Span(m.start(), m.end(), "wildcard") for m in _WILDCARD.finditer(prompt)]
    spans += [Span(start, end, "lora") for start, end, _name in lora_spans(prompt)]
    return sorted(spans, key=lambda s: (s.start, s.end))


def check_prompt_syntax(prompt: str, negative_prompt: str = "") -> None:
    """Raise ValidationError for malformed weighting in either prompt; stdlib only."""
    parse_weighted(prompt, "prompt")
    parse_weighted(negative_prompt, "negative prompt")
