"""What a front end needs from the gallery, as a Protocol it can annotate with.

`Gallery` is the one implementation; the TUI and the CLI depend on this shape
only, so a fake in a test (or a remote gallery) fits without subclassing.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sdtui.gallery.entry import GalleryEntry
    from sdtui.gallery.gallery import Gallery, SyncReport
    from sdtui.results import GeneratedImage, GenerationResult

When = datetime | date | float | None  # a day, a moment, or a Unix time


class GalleryStore(Protocol):
    """Saved images with their settings: save, browse, favourite, delete and undo."""

    root: Path

    def save(self, generated: GeneratedImage, result: GenerationResult) -> GalleryEntry: ...

    def sync(self) -> SyncReport: ...

    def rebuild(self) -> SyncReport: ...

    def import_paths(self, paths: Iterable[Path]) -> SyncReport: ...

    def list(
        self,
        search: str = "",
        favorites: bool = False,
        model: str | None = None,
        since: When = None,
        until: When = None,
        sort: str = "newest",
        limit: int = 50,
        offset: int = 0,
    ) -> builtins.list[GalleryEntry]: ...

    def count(
        self,
        search: str = "",
        favorites: bool = False,
        model: str | None = None,
        since: When = None,
        until: When = None,
    ) -> int: ...

    def get(self, entry_id: int) -> GalleryEntry | None: ...

    def entry_for_path(self, path: Path) -> GalleryEntry | None: ...

    def models(self) -> builtins.list[str]: ...

    def set_favorite(self, entry_id: int, favorite: bool = True) -> GalleryEntry: ...

    def delete(self, entry_id: int) -> str: ...

    def undo_delete(self, token: str) -> GalleryEntry: ...

    def thumbnail(self, entry_id: int, size: int = 256) -> Path: ...


if TYPE_CHECKING:

    def _gallery_fits(gallery: Gallery) -> GalleryStore:
        return gallery  # the type checker holds `Gallery` to the Protocol
