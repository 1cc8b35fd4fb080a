"""The gallery: PNGs that carry their settings, and a SQLite index to browse them.

Stdlib and Pillow only (Pillow imported lazily); never textual or torch.
"""

from sdtui.gallery.entry import GalleryEntry
from sdtui.gallery.gallery import (
    DiskFullError,
    EntryNotFoundError,
    Gallery,
    GalleryError,
    SyncReport,
)
from sdtui.gallery.metadata import ImageMetadata, ImageReadError, read_metadata

__all__ = [
    "DiskFullError",
    "EntryNotFoundError",
    "Gallery",
    "GalleryEntry",
    "GalleryError",
    "ImageMetadata",
    "ImageReadError",
    "SyncReport",
    "read_metadata",
]
