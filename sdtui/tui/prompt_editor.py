"""The prompt editors: a TextArea that colours the weighting syntax as you type.

`(word:1.3)`, `(word)`, `[word]`, wildcards `{a|b}` / `__name__`, escapes and
the spot of a syntax error get their own colours. The spans come from
`sdtui.prompts.syntax.highlight`, the same parser that checks the prompt
before it is queued, so what is coloured is what the engine will read.
"""

from __future__ import annotations

import dataclasses
from bisect import bisect_right

from rich.style import Style
from textual.widgets import TextArea

from sdtui.prompts.syntax import highlight

# Highlight names (prefixed so they never collide with a language's captures)
# and their look; fixed colours that read on both dark and light themes.
PROMPT_STYLES: dict[str, Style] = {
    "prompt.bracket": Style(color="#c586c0", bold=True),
    "prompt.weight": Style(color="#4fc1ff", bold=True),
    "prompt.emphasis": Style(bold=True),
    "prompt.deemphasis": Style(dim=True),
    "prompt.escape": Style(color="#d7ba7d"),
    "prompt.wildcard": Style(color="#dcb440", underline=True),
    "prompt.error": Style(color="white", bgcolor="#c03030", bold=True),
    "prompt.lora": Style(color="#6a9955", bold=True),
    "prompt.lora-unknown": Style(color="#f44747", underline=True),
}


class PromptEditor(TextArea):
    """A multi-line prompt editor with the weighting syntax highlighted."""

    def _set_theme(self, theme: str) -> None:
        super()._set_theme(theme)
        # Each editor holds its own copy of the theme: add the prompt styles to it.
        self._theme = dataclasses.replace(
            self._theme, syntax_styles={**self._theme.syntax_styles, **PROMPT_STYLES}
        )

    def _build_highlight_map(self) -> None:
        # TextArea keeps highlights per line as UTF-8 byte offsets, as tree-sitter gives them.
        self._line_cache.clear()
        self._highlights.clear()
        lines = self.text.split("\n")
        starts = [0]
        for line in lines[:-1]:
            starts.append(starts[-1] + len(line) + 1)
        # The app says which LoRA names its folder has (an app without one knows them all).
        lora_known = getattr(self.app, "lora_name_known", lambda _tag: True)
        for span in highlight(self.text):
            row = bisect_right(starts, span.start) - 1
            line = lines[row]
            start = span.start - starts[row]
            end = min(span.end - starts[row], len(line))  # spans end on their line
            if end <= start:
                continue
            byte_start = len(line[:start].encode("utf-8"))
            byte_end = byte_start + len(line[start:end].encode("utf-8"))
            kind = span.kind
            if kind == "lora" and not lora_known(self.text[span.start : span.end]):
                kind = "lora-unknown"  # no such file in the LoRA folder
            self._highlights[row].append((byte_start, byte_end, f"prompt.{kind}"))
