"""File names as the index stores them: losslessly, even when they are not valid UTF-8.

Linux names are bytes. Python shows bytes that are not UTF-8 as lone surrogates
("surrogateescape"), which SQLite, JSON and terminals refuse. Such a relative
path is stored as "/" + its bytes percent-quoted: no relative path starts with
"/", so the two forms never meet, and every other name is stored as it is.
"""

from __future__ import annotations

import os
from urllib.parse import quote_from_bytes, unquote_to_bytes

_MARK = "/"


def to_index(rel: str) -> str:
    """The index form of a '/'-separated relative path (always encodable as UTF-8)."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return _MARK + quote_from_bytes(os.fsencode(rel), safe="/")
    return rel


def from_index(stored: str) -> str:
    """The relative path again, exactly as the file system spells it."""
    if stored.startswith(_MARK):
        return os.fsdecode(unquote_to_bytes(stored[len(_MARK) :]))
    return stored
