"""File names and writes that never overwrite and never leave a partial file.

A file is written to a hidden temporary name in its final folder, flushed to
disk, then given its final name with `os.link`, which fails instead of
replacing an existing file. Another process saving the same name at the same
moment gets the next free name.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from sdtui.config import ensure_private_dir
from sdtui.regular_files import open_regular

MAX_SLUG_CHARS = 48
MAX_SLUG_BYTES = 120  # ext4 allows 255 bytes per name; leave room for date, seed, counter
_UNSAFE = re.compile(r"[^\w]+", re.UNICODE)
_MAX_TRIES = 10_000
# Every temporary file sdtui writes starts with this; only such files are ever cleaned up.
TEMP_PREFIX = ".sdtui-tmp-"
_OWN_TEMP = re.compile(re.escape(TEMP_PREFIX) + r"[0-9a-f]{12}\.[^/]*\.tmp\Z")


def slugify(text: str, fallback: str = "image") -> str:
    """A short file-name part from any prompt: letters and digits joined by '-'.

    Path separators, dots, NUL, emoji and control characters all become '-',
    so the result can never name another folder or a reserved device.
    """
    text = unicodedata.normalize("NFKC", text).lower()
    slug = _UNSAFE.sub("-", text).replace("_", "-")
    slug = re.sub(r"-{2,}", "-", slug).strip("-")[:MAX_SLUG_CHARS]
    while len(slug.encode("utf-8")) > MAX_SLUG_BYTES:
        slug = slug[:-1]
    slug = slug.strip("-")
    return slug or fallback


def temp_path(folder: Path, stem: str) -> Path:
    """A fresh hidden temporary name in `folder` that `is_own_temp` recognises."""
    return folder / f"{TEMP_PREFIX}{secrets.token_hex(6)}.{stem[:40]}.tmp"


def is_own_temp(name: str) -> bool:
    """True for a name `temp_path` made (so sdtui may remove the file if it is stale)."""
    return _OWN_TEMP.match(name) is not None


def fsync_dir(folder: Path) -> None:
    """Make a new directory entry durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _candidates(stem: str, suffix: str) -> list[str]:
    return [f"{stem}{suffix}"] + [f"{stem}-{n}{suffix}" for n in range(2, _MAX_TRIES)]


def _link_unique(tmp: Path, folder: Path, stem: str, suffix: str) -> Path:
    """Give `tmp` the first free name `stem[-N]suffix` in `folder`; never replaces a file."""
    for name in _candidates(stem, suffix):
        final = folder / name
        try:
            os.link(tmp, final)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            # No hard links here (FAT, some network file systems): claim the name
            # with O_EXCL, then move the finished file over our own empty claim.
            return _claim_and_replace(tmp, folder, stem, suffix)
        os.unlink(tmp)
        return final
    raise FileExistsError(errno.EEXIST, "no free file name", str(folder / stem))


def _claim_and_replace(tmp: Path, folder: Path, stem: str, suffix: str) -> Path:
    for name in _candidates(stem, suffix):
        final = folder / name
        try:
            fd = os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        os.close(fd)
        os.replace(tmp, final)
        return final
    raise FileExistsError(errno.EEXIST, "no free file name", str(folder / stem))


def write_new_file(folder: Path, stem: str, suffix: str, write: Callable[[BinaryIO], None]) -> Path:
    """Write a new private (0600) file named `stem[-N]suffix` in `folder`; return its path.

    `write` receives an open binary file. On any failure the temporary file is
    removed and the OSError propagates; nothing appears under a final name.
    """
    ensure_private_dir(folder)
    tmp = temp_path(folder, stem)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        final = _link_unique(tmp, folder, stem, suffix)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(folder)
    return final


def copy_new_file(source: Path, folder: Path, stem: str, suffix: str) -> Path:
    """Copy `source` into `folder` under a free name, keeping its modification time."""

    def write(fh: BinaryIO) -> None:
        with open_regular(source) as src:
            shutil.copyfileobj(src, fh, 1024 * 1024)

    final = write_new_file(folder, stem, suffix, write)
    try:
        stat = source.stat()
        os.utime(final, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    except OSError:
        pass
    return final


def same_content(a: Path, b: Path, chunk: int = 1024 * 1024) -> bool:
    """True when two regular files hold the same bytes (False when either cannot be read)."""
    try:
        with open_regular(a) as fa, open_regular(b) as fb:
            if os.fstat(fa.fileno()).st_size != os.fstat(fb.fileno()).st_size:
                return False
            while True:
                block = fa.read(chunk)
                if block != fb.read(chunk):
                    return False
                if not block:
                    return True
    except OSError:
        return False


def move_no_overwrite(source: Path, folder: Path, stem: str, suffix: str) -> Path:
    """Move `source` into `folder` under a free name (same file system), never replacing."""
    ensure_private_dir(folder)
    for name in _candidates(stem, suffix):
        final = folder / name
        try:
            os.link(source, final)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            if final.exists():
                continue
            os.rename(source, final)  # small race window accepted where links are missing
            return final
        os.unlink(source)
        return final
    raise FileExistsError(errno.EEXIST, "no free file name", str(folder / stem))
