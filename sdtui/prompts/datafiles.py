"""Reading and writing the small TOML files behind styles and presets.

A built-in file ships inside the package; the user's own files live in a
folder of the config directory. A broken user file is reported, not fatal:
the rest still load.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from sdtui.config import ensure_private_dir
from sdtui.errors import SaveError, ValidationError
from sdtui.regular_files import read_regular_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

T = TypeVar("T")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}")


@dataclass(frozen=True)
class Entry:
    """One `[[table]]` of a data file, with where it came from."""

    data: dict[str, Any]
    source: str  # "built-in" or the file's path


def check_name(kind: str, name: str) -> str:
    """A name usable as a file name and on a command line."""
    name = str(name).strip()
    if not _NAME.fullmatch(name) or name.endswith("."):
        raise ValidationError(
            kind,
            f"name {name!r} must be 1-64 letters, digits, spaces, '.', '_' or '-' "
            "and start with a letter or digit",
        )
    return name


def _entries(text: str, table: str, source: str) -> list[Entry]:
    data = tomllib.loads(text)
    items = data.get(table, [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ValueError(f"[[{table}]] must be a list of tables")
    return [Entry(dict(item), source) for item in items]


def builtin_entries(filename: str, table: str) -> list[Entry]:
    text = resources.files("sdtui.prompts").joinpath("data").joinpath(filename).read_text("utf-8")
    return _entries(text, table, "built-in")


def user_entries(folder: Path, table: str) -> Iterator[Entry | str]:
    """The entries of every `*.toml` in `folder`, sorted; a problem yields its message."""
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*.toml")):
        try:
            yield from _entries(read_regular_text(path), table, str(path))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            yield f"{path}: {exc}"


def load_catalog(
    filename: str, table: str, user_folder: Path, parse: Callable[[dict[str, Any], str], T]
) -> tuple[dict[str, T], list[str]]:
    """Built-in entries, then the user's (which win on equal names), each read by
    `parse(data, source)` (which has a `.name`); returns them and the problems met."""
    items: dict[str, T] = {}
    problems: list[str] = []
    entries: list[Entry | str] = list(builtin_entries(filename, table))
    entries += list(user_entries(user_folder, table))
    for entry in entries:
        if isinstance(entry, str):
            problems.append(entry)
            continue
        try:
            item = parse(entry.data, entry.source)
        except ValidationError as exc:
            problems.append(f"{entry.source}: {exc}")
            continue
        items[item.name] = item  # type: ignore[attr-defined]
    return items, problems


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    # JSON string escapes are valid TOML basic-string escapes.
    return json.dumps(str(value), ensure_ascii=False)


def write_entry(path: Path, table: str, values: Mapping[str, Any], overwrite: bool) -> Path:
    """Write one `[[table]]` file atomically; never replaces a file unless asked."""
    try:
        return _write_entry(path, table, values, overwrite)
    except OSError as exc:
        raise SaveError(f"could not write {path}: {exc.strerror or exc}") from None


def _write_entry(path: Path, table: str, values: Mapping[str, Any], overwrite: bool) -> Path:
    lines = [f"[[{table}]]"] + [f"{k} = {_toml_value(v)}" for k, v in values.items()]
    ensure_private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".toml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if the name is taken: no race with another save
            except FileExistsError:
                raise ValidationError(
                    table, f"{path.name} already exists; choose another name"
                ) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
