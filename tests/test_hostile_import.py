"""Import is idempotent by content, leaves nothing when it fails, never walks the gallery."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from sdtui.cli import main
from sdtui.gallery import Gallery
from sdtui.gallery.index import GalleryIndex


def photo(path: Path, prompt: str = "a lighthouse at dusk") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngInfo()
    info.add_text("parameters", f"{prompt}\nSteps: 5, Sampler: Euler, Seed: 3, Size: 8x8")
    Image.new("RGB", (8, 8), "navy").save(path, pnginfo=info)
    return path


def pngs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.png") if ".sdtui" not in p.parts)


def test_retry_gives_the_same_entry(gallery_dir: Path, tmp_path: Path, capsys) -> None:
    source = photo(tmp_path / "photo.png")
    assert main(["gallery", "import", str(source)]) == 0
    assert main(["gallery", "import", str(source)]) == 0
    out = capsys.readouterr().out
    assert "imported 1 (1 already in the gallery)" in out
    assert pngs(gallery_dir) == ["photo.png"]
    # A copy under another name is the same content too; different content is new.
    twin = tmp_path / "other" / "renamed.png"
    twin.parent.mkdir()
    twin.write_bytes(source.read_bytes())
    photo(tmp_path / "other" / "new.png", "a different sea")
    with Gallery(gallery_dir) as gallery:
        first = gallery.list()[0]
        report = gallery.import_paths([tmp_path / "other"])
        assert report.added == 1 and report.unchanged == 1
        assert first.id in {e.id for e in report.entries}
        assert gallery.count() == 2
    assert pngs(gallery_dir) == ["new.png", "photo.png"]


def test_failed_import_leaves_nothing(gallery_dir: Path, tmp_path: Path) -> None:
    source = photo(tmp_path / "photo.png")

    def fail(self, rows, batch=1000):
        raise sqlite3.OperationalError("database or disk is full")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(GalleryIndex, "add_rows", fail)
        assert main(["gallery", "import", str(source)]) == 1
    assert pngs(gallery_dir) == []
    assert main(["gallery", "import", str(source)]) == 0
    assert pngs(gallery_dir) == ["photo.png"]  # not photo-2.png


def test_importing_a_folder_that_holds_the_gallery(tmp_path: Path, monkeypatch, capsys) -> None:
    pictures = tmp_path / "Pictures"
    gallery_dir = pictures / "sdtui"
    monkeypatch.setenv("SDTUI_GALLERY", str(gallery_dir))
    for n in range(3):
        photo(pictures / f"holiday-{n}.png", f"holiday {n}")
    assert main(["gallery", "import", str(pictures)]) == 0
    assert "imported 3, skipped 0" in capsys.readouterr().out
    assert main(["gallery", "import", str(pictures)]) == 0  # a retry: the same three
    assert "imported 3 (3 already in the gallery), skipped 0" in capsys.readouterr().out
    with Gallery(gallery_dir) as gallery:
        assert gallery.count() == 3
    assert pngs(gallery_dir) == ["holiday-0.png", "holiday-1.png", "holiday-2.png"]
    assert main(["gallery", "import", str(gallery_dir)]) == 2
    assert "is the gallery folder itself" in capsys.readouterr().err
