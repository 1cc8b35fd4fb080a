"""A gallery folder: saving images, keeping the index in step with the files, the trash.

Layout (the index and trash are hidden so file browsers show only images):

    <root>/YYYY-MM-DD/YYYYMMDD-HHMMSS-<seed>-<prompt-slug>.png   saved images
    <root>/imported/<name>.png                                   imported images
    <root>/.sdtui/index.sqlite3, favorites.txt, thumbs/          the cache
    <root>/.trash/<token>/<name>.png                             deleted images
"""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import BinaryIO, TypeVar

from sdtui.config import ensure_private_dir
from sdtui.display import path_text
from sdtui.errors import SaveError, SdtuiError, ValidationError
from sdtui.gallery.entry import GalleryEntry, entry_from_row, row_from_metadata
from sdtui.gallery.files import (
    copy_new_file,
    is_own_temp,
    move_no_overwrite,
    same_content,
    slugify,
    temp_path,
    write_new_file,
)
from sdtui.gallery.index import (
    SELECT_COLUMNS,
    GalleryIndex,
    IndexDamagedError,
    IndexRow,
    SqlValue,
    _is_damage,
    fts_query,
    is_disk_full,
)
from sdtui.gallery.metadata import (
    ImageReadError,
    metadata_from_texts,
    png_info,
    read_metadata,
    sdtui_record,
)
from sdtui.gallery.names import from_index, to_index
from sdtui.gallery.scan import IMAGE_SUFFIXES, FolderState, folders_to_list, list_folders
from sdtui.regular_files import open_regular, read_regular_text
from sdtui.results import GeneratedImage, GenerationResult

log = logging.getLogger(__name__)

SORTS = ("newest", "oldest", "relevance")
THUMB_SIZES = (16, 2048)
STATE_DIR = ".sdtui"
TRASH_DIR = ".trash"
IMPORT_DIR = "imported"
STALE_TEMP_SECONDS = 15 * 60  # far longer than any save takes
RANK_WINDOW = 5000  # matches ranked by relevance for the first pages of a common word
_DAY_FOLDER = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_T = TypeVar("_T")


class GalleryError(SdtuiError):
    """A gallery operation could not be done (the reason says why)."""


class DiskFullError(GalleryError):
    """The index could not be written because the disk is full."""


class EntryNotFoundError(GalleryError):
    """No image with that id or path in the gallery."""

    exit_code = 2


@dataclass
class SyncReport:
    """What `sync`, `rebuild` or `import_paths` did."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0  # import_paths: files whose content was in the gallery already
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (file, reason)
    entries: list[GalleryEntry] = field(default_factory=list)  # import_paths only


class Gallery:
    """One gallery folder and its index; safe to share between threads."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.expanduser(str(root)))
        try:
            ensure_private_dir(self.root)
            self.state_dir = ensure_private_dir(self.root / STATE_DIR)
        except OSError as exc:
            raise GalleryError(
                f"cannot use the gallery folder {self.root}: {exc.strerror or exc}"
            ) from None
        self.index_path = self.state_dir / "index.sqlite3"
        self.trash_dir = self.root / TRASH_DIR
        self.thumbs_dir = self.state_dir / "thumbs"
        self.favorites_path = self.state_dir / "favorites.txt"
        self.recovered = False  # True when a damaged index was replaced while opening
        self._index = self._open_index()
        if self.recovered:
            self.sync()

    # -- the index, recovered when damaged -------------------------------------

    def _open_index(self) -> GalleryIndex:
        try:
            try:
                index = GalleryIndex(self.index_path)
            except IndexDamagedError as exc:
                log.warning("gallery index %s is damaged (%s); rebuilding it", self.index_path, exc)
                self._move_damaged_index()
                self.recovered = True
                index = GalleryIndex(self.index_path)
        except (sqlite3.Error, IndexDamagedError) as exc:
            raise GalleryError(f"cannot open the gallery index {self.index_path}: {exc}") from None
        if index.repaired:
            self.recovered = True
        return index

    def _move_damaged_index(self) -> None:
        # Keep the last damaged copy for a post-mortem; it is only a cache.
        for suffix in ("", "-wal", "-shm"):
            path = Path(f"{self.index_path}{suffix}")
            if not os.path.lexists(path):
                continue
            target = self.state_dir / f"index.damaged.sqlite3{suffix}"
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target, ignore_errors=True)  # an older damaged copy
            try:
                os.replace(path, target)
            except OSError:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)

    def _db(self, action: Callable[[GalleryIndex], _T]) -> _T:
        """Run an index action; a damaged index is replaced, refilled from the files, retried."""
        try:
            return action(self._index)
        except sqlite3.Error as exc:
            if not _is_damage(exc):
                raise self._failure(exc) from None
            log.warning("gallery index damaged (%s); rebuilding it from the files", exc)
        self._index.close()
        self._move_damaged_index()
        self._index = self._open_index()
        self.recovered = True
        self.sync()
        return action(self._index)

    def _failure(self, exc: sqlite3.Error) -> GalleryError:
        """The index could not do something: say "disk full" when that is why (SQLite
        often reports a full disk as a mere "disk I/O error")."""
        if is_disk_full(exc) or (_io_error(exc) and _nearly_full(self.state_dir)):
            return DiskFullError(
                f"the disk holding {path_text(self.state_dir)} is full ({exc})",
                "free some space; images already saved are safe",
            )
        return GalleryError(f"the gallery index failed: {exc}")

    def close(self) -> None:
        self._index.close()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- paths ---------------------------------------------------------------

    def _rel(self, path: Path) -> str:
        """The index form of a path inside the gallery (see `names`)."""
        return to_index(path.relative_to(self.root).as_posix())

    def _abs(self, rel: str) -> Path:
        return self.root / from_index(rel)

    def _inside(self, path: Path) -> str | None:
        """The relative path of `path` when it lies in the gallery (not its hidden folders)."""
        try:
            rel = Path(os.path.realpath(path)).relative_to(os.path.realpath(self.root))
        except ValueError:
            return None
        if not rel.parts or any(part.startswith(".") for part in rel.parts):
            return None
        return to_index(rel.as_posix())

    # -- saving ----------------------------------------------------------------

    def save(self, generated: GeneratedImage, result: GenerationResult) -> GalleryEntry:
        """Write one image as a new PNG with its settings, and index it.

        Raises SaveError (with the cause) when the file cannot be written; then
        no file, not even a partial one, is left behind.
        """
        created = datetime.now().astimezone()
        folder = self.root / created.strftime("%Y-%m-%d")
        stem = f"{created:%Y%m%d-%H%M%S}-{generated.seed}-{slugify(generated.request.prompt)}"
        record = sdtui_record(generated, result, created)
        pnginfo = png_info(generated, result, created)

        def write(fh: BinaryIO) -> None:
            generated.image.save(fh, format="PNG", pnginfo=pnginfo)

        try:
            path = write_new_file(folder, stem, ".png", write)
        except OSError as exc:
            raise SaveError(
                f"could not save the image in {folder}: {exc.strerror or exc}",
                "free some disk space or choose another folder with --gallery",
            ) from None
        except (ValueError, TypeError) as exc:  # Pillow refusing the image itself
            raise SaveError(f"could not encode the image as PNG: {exc}") from None
        meta = metadata_from_texts({"sdtui": json.dumps(record, ensure_ascii=False)})
        stat = path.stat()
        try:
            self._note_folder(folder)
        except GalleryError:
            pass  # the add below reports an index that cannot be written
        row = row_from_metadata(self._rel(path), stat.st_size, stat.st_mtime_ns, meta)
        try:
            self._db(lambda index: index.add_rows([row]))
            entry = self.entry_for_path(path)
        except GalleryError as exc:
            # The PNG is safe on disk; the next sync will list it.
            error = SaveError(f"saved {path}, but could not add it to the gallery index: {exc}")
            error.written = path  # type: ignore[attr-defined]  # so nobody saves it twice
            raise error from None
        if entry is None:
            error = SaveError(f"saved {path}, but the gallery index did not take it")
            error.written = path  # type: ignore[attr-defined]
            raise error
        return entry

    # -- keeping the index in step with the files -----------------------------------

    def _writes_into(self, folder: Path) -> bool:
        """True for the folders sdtui saves into (day folders, imported/): the only
        places where a temporary file of an interrupted save can be cleaned up."""
        if folder.parent != self.root:
            return False
        return folder.name == IMPORT_DIR or _DAY_FOLDER.match(folder.name) is not None

    def _read_rows(
        self, states: dict[str, tuple[int, int]], report: SyncReport
    ) -> Iterator[IndexRow]:
        favorites = self._favorites_mirror()
        for rel, (size, mtime_ns) in states.items():
            path = self._abs(rel)
            try:
                meta = read_metadata(path, require_complete=True)
            except ImageReadError as exc:
                log.warning("skipping %s", exc)
                report.skipped.append((path, exc.message))
                self._db(partial(GalleryIndex.mark_skipped, entries=[(rel, size, mtime_ns)]))
                continue
            row = row_from_metadata(rel, size, mtime_ns, meta)
            if rel in favorites:
                row = dataclasses.replace(row, favorite=True)
            yield row

    def sync(self) -> SyncReport:
        """Notice files added, changed or removed by hand; reads only those files.

        Only folders whose modification time moved are listed (see `scan`), plus
        today's folder and a rolling share of the rest, so an unchanged gallery
        of 100,000 images costs a few hundred folder stats, not 100,000 file stats.
        Added, removed and renamed files are noticed by the next command; a file
        edited in place in an older folder within a bounded number of commands
        (each re-checks about `scan.ROLLING_FILES` files); `rebuild` checks all.
        """
        report = SyncReport()
        stored = self._db(lambda index: index.folder_states())
        known = {
            from_index(rel): FolderState(mtime, files, checked)
            for rel, (mtime, files, checked) in stored.items()
        }
        today = date.today().strftime("%Y-%m-%d")
        listing, gone_folders = folders_to_list(self.root, known, always=[today])
        found = list_folders(self.root, listing, known, self._hidden_entry)
        if "" in known:
            looked_at = set(found.folders) | gone_folders
            before = self._db(lambda index: index.file_states_in(looked_at))
        else:  # the first sync (or an index made before folders were recorded): all rows
            before = self._db(lambda index: index.file_states())
        gone = [rel for rel in before if rel not in found.files]
        changed = {rel: st for rel, st in found.files.items() if before.get(rel) != st}
        indexed = self._db(lambda index: index.indexed_among([*gone, *changed]))
        if gone:
            self._db(lambda index: index.remove_paths(gone))
            report.removed = len([rel for rel in gone if rel in indexed])
        if changed:
            written = self._db(lambda index: index.add_rows(self._read_rows(changed, report)))
            report.updated = len([rel for rel in changed if rel in indexed])
            report.added = written - report.updated
        rows = [
            (to_index(rel), state.mtime_ns, state.files, state.checked)
            for rel, state in found.folders.items()
        ]
        gone_rows = [to_index(rel) for rel in gone_folders]
        try:
            self._db(lambda index: index.set_folders(rows, gone_rows))
        except GalleryError as exc:  # e.g. a full disk: the next sync just lists them again
            log.info("could not record the folders' state: %s", exc)
        if gone:
            self._write_favorites_mirror()
        return report

    def _hidden_entry(self, folder: Path, name: str) -> None:
        """A hidden file met while listing: our own stale temporary files are cleaned."""
        if is_own_temp(name) and self._writes_into(folder):
            _remove_if_stale(folder / name)

    def _note_folder(self, folder: Path) -> None:
        """Record a folder sdtui just wrote into, so that the next sync lists it even if
        it is made and removed between two syncs (mtime -1: never seen listed)."""
        rel = self._rel(folder) if folder != self.root else ""
        self._db(lambda index: index.note_folder(rel))

    def rebuild(self) -> SyncReport:
        """Make the index again from the files alone; favourites are kept."""
        favorites = set(self._db(lambda index: index.favorite_paths())) | self._favorites_mirror()
        self._write_favorites_mirror(favorites)
        self._db(lambda index: index.clear())
        report = self.sync()
        self._write_favorites_mirror()
        return report

    def import_paths(self, paths: Iterable[Path]) -> SyncReport:
        """Copy images (files or folders of them) into the gallery and index them.

        Nothing is overwritten; unreadable files are skipped with the reason.
        Files already inside the gallery are just indexed. Importing is
        idempotent: a file whose content is already in the gallery gives that
        entry again (a retry adds nothing), and a copy that cannot be indexed
        is removed again.
        """
        report = SyncReport()
        for source in self._expand(paths, report):
            try:
                meta = read_metadata(source, require_complete=True)
            except ImageReadError as exc:
                report.skipped.append((source, exc.message))
                continue
            rel = self._inside(source)
            copied: Path | None = None
            if rel is None:
                existing = self._same_content(source)
                if existing is not None:
                    report.entries.append(existing)
                    report.unchanged += 1
                    continue
                suffix = source.suffix.lower()
                try:
                    copied = copy_new_file(
                        source, self.root / IMPORT_DIR, slugify(source.stem), suffix
                    )
                except OSError as exc:
                    report.skipped.append((source, f"could not copy: {exc.strerror or exc}"))
                    continue
                rel = self._rel(copied)
            path = self._abs(rel)
            try:
                self._note_folder(path.parent)
                stat = path.stat()
                row = row_from_metadata(rel, stat.st_size, stat.st_mtime_ns, meta)
                self._db(partial(GalleryIndex.add_rows, rows=[row]))
                entry = self.entry_for_path(path)
            except (GalleryError, OSError) as exc:
                if copied is not None:
                    copied.unlink(missing_ok=True)  # a failed import leaves nothing behind
                report.skipped.append((source, f"could not add it to the gallery: {exc}"))
                continue
            if entry is not None:
                report.entries.append(entry)
                report.added += 1
        return report

    def _same_content(self, source: Path) -> GalleryEntry | None:
        """The entry whose file holds exactly the bytes of `source`, if there is one."""
        try:
            size = source.stat().st_size
        except OSError:
            return None
        sql = f"SELECT {SELECT_COLUMNS} FROM images WHERE size = ? ORDER BY id"
        for row in self._db(lambda index: index.query(sql, (size,))):
            entry = entry_from_row(self.root, row)
            if same_content(source, entry.path):
                return entry
        return None

    def _expand(self, paths: Iterable[Path], report: SyncReport) -> Iterator[Path]:
        """The image files named, folders walked; the gallery's own folder is never
        walked into (its files are indexed already, and imports land there)."""
        own = os.path.realpath(self.root)
        for raw in paths:
            path = Path(os.path.expanduser(str(raw)))
            if path.is_dir():
                if os.path.realpath(path) == own:
                    report.skipped.append((path, "is the gallery folder itself"))
                    continue
                for folder, dirs, files in os.walk(path):
                    dirs[:] = sorted(
                        d
                        for d in dirs
                        if not d.startswith(".")
                        and os.path.realpath(os.path.join(folder, d)) != own
                    )
                    for name in sorted(files):
                        if name.lower().endswith(IMAGE_SUFFIXES) and not name.startswith("."):
                            yield Path(folder) / name
            elif path.exists() or path.is_symlink():
                yield path
            else:
                report.skipped.append((path, "no such file"))

    # -- favourites mirror: survives a damaged index -------------------------------

    def _favorites_mirror(self) -> set[str]:
        try:
            text = read_regular_text(self.favorites_path)
        except (OSError, UnicodeDecodeError):
            return set()
        return {line for line in text.splitlines() if line}

    def _write_favorites_mirror(self, paths: Iterable[str] | None = None) -> None:
        if paths is None:
            paths = self._db(lambda index: index.favorite_paths())
        text = "".join(f"{p}\n" for p in sorted(paths))
        tmp = temp_path(self.state_dir, "favorites")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, self.favorites_path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            log.warning("could not write %s: %s", self.favorites_path, exc.strerror or exc)

    # -- queries for the TUI and the CLI -------------------------------------------

    def list(
        self,
        search: str = "",
        favorites: bool = False,
        model: str | None = None,
        since: datetime | date | float | None = None,
        until: datetime | date | float | None = None,
        sort: str = "newest",
        limit: int = 50,
        offset: int = 0,
    ) -> list[GalleryEntry]:
        """One page of entries matching all the filters given."""
        if sort not in SORTS:
            raise ValidationError("sort", f"must be one of {', '.join(SORTS)}, got {sort!r}")
        if limit < 0 or offset < 0:
            raise ValidationError("limit", "limit and offset must not be negative")
        where, params = _filters(search, favorites, model, since, until)
        query = _fts_query(search)
        columns = ", ".join(f"images.{c.strip()}" for c in SELECT_COLUMNS.split(","))
        if sort == "relevance" and query:
            # Joined so that FTS5 ranks the matches itself (bm25).
            where, params = _filters("", favorites, model, since, until)
            extra = where.replace("WHERE ", "AND ", 1) if where else ""
            window = self._rank_window(query, offset + limit) if not where else None
            if window is not None:
                extra, params = "AND images_fts.rowid >= ?", [window]
            sql = (
                f"SELECT {columns} FROM images_fts JOIN images ON images.id = images_fts.rowid "
                f"WHERE images_fts MATCH ? {extra} "
                "ORDER BY bm25(images_fts), images.created DESC LIMIT ? OFFSET ?"
            )
            params = [query, *params]
        else:
            direction = "ASC" if sort == "oldest" else "DESC"
            # With only a word search, walking the date index and stopping at the
            # page's last match beats sorting every match (common words: 30% of rows).
            hint = "INDEXED BY images_created" if query and not (favorites or model) else ""
            sql = (
                f"SELECT {columns} FROM images {hint} {where} "
                f"ORDER BY created {direction}, id {direction} LIMIT ? OFFSET ?"
            )
        rows = self._db(lambda index: index.query(sql, [*params, limit, offset]))
        return [entry_from_row(self.root, row) for row in rows]

    def _rank_window(self, query: str, needed: int) -> int | None:
        """The smallest id of the newest RANK_WINDOW matches, when there are more.

        Ranking costs per match: a word in 30% of 100,000 images would take
        ~70 ms to rank whole. Its first pages are ranked among the RANK_WINDOW
        most recently indexed matches instead (~5x faster); pages past the
        window, and rarer words, are ranked among all matches.
        """
        if needed > RANK_WINDOW:
            return None
        sql = (
            "SELECT rowid FROM images_fts WHERE images_fts MATCH ? "
            "ORDER BY rowid DESC LIMIT 1 OFFSET ?"
        )
        row = self._db(lambda index: index.query_one(sql, (query, RANK_WINDOW - 1)))
        return None if row is None else int(row[0])

    def count(
        self,
        search: str = "",
        favorites: bool = False,
        model: str | None = None,
        since: datetime | date | float | None = None,
        until: datetime | date | float | None = None,
    ) -> int:
        """How many entries match (what `list` would page through)."""
        query = _fts_query(search)
        params: builtins.list[SqlValue]
        if query and not (favorites or model or since is not None or until is not None):
            # The search table holds exactly one row per image: count there, no lookups.
            sql, params = "SELECT count(*) FROM images_fts WHERE images_fts MATCH ?", [query]
        else:
            where, params = _filters(search, favorites, model, since, until)
            sql = f"SELECT count(*) FROM images {where}"
        row = self._db(lambda index: index.query_one(sql, params))
        return int(row[0]) if row else 0

    def get(self, entry_id: int) -> GalleryEntry | None:
        if not 0 < int(entry_id) < 2**63:  # no such row; SQLite could not even take the number
            return None
        sql = f"SELECT {SELECT_COLUMNS} FROM images WHERE id = ?"
        row = self._db(lambda index: index.query_one(sql, (int(entry_id),)))
        return None if row is None else entry_from_row(self.root, row)

    def entry_for_path(self, path: Path) -> GalleryEntry | None:
        rel = self._inside(Path(path))
        if rel is None:
            return None
        sql = f"SELECT {SELECT_COLUMNS} FROM images WHERE path = ?"
        row = self._db(lambda index: index.query_one(sql, (rel,)))
        return None if row is None else entry_from_row(self.root, row)

    def models(self) -> builtins.list[str]:
        sql = "SELECT DISTINCT model FROM images WHERE model IS NOT NULL ORDER BY model"
        return [row[0] for row in self._db(lambda index: index.query(sql))]

    def _require(self, entry_id: int) -> GalleryEntry:
        entry = self.get(entry_id)
        if entry is None:
            raise EntryNotFoundError(f"no image with id {entry_id} in the gallery")
        return entry

    # -- changes ------------------------------------------------------------------

    def set_favorite(self, entry_id: int, favorite: bool = True) -> GalleryEntry:
        self._require(entry_id)

        def update(index: GalleryIndex) -> None:
            with index.write() as conn:
                conn.execute(
                    "UPDATE images SET favorite = ? WHERE id = ?", (int(favorite), entry_id)
                )

        self._db(update)
        self._write_favorites_mirror()
        return self._require(entry_id)

    def delete(self, entry_id: int) -> str:
        """Move an image to the gallery's trash; returns a token for `undo_delete`."""
        entry = self._require(entry_id)
        token = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}"
        folder = self.trash_dir / token
        try:
            ensure_private_dir(self.trash_dir)
            trashed = move_no_overwrite(entry.path, folder, entry.path.stem, entry.path.suffix)
        except FileNotFoundError:
            self._db(lambda index: index.remove_paths([entry.rel_path]))
            raise GalleryError(
                f"{entry.path} no longer exists; removed it from the gallery list"
            ) from None
        except OSError as exc:
            raise GalleryError(f"could not move {entry.path} to the trash: {exc}") from None

        def record(index: GalleryIndex) -> None:
            with index.write() as conn:
                conn.execute("DELETE FROM images WHERE id = ?", (entry_id,))
                conn.execute(
                    "INSERT INTO trash (token, original, trashed, favorite, deleted) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (token, entry.rel_path, self._rel(trashed), int(entry.favorite), time.time()),
                )

        self._db(record)
        if entry.favorite:
            self._write_favorites_mirror()
        return token

    def undo_delete(self, token: str) -> GalleryEntry:
        """Put a deleted image back where it was (next free name if that is taken)."""
        row = self._db(
            lambda index: index.query_one(
                "SELECT original, trashed, favorite FROM trash WHERE token = ?", (token,)
            )
        )
        if row is None:
            raise EntryNotFoundError("nothing to undo: that deletion is not in the trash")
        original = Path(from_index(row["original"]))
        trashed = self._abs(row["trashed"])
        if (
            trashed.parent.parent != self.trash_dir
            or original.is_absolute()
            or ".." in original.parts
        ):  # an index edited by hand must not move files from or to anywhere else
            raise GalleryError("the trash record of that deletion is damaged; nothing was moved")
        folder = self.root / original.parent
        try:
            restored = move_no_overwrite(trashed, folder, original.stem, original.suffix)
        except OSError as exc:
            raise GalleryError(f"could not restore {path_text(original)}: {exc}") from None
        try:
            os.rmdir(trashed.parent)  # the deletion's own folder, empty now
        except OSError:
            pass
        self._note_folder(restored.parent)
        try:
            meta = read_metadata(restored)
        except ImageReadError as exc:
            raise GalleryError(f"restored {restored}, but cannot read it: {exc}") from None
        stat = restored.stat()
        index_row = row_from_metadata(self._rel(restored), stat.st_size, stat.st_mtime_ns, meta)
        index_row = dataclasses.replace(index_row, favorite=bool(row["favorite"]))

        def record(index: GalleryIndex) -> None:
            index.add_rows([index_row])
            with index.write() as conn:
                conn.execute("DELETE FROM trash WHERE token = ?", (token,))

        self._db(record)
        if row["favorite"]:
            self._write_favorites_mirror()
        entry = self.entry_for_path(restored)
        assert entry is not None
        return entry

    # -- thumbnails ---------------------------------------------------------------

    def thumbnail(self, entry_id: int, size: int = 256) -> Path:
        """A small PNG of the image (longest side `size`), made once and cached."""
        if not THUMB_SIZES[0] <= int(size) <= THUMB_SIZES[1]:
            raise ValidationError(
                "thumbnail size", f"must be from {THUMB_SIZES[0]} to {THUMB_SIZES[1]}"
            )
        entry = self._require(entry_id)
        try:
            stat = entry.path.stat()
        except OSError:
            raise GalleryError(f"{entry.path} no longer exists") from None
        key = hashlib.sha1(
            f"{entry.rel_path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()
        ).hexdigest()
        thumb = self.thumbs_dir / f"{key}-{int(size)}.png"
        if thumb.exists():
            return thumb
        from PIL import Image

        ensure_private_dir(self.thumbs_dir)
        try:
            with open_regular(entry.path) as fh, Image.open(fh) as im:
                im.draft("RGB", (size, size))  # JPEG decodes at a reduced scale
                im.thumbnail((size, size))
                small = im.convert("RGBA" if "A" in im.getbands() else "RGB")
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise ImageReadError(f"{entry.path}: cannot make a thumbnail ({exc})") from None

        def write(fh: BinaryIO) -> None:
            small.save(fh, format="PNG")

        tmp = write_new_file(self.thumbs_dir, f"{key}-{int(size)}", ".tmp-thumb", write)
        os.replace(tmp, thumb)  # a cache file: whoever finishes last wins, same content
        return thumb


def _io_error(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == 10  # SQLITE_IOERR


def _nearly_full(folder: Path, margin: int = 4 * 1024 * 1024) -> bool:
    try:
        return shutil.disk_usage(folder).free < margin
    except OSError:
        return False


def _remove_if_stale(path: Path) -> None:
    """Delete a temporary file left by a save that was killed part way.

    Only old ones: a younger file may be another process's save in progress.
    """
    try:
        if time.time() - path.stat().st_mtime > STALE_TEMP_SECONDS:
            path.unlink()
            log.info("removed %s, left by an interrupted save", path)
    except OSError:
        pass


# -- filters ------------------------------------------------------------------------


def _fts_query(search: str) -> str:
    """A safe FTS5 query: every word of the search, each as a prefix, all required."""
    return fts_query(search)


def _timestamp(name: str, value: datetime | date | float) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day).timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise ValidationError(name, f"must be a date or time, got {value!r}")


def _filters(
    search: str,
    favorites: bool,
    model: str | None,
    since: datetime | date | float | None,
    until: datetime | date | float | None,
) -> tuple[str, list[SqlValue]]:
    clauses: list[str] = []
    params: list[SqlValue] = []
    query = _fts_query(search)
    if query:
        clauses.append("id IN (SELECT rowid FROM images_fts WHERE images_fts MATCH ?)")
        params.append(query)
    if favorites:
        clauses.append("favorite = 1")
    if model:
        clauses.append("model = ?")
        params.append(model)
    if since is not None:
        clauses.append("created >= ?")
        params.append(_timestamp("since", since))
    if until is not None:
        clauses.append("created < ?")
        params.append(_timestamp("until", until))
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params
