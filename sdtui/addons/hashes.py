"""AUTOMATIC1111's short hashes of LoRAs and embeddings (`Lora hashes`, `TI hashes`),
remembered in a cache file so large files are read once."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

from sdtui.addons.files import SAFE_SUFFIXES

LORA_HASHES = "Lora hashes"
TI_HASHES = "TI hashes"


def _sha256(path: Path, skip_header: bool) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        if skip_header:
            (length,) = struct.unpack("<Q", handle.read(8))
            handle.seek(8 + length)
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class HashCache:
    """Full hashes remembered by path, size and modification time (a JSON file),
    so a folder of large files is read once, as A1111's cache does."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._data: dict[str, dict[str, Any]] | None = None

    def _load(self) -> dict[str, dict[str, Any]]:
        if self._data is None:
            self._data = {}
            if self.path is not None:
                try:
                    data = json.loads(self.path.read_text(encoding="utf-8"))
                    if isinstance(data, dict):
                        self._data = data
                except (OSError, ValueError):
                    pass  # a missing or broken cache only costs time
        return self._data

    def sha256(self, path: Path, kind: str) -> str:
        """A1111's hash: for a safetensors LoRA the data after the header (so editing the
        metadata keeps it), for everything else the whole file."""
        skip = kind == "lora" and path.suffix.lower() in SAFE_SUFFIXES
        stat = path.stat()
        key = f"{kind}:{path.resolve()}"
        data = self._load()
        known = data.get(key)
        if known and known.get("size") == stat.st_size and known.get("mtime") == stat.st_mtime_ns:
            return str(known["sha256"])
        value = _sha256(path, skip)
        data[key] = {"size": stat.st_size, "mtime": stat.st_mtime_ns, "sha256": value}
        self._save()
        return value

    def _save(self) -> None:
        if self.path is None or self._data is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text(json.dumps(self._data), encoding="utf-8")
            os.replace(temporary, self.path)
        except OSError:
            pass


def default_hash_cache() -> HashCache:
    from sdtui.config import cache_dir

    return HashCache(cache_dir() / "addon-hashes.json")


def short_hash(path: Path, kind: str, cache: HashCache | None = None) -> str:
    """The 12 hex digits A1111 writes after a LoRA's or embedding's name."""
    return (cache or default_hash_cache()).sha256(path, kind)[:12]


def parse_hash_list(text: str) -> dict[str, str]:
    """`name: hash, name: hash` (the value of `Lora hashes` / `TI hashes`) as a dict."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        name, sep, value = part.rpartition(":")
        if sep and name.strip():
            out[name.strip()] = value.strip()
    return out
