"""Finding what changed in a gallery folder without looking at every file.

Adding, removing or renaming a file changes its folder's modification time, so
a sync stats each known folder (a few hundred) and lists only those whose time
moved, plus new folders found in them. Two kinds of folder are listed file by
file anyway: today's (where images are being saved, often edited) and a rolling
share of the others, least recently checked first, so that a file edited in
place (which leaves its folder's time alone) is noticed within a bounded number
of commands.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sdtui.gallery.names import to_index

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
ROLLING_FILES = 1000  # files re-checked per sync in folders whose time did not move
RACY_SECONDS = 2.0  # a folder changed this close to its listing may change again unseen


@dataclass
class FolderState:
    """A folder as the last sync saw it; rel is '/'-separated, '' for the gallery root."""

    mtime_ns: int
    files: int
    checked: float


@dataclass
class Listing:
    """What listing some folders found."""

    files: dict[str, tuple[int, int]] = field(default_factory=dict)  # index path -> size, mtime
    folders: dict[str, FolderState] = field(default_factory=dict)  # rel -> state now


def folder_path(root: Path, rel: str) -> str:
    """Plain strings: a sync joins a few hundred of them, where Path objects cost more."""
    return os.path.join(root, rel) if rel else os.fspath(root)


def _is_folder(path: str, follow: bool = False) -> os.stat_result | None:
    """The folder's stat, None when it is gone or not a folder. Links to folders inside
    the gallery are not walked (as before); the gallery root itself may be one."""
    try:
        st = os.stat(path) if follow else os.lstat(path)
    except OSError:
        return None
    return st if stat.S_ISDIR(st.st_mode) else None


def folders_to_list(
    root: Path,
    known: dict[str, FolderState],
    always: Iterable[str] = (),
    rolling_files: int | None = None,
) -> tuple[set[str], set[str]]:
    """(folders to list, known folders that are gone). The root when it is not known."""
    listing: set[str] = set()
    gone: set[str] = set()
    if "" not in known:  # the first sync: everything
        listing.add("")
    for rel, state in known.items():
        st = _is_folder(folder_path(root, rel), follow=not rel)
        if st is None:
            gone.add(rel)
        elif st.st_mtime_ns != state.mtime_ns:
            listing.add(rel)
    listing.update(rel for rel in always if _is_folder(folder_path(root, rel)) is not None)
    budget = ROLLING_FILES if rolling_files is None else rolling_files
    for rel in sorted(known, key=lambda r: known[r].checked):
        if budget <= 0:
            break
        if rel not in listing and rel not in gone:
            listing.add(rel)
            budget -= max(known[rel].files, 1)
    return listing, gone


def list_folders(
    root: Path,
    listing: Iterable[str],
    known: dict[str, FolderState],
    on_hidden: Callable[[Path, str], None] = lambda folder, name: None,
) -> Listing:
    """Stat the image files directly in each folder of `listing`, and list the new
    folders found in them (recursively). Hidden entries are passed to `on_hidden`."""
    found = Listing()
    started = time.time()
    stack = list(listing)
    while stack:
        rel = stack.pop()
        if rel in found.folders:
            continue
        folder = folder_path(root, rel)
        st = _is_folder(folder, follow=not rel)
        if st is None:
            continue
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            log.warning("cannot list %s: %s", folder, exc.strerror or exc)
            continue
        count = 0
        for item in entries:
            if item.name.startswith("."):
                on_hidden(Path(folder), item.name)
                continue
            child = f"{rel}/{item.name}" if rel else item.name
            try:
                if item.is_dir(follow_symlinks=False):
                    if child not in known:
                        stack.append(child)  # new: listed now, known from the next sync
                elif item.name.lower().endswith(IMAGE_SUFFIXES) and item.is_file():
                    file_stat = item.stat()
                    found.files[to_index(child)] = (file_stat.st_size, file_stat.st_mtime_ns)
                    count += 1
            except OSError:
                continue
        # A folder changed during this very listing could change again within the same
        # clock tick; recorded as unknown (-1), it is listed once more next time.
        racy = st.st_mtime_ns >= (started - RACY_SECONDS) * 1e9
        found.folders[rel] = FolderState(-1 if racy else st.st_mtime_ns, count, started)
    return found
