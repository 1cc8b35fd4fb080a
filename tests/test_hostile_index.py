"""Index damage that only rebuilding from the files can fix; favourites always survive."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from sdtui.cli import main
from sdtui.gallery import DiskFullError, Gallery
from sdtui.gallery.index import GalleryIndex


def make_gallery(root: Path, count: int = 3) -> None:
    folder = root / "2025-03-04"
    folder.mkdir(parents=True)
    for n in range(count):
        info = PngInfo()
        info.add_text("parameters", f"a castle number {n}\nSteps: 5, Seed: {n}, Size: 8x8")
        Image.new("RGB", (8, 8)).save(folder / f"castle-{n}.png", pnginfo=info)
    with Gallery(root) as gallery:
        gallery.sync()
        first = gallery.list(sort="oldest")[0]
        gallery.set_favorite(first.id)


def state(root: Path) -> tuple[int, list[bool], int]:
    with Gallery(root) as gallery:
        entries = gallery.list(limit=100)
        return gallery.count(), sorted(e.favorite for e in entries), gallery.count(search="castle")


def raw_sql(root: Path, sql: str) -> None:
    conn = sqlite3.connect(root / ".sdtui" / "index.sqlite3", isolation_level=None)
    conn.execute(sql)
    conn.close()


HEALTHY = (3, [False, False, True], 3)


@pytest.mark.parametrize(
    "damage",
    [
        "DROP TABLE images",
        "DROP TABLE images_fts",
        "DROP TABLE images_fts_data",
        "DROP TABLE skipped",
        "DROP TRIGGER images_ai",
        "DROP INDEX images_created",
    ],
)
def test_dropped_parts_are_made_again(gallery_dir: Path, damage: str) -> None:
    make_gallery(gallery_dir)
    raw_sql(gallery_dir, damage)
    assert state(gallery_dir) == HEALTHY
    # and new files still get into the search
    Image.new("RGB", (8, 8)).save(gallery_dir / "2025-03-04" / "extra.png")
    with Gallery(gallery_dir) as gallery:
        gallery.sync()
        assert gallery.count() == 4


@pytest.mark.parametrize("damage", ["DROP TABLE images", "DROP TABLE images_fts"])
def test_rebuild_recovers_too(gallery_dir: Path, damage: str, capsys) -> None:
    make_gallery(gallery_dir)
    raw_sql(gallery_dir, damage)
    assert main(["gallery", "rebuild"]) == 0
    assert "indexed 3 images" in capsys.readouterr().out
    assert state(gallery_dir) == HEALTHY


def test_a_folder_where_the_index_should_be(gallery_dir: Path) -> None:
    make_gallery(gallery_dir)
    index = gallery_dir / ".sdtui" / "index.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{index}{suffix}").unlink(missing_ok=True)
    index.mkdir()
    (index / "x").write_text("x")
    assert state(gallery_dir) == HEALTHY
    assert index.is_file()
    # twice in a row: the older damaged copy does not get in the way
    for suffix in ("", "-wal", "-shm"):
        Path(f"{index}{suffix}").unlink(missing_ok=True)
    index.mkdir()
    assert main(["gallery", "list"]) == 0
    assert state(gallery_dir) == HEALTHY


def test_a_read_only_index_file(gallery_dir: Path) -> None:
    make_gallery(gallery_dir)
    index = gallery_dir / ".sdtui" / "index.sqlite3"
    for suffix in ("-wal", "-shm"):
        Path(f"{index}{suffix}").unlink(missing_ok=True)
    os.chmod(index, 0o400)
    with Gallery(gallery_dir) as gallery:
        entry = gallery.list()[0]
        gallery.set_favorite(entry.id, not entry.favorite)  # a write works
        for suffix in ("", "-wal", "-shm"):
            assert stat.S_IMODE(os.stat(f"{index}{suffix}").st_mode) == 0o600, suffix


def test_wal_and_shm_are_private(gallery_dir: Path) -> None:
    old = os.umask(0o022)
    try:
        make_gallery(gallery_dir)
        with Gallery(gallery_dir) as gallery:
            gallery.count()
            index = gallery.index_path
            for suffix in ("", "-wal", "-shm"):
                assert stat.S_IMODE(os.stat(f"{index}{suffix}").st_mode) == 0o600, suffix
    finally:
        os.umask(old)


def test_list_still_works_when_the_disk_is_full(gallery_dir: Path, monkeypatch, capsys) -> None:
    make_gallery(gallery_dir)
    Image.new("RGB", (8, 8)).save(gallery_dir / "2025-03-04" / "new.png")

    def full(self, rows, batch=1000):
        list(rows)
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(GalleryIndex, "add_rows", full)
    assert main(["gallery", "list"]) == 0
    captured = capsys.readouterr()
    assert "castle number" in captured.out
    assert "is full" in captured.err and "unexpected" not in captured.err
    with Gallery(gallery_dir) as gallery, pytest.raises(DiskFullError, match="is full"):
        gallery.sync()


def test_disk_io_error_on_a_nearly_full_disk_says_disk_full(gallery_dir: Path, monkeypatch) -> None:
    import shutil

    from sdtui.gallery import gallery as gallery_module

    make_gallery(gallery_dir)
    error = sqlite3.OperationalError("disk I/O error")
    error.sqlite_errorcode = 10  # type: ignore[attr-defined]
    usage = shutil.disk_usage(gallery_dir)._replace(free=28 * 1024)
    monkeypatch.setattr(gallery_module.shutil, "disk_usage", lambda path: usage)
    with Gallery(gallery_dir) as gallery:
        assert isinstance(gallery._failure(error), DiskFullError)
        assert "full" in str(gallery._failure(error))


def test_links_beside_the_index_are_not_followed(gallery_dir: Path, tmp_path: Path) -> None:
    make_gallery(gallery_dir)
    precious = tmp_path / "precious.txt"
    precious.write_text("mine")
    os.chmod(precious, 0o644)
    index = gallery_dir / ".sdtui" / "index.sqlite3"
    for suffix in ("-wal", "-shm"):
        Path(f"{index}{suffix}").unlink(missing_ok=True)
    index.unlink()
    index.symlink_to(precious)
    assert state(gallery_dir) == (3, [False, False, True], 3)  # rebuilt, favourite kept
    assert precious.read_text() == "mine"
    assert stat.S_IMODE(precious.stat().st_mode) == 0o644
