"""Text from images and prompts, made safe to print on a terminal.

Prompts read from other tools' files can hold escape sequences (ESC, CSI,
BEL...) that a terminal would obey: clear the screen, retitle the window,
fake a prompt. Every control character but newline and tab is shown as
U+FFFD instead. Markup such as `[bold]` is ordinary text here; front ends
print through Rich `Text` (or plain `print`) so it is never interpreted.
"""

from __future__ import annotations

import os
import unicodedata

REPLACEMENT = "\ufffd"
# Bidirectional overrides make a name read differently from what it is ("gpj.exe").
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def _unprintable(ch: str) -> bool:
    # Cc: C0/C1 controls (ESC, BEL, CSI...); Cs: a byte that was not UTF-8.
    return unicodedata.category(ch) in ("Cc", "Cs")


def printable(text: str, keep: str = "\n\t") -> str:
    """`text` with every control character except those in `keep`, and every lone
    surrogate (a byte that was not UTF-8), replaced by U+FFFD."""
    return "".join(REPLACEMENT if ch not in keep and _unprintable(ch) else ch for ch in str(text))


def path_text(path: str | os.PathLike[str]) -> str:
    """A file name as the terminal may show it: controls, bidirectional overrides and
    bytes that are not UTF-8 written as escapes (`\\x1b`, `\\xff`, `\\u202e`).

    Every path sdtui prints (CLI output, error messages, the log, the app) goes
    through here, so a file name can never drive the terminal; a backslash is
    doubled so that the escapes cannot be faked.
    """
    out = []
    for ch in os.fspath(path):
        code = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the original byte
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code <= 0xFF and _unprintable(ch):
            out.append(f"\\x{code:02x}")
        elif _unprintable(ch) or ch in _BIDI_CONTROLS:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def one_line(text: str) -> str:
    """`text` as one printable line: whitespace runs (newlines too) become one space."""
    return " ".join(printable(text).split())


def json_for_terminal(text: str) -> str:
    """JSON text (from `json.dumps(..., ensure_ascii=False)`) with the C1 controls and
    lone surrogates that JSON leaves raw escaped too: a terminal shows them instead of
    obeying them, and `json.loads` + `os.fsencode` give back a file name's exact bytes."""
    return "".join(
        f"\\u{ord(ch):04x}"
        if 0x7F <= ord(ch) <= 0x9F or 0xD800 <= ord(ch) <= 0xDFFF or ch in _BIDI_CONTROLS
        else ch
        for ch in text
    )
