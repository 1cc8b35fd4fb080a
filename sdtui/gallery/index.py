"""The SQLite index of a gallery: fast listing and full-text search over its images.

It is a cache of what the PNG files say; `Gallery.rebuild()` can always make it
again. WAL mode and a busy timeout let two sdtui processes share one gallery.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import posixpath
import re
import sqlite3
import stat
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdtui.gallery.names import from_index, to_index

log = logging.getLogger(__name__)

# What SQLite stores in a column, and takes for a `?` placeholder.
SqlValue = str | int | float | bytes | None

# 2: the search index holds CJK text one character per token (see `fts_text`).
SCHEMA_VERSION = 2
BUSY_TIMEOUT_MS = 15_000

# Each folder listed at the last sync: a folder whose modification time is unchanged
# has the same entries, so a sync need not list it (see gallery.sync).
_FOLDERS_TABLE = """
CREATE TABLE IF NOT EXISTS folders (
    path TEXT PRIMARY KEY, mtime_ns INTEGER NOT NULL, files INTEGER NOT NULL,
    checked REAL NOT NULL
);
"""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,          -- relative to the gallery, '/'-separated
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    created REAL NOT NULL,              -- unix time
    source TEXT NOT NULL,
    prompt TEXT NOT NULL DEFAULT '',
    negative_prompt TEXT NOT NULL DEFAULT '',
    model TEXT,
    scheduler TEXT,
    seed INTEGER,
    width INTEGER,
    height INTEGER,
    steps INTEGER,
    cfg REAL,
    favorite INTEGER NOT NULL DEFAULT 0,
    extras TEXT NOT NULL DEFAULT '{}',
    request TEXT                        -- our exact request as JSON; NULL for other tools
);
CREATE INDEX IF NOT EXISTS images_created ON images (created);
CREATE INDEX IF NOT EXISTS images_model ON images (model, created);
CREATE INDEX IF NOT EXISTS images_favorite ON images (favorite, created);
CREATE VIRTUAL TABLE IF NOT EXISTS images_fts USING fts5 (
    prompt, negative_prompt, content='images', content_rowid='id',
    tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS images_ai AFTER INSERT ON images BEGIN
    INSERT INTO images_fts (rowid, prompt, negative_prompt)
    VALUES (new.id, sdtui_fts(new.prompt), sdtui_fts(new.negative_prompt));
END;
CREATE TRIGGER IF NOT EXISTS images_ad AFTER DELETE ON images BEGIN
    INSERT INTO images_fts (images_fts, rowid, prompt, negative_prompt)
    VALUES ('delete', old.id, sdtui_fts(old.prompt), sdtui_fts(old.negative_prompt));
END;
CREATE TRIGGER IF NOT EXISTS images_au AFTER UPDATE OF prompt, negative_prompt ON images BEGIN
    INSERT INTO images_fts (images_fts, rowid, prompt, negative_prompt)
    VALUES ('delete', old.id, sdtui_fts(old.prompt), sdtui_fts(old.negative_prompt));
    INSERT INTO images_fts (rowid, prompt, negative_prompt)
    VALUES (new.id, sdtui_fts(new.prompt), sdtui_fts(new.negative_prompt));
END;
-- Files that could not be read, so an unchanged bad file is not re-read at every start.
CREATE TABLE IF NOT EXISTS skipped (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL
);
-- Deleted images waiting in the trash, for undo.
CREATE TABLE IF NOT EXISTS trash (
    token TEXT PRIMARY KEY, original TEXT NOT NULL, trashed TEXT NOT NULL,
    favorite INTEGER NOT NULL, deleted REAL NOT NULL
);
"""
_SCHEMA += _FOLDERS_TABLE

# Han, kana, Hangul and CJK punctuation-free letters: languages written without
# spaces. FTS5's unicode61 tokenizer would make a whole run one token, so a word
# inside it could never be found; one character per token (and a phrase query of
# characters, see `fts_query`) finds any run of characters instead.
_CJK = re.compile(
    "([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f])"
)
_WORD = re.compile(r"\w+", re.UNICODE)


def fts_text(text: str | None) -> str:
    """Text as the search index holds it: CJK characters spaced apart."""
    return _CJK.sub(r" \1 ", text or "")


def fts_query(search: str) -> str:
    """A safe FTS5 query: every word of the search required, each as a prefix; a word
    in a CJK script becomes the phrase of its characters."""
    terms = []
    for word in _WORD.findall(search or ""):
        parts = fts_text(word).split()
        if len(parts) == 1:
            terms.append(f'"{word}"*')
        else:
            terms.append('"' + " ".join(parts) + '"*')
    return " ".join(terms)


_COLUMNS = (
    "path",
    "size",
    "mtime_ns",
    "created",
    "source",
    "prompt",
    "negative_prompt",
    "model",
    "scheduler",
    "seed",
    "width",
    "height",
    "steps",
    "cfg",
    "favorite",
    "extras",
    "request",
)
_UPSERT = (
    f"INSERT INTO images ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))}) "
    "ON CONFLICT (path) DO UPDATE SET "
    # A changed file keeps its id and its favourite mark.
    + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS if c not in ("path", "favorite"))
)
SELECT_COLUMNS = "id, " + ", ".join(_COLUMNS)


class IndexDamagedError(Exception):
    """The index file is not a usable SQLite database; it will be rebuilt."""


@dataclass(frozen=True)
class IndexRow:
    """One image as the index stores it."""

    path: str
    size: int
    mtime_ns: int
    created: float
    source: str = "none"
    prompt: str = ""
    negative_prompt: str = ""
    model: str | None = None
    scheduler: str | None = None
    seed: int | None = None
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    cfg: float | None = None
    favorite: bool = False
    extras: dict[str, str] = field(default_factory=dict)
    request: dict[str, Any] | None = None

    def values(self) -> tuple[SqlValue, ...]:
        seed = self.seed if self.seed is None or -(2**63) <= self.seed < 2**63 else None
        return (
            self.path,
            self.size,
            self.mtime_ns,
            self.created,
            self.source,
            self.prompt,
            self.negative_prompt,
            self.model,
            self.scheduler,
            seed,
            self.width,
            self.height,
            self.steps,
            self.cfg,
            int(self.favorite),
            json.dumps(self.extras, ensure_ascii=False),
            None if self.request is None else json.dumps(self.request, ensure_ascii=False),
        )


# Every table, index and trigger of the schema: one missing means the file was tampered with.
_OBJECTS = frozenset(
    {"meta", "images", "images_created", "images_model", "images_favorite", "images_fts"}
    | {"images_ai", "images_ad", "images_au", "skipped", "trash"}
)


def _is_damage(exc: sqlite3.Error) -> bool:
    """Corrupt, not-a-database or missing part of the schema, as opposed to 'locked',
    'disk full' or a constraint: what rebuilding the index from the files fixes."""
    message = str(exc)
    if message.startswith(("no such table", "no such column")):
        return True  # e.g. the search table's own storage dropped by hand
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB
    return type(exc) is sqlite3.DatabaseError


def is_disk_full(exc: BaseException) -> bool:
    """SQLITE_FULL, or the I/O error SQLite reports when a write hits a full disk."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and code & 0xFF == 13:  # SQLITE_FULL
        return True
    return "database or disk is full" in str(exc)


def _private_files(path: Path) -> None:
    """The index and its -wal/-shm are sdtui's own files: 0600, whatever left them wider
    or read-only (SQLite gives -wal and -shm the mode of the index file)."""
    if not os.path.lexists(path):
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
    for suffix in ("", "-wal", "-shm"):
        name = f"{path}{suffix}"
        try:
            if stat.S_ISREG(os.lstat(name).st_mode):  # never through a symbolic link
                os.chmod(name, 0o600)
        except OSError:
            pass


class GalleryIndex:
    """A thread-safe connection to one index file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self.repaired = False  # True when missing tables were made again (empty)
        self._conn = self._connect()

    def _connect(self) -> sqlite3.Connection:
        if os.path.lexists(self.path) and not stat.S_ISREG(os.lstat(self.path).st_mode):
            raise IndexDamagedError(f"{self.path} is not a file")  # a folder, FIFO, link...
        _private_files(self.path)
        conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
            check_same_thread=False,
        )  # fmt: skip
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.create_function("sdtui_fts", 1, fts_text, deterministic=True)
            version = self._schema_version(conn)
            if version == 1:
                self._upgrade_search(conn)
                version = SCHEMA_VERSION
            if version not in (None, SCHEMA_VERSION):
                raise IndexDamagedError(f"index schema {version}, expected {SCHEMA_VERSION}")
            if version is None:
                self._create_schema(conn)
            else:
                self._repair_schema(conn)
            conn.execute("SELECT max(id) FROM images").fetchone()
        except sqlite3.Error as exc:
            conn.close()
            if not _is_damage(exc):
                raise  # locked, read-only, cannot open: not something a rebuild fixes
            raise IndexDamagedError(str(exc)) from exc
        except IndexDamagedError:
            conn.close()
            raise
        return conn

    @staticmethod
    def _schema_version(conn: sqlite3.Connection) -> int | None:
        has_meta = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        if not has_meta:
            return None
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        return int(row[0]) if row and str(row[0]).isdigit() else None

    @staticmethod
    def _create_schema(conn: sqlite3.Connection) -> None:
        with _immediate(conn):
            for statement in _split_script(_SCHEMA):
                conn.execute(statement)
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', ?)",
                (str(SCHEMA_VERSION),),
            )

    @staticmethod
    def _upgrade_search(conn: sqlite3.Connection) -> None:
        """Schema 1 -> 2: new triggers, and the search index filled again from the rows."""
        with _immediate(conn):
            for name in ("images_ai", "images_ad", "images_au"):
                conn.execute(f"DROP TRIGGER IF EXISTS {name}")
            for statement in _split_script(_SCHEMA):
                if statement.lstrip().startswith("CREATE TRIGGER"):
                    conn.execute(statement)
            _refill_search(conn)
            conn.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION),))

    def _repair_schema(self, conn: sqlite3.Connection) -> None:
        """Make again what is missing of the schema (a table dropped by hand); the
        search table is refilled from the rows, a lost images table from the files."""
        present = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
        if "folders" not in present:  # added after the first schema: nothing lost
            conn.execute(_FOLDERS_TABLE)
        missing = _OBJECTS - present
        if not missing:
            return
        log.warning("gallery index %s lacks %s; making it again", self.path, sorted(missing))
        self._create_schema(conn)
        if "images_fts" in missing:
            with _immediate(conn):
                _refill_search(conn)
        self.repaired = True

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- plumbing ----------------------------------------------------------

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, taken at once so two processes queue instead of deadlocking."""
        with self._lock, _immediate(self._conn):
            yield self._conn

    def query(self, sql: str, params: Iterable[SqlValue] = ()) -> list[sqlite3.Row]:
        with self._lock:
            cursor = self._conn.execute(sql, tuple(params))
            cursor.row_factory = sqlite3.Row
            return cursor.fetchall()

    def query_one(self, sql: str, params: Iterable[SqlValue] = ()) -> sqlite3.Row | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    # -- rows ----------------------------------------------------------------

    def add_rows(self, rows: Iterable[IndexRow], batch: int = 1000) -> int:
        """Insert or update rows (by path); returns how many were written."""
        count = 0
        pending: list[tuple[SqlValue, ...]] = []
        for row in rows:
            pending.append(row.values())
            if len(pending) >= batch:
                count += self._write_batch(pending)
                pending = []
        if pending:
            count += self._write_batch(pending)
        return count

    def _write_batch(self, values: list[tuple[SqlValue, ...]]) -> int:
        with self.write() as conn:
            conn.executemany(_UPSERT, values)
            conn.executemany("DELETE FROM skipped WHERE path = ?", [(v[0],) for v in values])
        return len(values)

    def id_for_path(self, rel: str) -> int | None:
        row = self.query_one("SELECT id FROM images WHERE path = ?", (rel,))
        return None if row is None else int(row[0])

    def file_states(self) -> dict[str, tuple[int, int]]:
        """path -> (size, mtime_ns) of every indexed and every skipped file."""
        with self._lock:
            states = {
                p: (s, m)
                for p, s, m in self._conn.execute("SELECT path, size, mtime_ns FROM images")
            }
            skipped = {
                p: (s, m)
                for p, s, m in self._conn.execute("SELECT path, size, mtime_ns FROM skipped")
            }
        return {**skipped, **states}

    def indexed_among(self, paths: Iterable[str]) -> set[str]:
        """Those of `paths` that are indexed images (not skipped files)."""
        wanted = list(paths)
        found: set[str] = set()
        with self._lock:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                sql = f"SELECT path FROM images WHERE path IN ({', '.join('?' * len(chunk))})"
                found.update(p for (p,) in self._conn.execute(sql, chunk))
        return found

    def indexed_paths(self) -> set[str]:
        with self._lock:
            return {p for (p,) in self._conn.execute("SELECT path FROM images")}

    def mark_skipped(self, entries: Iterable[tuple[str, int, int]]) -> None:
        with self.write() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO skipped (path, size, mtime_ns) VALUES (?, ?, ?)",
                list(entries),
            )

    def remove_paths(self, paths: Iterable[str]) -> int:
        rows = [(p,) for p in paths]
        with self.write() as conn:
            conn.executemany("DELETE FROM images WHERE path = ?", rows)
            conn.executemany("DELETE FROM skipped WHERE path = ?", rows)
        return len(rows)

    def favorite_paths(self) -> list[str]:
        with self._lock:
            return [p for (p,) in self._conn.execute("SELECT path FROM images WHERE favorite = 1")]

    # -- folders: what the last sync listed --------------------------------------

    def folder_states(self) -> dict[str, tuple[int, int, float]]:
        """folder (index form, '' for the root) -> (mtime_ns, files, when checked)."""
        with self._lock:
            rows = self._conn.execute("SELECT path, mtime_ns, files, checked FROM folders")
            return {p: (m, f, c) for p, m, f, c in rows}

    def set_folders(self, rows: Iterable[tuple[str, int, int, float]], gone: Iterable[str]) -> None:
        with self.write() as conn:
            conn.executemany("DELETE FROM folders WHERE path = ?", [(p,) for p in gone])
            conn.executemany(
                "INSERT OR REPLACE INTO folders (path, mtime_ns, files, checked) "
                "VALUES (?, ?, ?, ?)",
                list(rows),
            )

    def note_folder(self, rel: str) -> None:
        """Record a folder as never listed (mtime -1), unless it is known already."""
        with self.write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO folders (path, mtime_ns, files, checked) "
                "VALUES (?, -1, 0, 0)",
                (rel,),
            )

    def file_states_in(self, folders: Iterable[str]) -> dict[str, tuple[int, int]]:
        """path -> (size, mtime_ns) of the indexed and skipped files directly in `folders`
        (decoded folder names, '' for the root), read through the path index."""
        wanted = set(folders)
        found: dict[str, tuple[int, int]] = {}
        with self._lock:
            for table in ("skipped", "images"):
                for folder in wanted:
                    if folder:
                        low = to_index(folder) + "/"
                        sql = (
                            f"SELECT path, size, mtime_ns FROM {table} WHERE path >= ? AND path < ?"
                        )
                        params: tuple[str, ...] = (low, low[:-1] + "0")  # '0' follows '/'
                    else:
                        sql = f"SELECT path, size, mtime_ns FROM {table} WHERE instr(path, '/') = 0"
                        params = ()
                    for path, size, mtime in self._conn.execute(sql, params):
                        if posixpath.dirname(from_index(path)) == folder:
                            found[path] = (size, mtime)
                # Names that are not UTF-8 are stored as '/' + bytes (see names.py).
                sql = f"SELECT path, size, mtime_ns FROM {table} WHERE path >= '/' AND path < '0'"
                for path, size, mtime in self._conn.execute(sql):
                    if posixpath.dirname(from_index(path)) in wanted:
                        found[path] = (size, mtime)
        return found

    def clear(self) -> None:
        with self.write() as conn:
            conn.execute("DELETE FROM images")
            conn.execute("DELETE FROM skipped")
            conn.execute("DELETE FROM folders")
            conn.execute("INSERT INTO images_fts (images_fts) VALUES ('delete-all')")


def _refill_search(conn: sqlite3.Connection) -> None:
    """The search index made again from the rows, through the same text function as the
    triggers (an FTS 'rebuild' would read the raw text and break later deletes)."""
    conn.execute("INSERT INTO images_fts (images_fts) VALUES ('delete-all')")
    conn.execute(
        "INSERT INTO images_fts (rowid, prompt, negative_prompt) "
        "SELECT id, sdtui_fts(prompt), sdtui_fts(negative_prompt) FROM images"
    )


@contextlib.contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _split_script(script: str) -> list[str]:
    """The statements of the schema (triggers contain ';' inside BEGIN ... END)."""
    statements: list[str] = []
    current: list[str] = []
    for line in script.splitlines():
        if line.strip().startswith("--") or not line.strip():
            continue
        current.append(line)
        text = "\n".join(current)
        if text.rstrip().endswith(";") and sqlite3.complete_statement(text):
            statements.append(text)
            current = []
    return statements
