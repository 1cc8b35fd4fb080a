"""Opening a file the user named (an image, a config, a theme...) without ever hanging.

A FIFO, a terminal or a device under a normal-looking name (`cat.png`,
`config.toml`) would block `open()` or feed bytes forever. The file is opened
non-blocking, and only kept when the open descriptor itself is a regular file
(checked with fstat, so a swap after a stat cannot fool it) of a bounded size.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

TEXT_LIMIT = 4 * 1024 * 1024  # config, themes, styles, wildcards: far more than any needs

_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class NotRegularFileError(OSError):
    """The path names something that is not a regular file (or one far too large)."""

    def __init__(self, path: str | os.PathLike[str], what: str) -> None:
        super().__init__(errno.EINVAL, what, os.fspath(path))
        self.what = what

    def __str__(self) -> str:
        return self.what


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: str | os.PathLike[str], max_bytes: int | None = None) -> BinaryIO:
    """`path` opened for reading in binary; OSError when it cannot be.

    Raises NotRegularFileError for a FIFO, device, socket (or a file over
    `max_bytes`), IsADirectoryError for a folder, and the usual OSErrors.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a folder", os.fspath(path))
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFileError(path, f"is {_kind(info.st_mode)}, not a file")
        if max_bytes is not None and info.st_size > max_bytes:
            raise NotRegularFileError(
                path, f"is too large ({info.st_size} bytes; at most {max_bytes})"
            )
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)  # ordinary reads from here on
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular_bytes(path: str | os.PathLike[str], max_bytes: int = TEXT_LIMIT) -> bytes:
    """The whole content of a regular file of at most `max_bytes`."""
    with open_regular(path, max_bytes) as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:  # grew after the check
        raise NotRegularFileError(path, f"is too large (over {max_bytes} bytes)")
    return data


def read_regular_text(path: str | os.PathLike[str], max_bytes: int = TEXT_LIMIT) -> str:
    """The UTF-8 text of a regular file; UnicodeDecodeError when it is not UTF-8."""
    return read_regular_bytes(path, max_bytes).decode("utf-8")


def is_regular(path: Path) -> bool:
    """True when `path` (after symbolic links) is a regular file; never blocks."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False
