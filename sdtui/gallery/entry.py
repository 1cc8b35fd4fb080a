"""One image of the gallery as the TUI and the CLI see it."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sdtui.display import path_text
from sdtui.errors import ValidationError
from sdtui.gallery.index import IndexRow
from sdtui.gallery.metadata import ImageMetadata
from sdtui.gallery.names import from_index
from sdtui.params import MAX_SEED, GenerationRequest


@dataclass(frozen=True)
class GalleryEntry:
    """An indexed image. `request` is None when the file's settings cannot make it again."""

    id: int
    path: Path
    rel_path: str
    request: GenerationRequest | None
    seed: int | None
    created: datetime
    favorite: bool
    source: str = "none"
    prompt: str = ""
    negative_prompt: str = ""
    model: str | None = None
    scheduler: str | None = None
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    cfg: float | None = None
    file_size: int = 0
    extras: dict[str, str] = field(default_factory=dict)

    @property
    def remix_seed(self) -> int | None:
        """The seed that makes this very image again, when sdtui can use it.

        Other tools' seeds can be beyond sdtui's range (ComfyUI, Fooocus); those
        stay in `seed` and in the request's `Original seed` extra, and remix draws
        a new one (None here).
        """
        if self.seed is not None and 0 <= self.seed <= MAX_SEED:
            return self.seed
        return self.request.seed if self.request is not None else None

    @property
    def shown_name(self) -> str:
        """The file name, safe to show on a terminal (see `display.path_text`)."""
        return path_text(self.path.name)

    @property
    def shown_path(self) -> str:
        """The path inside the gallery, safe to show on a terminal."""
        return path_text(from_index(self.rel_path))

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": str(self.path),
            "created": self.created.isoformat(timespec="seconds"),
            "favorite": self.favorite,
            "source": self.source,
            "prompt": self.prompt,
            "negative_prompt": self.negative_prompt,
            "model": self.model,
            "sampler": self.scheduler,
            "steps": self.steps,
            "cfg_scale": self.cfg,
            "seed": self.seed,
            "width": self.width,
            "height": self.height,
            "extras": dict(self.extras),
            "file_size": self.file_size,
        }


def _created_from(meta: ImageMetadata, fallback: float) -> float:
    text = meta.info.get("created") if meta.source == "sdtui" else None
    if isinstance(text, str):
        try:
            return datetime.fromisoformat(text).timestamp()
        except ValueError:
            pass
    return fallback


def row_from_metadata(rel: str, size: int, mtime_ns: int, meta: ImageMetadata) -> IndexRow:
    """The index row of a file: our images carry their creation time, others use mtime."""
    return IndexRow(
        path=rel,
        size=size,
        mtime_ns=mtime_ns,
        created=_created_from(meta, mtime_ns / 1e9),
        source=meta.source,
        prompt=meta.prompt,
        negative_prompt=meta.negative_prompt,
        model=meta.model,
        scheduler=meta.sampler,
        seed=meta.seed,
        width=meta.width,
        height=meta.height,
        steps=meta.steps,
        cfg=meta.cfg_scale,
        extras=dict(meta.extras),
        request=meta.request_dict,
    )


def _request_from_row(row: sqlite3.Row, extras: dict[str, str]) -> GenerationRequest | None:
    try:
        if row["request"]:
            data = json.loads(row["request"])
            if isinstance(data, dict):
                return GenerationRequest.from_dict(data)
        meta = ImageMetadata(
            source=row["source"],
            prompt=row["prompt"],
            negative_prompt=row["negative_prompt"],
            steps=row["steps"],
            sampler=row["scheduler"],
            cfg_scale=row["cfg"],
            seed=row["seed"],
            width=row["width"],
            height=row["height"],
            model=row["model"],
            extras=extras,
        )
        return meta.request()
    except (ValidationError, ValueError, TypeError):
        return None


def entry_from_row(root: Path, row: sqlite3.Row) -> GalleryEntry:
    try:
        extras = json.loads(row["extras"] or "{}")
    except ValueError:
        extras = {}
    if not isinstance(extras, dict):
        extras = {}
    extras = {str(k): str(v) for k, v in extras.items()}
    return GalleryEntry(
        id=int(row["id"]),
        path=root / from_index(row["path"]),
        rel_path=row["path"],
        request=_request_from_row(row, extras),
        seed=row["seed"],
        created=datetime.fromtimestamp(row["created"], tz=timezone.utc).astimezone(),
        favorite=bool(row["favorite"]),
        source=row["source"],
        prompt=row["prompt"],
        negative_prompt=row["negative_prompt"],
        model=row["model"],
        scheduler=row["scheduler"],
        width=row["width"],
        height=row["height"],
        steps=row["steps"],
        cfg=row["cfg"],
        file_size=int(row["size"]),
        extras=extras,
    )
