"""Text from images and prompts, made safe to print on a terminal.

Prompts read from other tools' files can hold escape sequences (ESC, CSI,
BEL...) that a terminal would obey: clear the screen, retitle the window,
fake a prompt. Every control character but newline and tab is shown as
U+FFFD instead. Markup such as `[bold]` is ordinary text here; front ends
print through Rich `Text` (or plain `print`) so it is never interpreted.
"""

from __future__ import annotations

import unicodedata

REPLACEMENT = "\ufffd"


def printable(text: str, keep: str = "\n\t") -> str:
    """`text` with every control character except those in `keep` replaced by U+FFFD."""
    return "".join(
        REPLACEMENT if ch not in keep and unicodedata.category(ch) == "Cc" else ch
        for ch in str(text)
    )


def one_line(text: str) -> str:
    """`text` as one printable line: whitespace runs (newlines too) become one space."""
    return " ".join(printable(text).split())


def json_for_terminal(text: str) -> str:
    """JSON text (from `json.dumps(..., ensure_ascii=False)`) with the C1 controls that
    JSON leaves raw escaped too, so a terminal shows them instead of obeying them."""
    return "".join(f"\\u{ord(ch):04x}" if 0x7F <= ord(ch) <= 0x9F else ch for ch in text)
