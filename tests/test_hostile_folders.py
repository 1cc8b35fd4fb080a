"""Folders and files that are not sdtui's own: their modes and contents stay as they were."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from PIL import Image

from sdtui.cli import main
from sdtui.config import ensure_private_dir
from sdtui.gallery import Gallery
from sdtui.gallery.files import is_own_temp, temp_path


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def make_png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8)).save(path)
    return path


@pytest.mark.parametrize("bits", [0o2775, 0o1777, 0o755])
def test_existing_gallery_folder_keeps_its_mode(gallery_dir: Path, bits: int, capsys) -> None:
    gallery_dir.mkdir()
    os.chmod(gallery_dir, bits)
    make_png(gallery_dir / "shared" / "a.png")
    os.chmod(gallery_dir / "shared", 0o2775)
    assert main(["gallery", "list"]) == 0
    assert main(["gallery", "rebuild"]) == 0
    assert mode(gallery_dir) == bits
    assert mode(gallery_dir / "shared") == 0o2775
    # What sdtui made inside is private.
    assert mode(gallery_dir / ".sdtui") == 0o700


def test_folders_sdtui_creates_are_private_parents_too(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        target = ensure_private_dir(tmp_path / "new" / "deeper" / "gallery")
    finally:
        os.umask(old)
    for folder in (target, target.parent, target.parent.parent):
        assert mode(folder) == 0o700, folder
    before = mode(tmp_path)
    ensure_private_dir(tmp_path)
    assert mode(tmp_path) == before


def test_existing_config_and_log_folders_keep_their_mode(isolated_dirs: Path) -> None:
    from sdtui.logging_setup import setup_logging, stop_logging
    from sdtui.tui.themes import remember_theme

    for name in ("config", "logs"):
        (isolated_dirs / name).mkdir()
        os.chmod(isolated_dirs / name, 0o2755)
    remember_theme("sdtui-light")
    try:
        assert setup_logging() is not None
    finally:
        stop_logging()
    assert mode(isolated_dirs / "config") == 0o2755
    assert mode(isolated_dirs / "logs") == 0o2755
    assert not [p for p in (isolated_dirs / "config").iterdir() if p.name.endswith(".tmp")]


def test_only_own_stale_temporary_files_are_removed(gallery_dir: Path) -> None:
    with Gallery(gallery_dir) as gallery:
        day = gallery_dir / "2025-01-02"
        day.mkdir()
        ours = temp_path(day, "20250102-a-cat")
        ours.write_bytes(b"half a png")
        young = temp_path(day, "20250102-a-dog")
        young.write_bytes(b"being written")
        theirs = [
            gallery_dir / ".notes.tmp",
            day / ".editor-swap.tmp",
            gallery_dir / "mine" / ".backup.tmp",
            # our prefix, but in a folder the user made: not ours to clean
            temp_path(gallery_dir / "mine", "x"),
        ]
        for path in theirs:
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(b"the user's")
        for path in [ours, *theirs]:
            os.utime(path, (0, 0))
        gallery.sync()
        gallery.rebuild()
    assert not ours.exists()
    assert young.exists()
    for path in theirs:
        assert path.read_bytes() == b"the user's", path


def test_temp_names_are_recognisable() -> None:
    name = temp_path(Path("/x"), "20250101-1-a-cat").name
    assert is_own_temp(name)
    for other in (".a-cat.0123456789ab.tmp", ".sdtui-tmp-.tmp", "sdtui-tmp-0123456789ab.x.tmp"):
        assert not is_own_temp(other)


def test_undo_with_a_tampered_trash_record_moves_nothing(gallery_dir: Path, tmp_path) -> None:
    import sqlite3

    from sdtui.gallery import GalleryError

    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    with Gallery(gallery_dir) as gallery:
        make_png(gallery_dir / "a.png")
        gallery.sync()
        token = gallery.delete(gallery.list()[0].id)
        conn = sqlite3.connect(gallery.index_path, isolation_level=None)
        conn.execute(
            "UPDATE trash SET trashed = ? WHERE token = ?", ("../precious/keep.txt", token)
        )
        conn.close()
        with pytest.raises(GalleryError, match="damaged"):
            gallery.undo_delete(token)
    assert (outside / "keep.txt").read_text() == "mine"


def test_a_log_file_that_is_a_link_is_not_followed(isolated_dirs: Path, tmp_path) -> None:
    from sdtui.logging_setup import setup_logging, stop_logging

    precious = tmp_path / "precious.txt"
    precious.write_text("mine")
    os.chmod(precious, 0o644)
    (isolated_dirs / "logs").mkdir()
    (isolated_dirs / "logs" / "sdtui.log").symlink_to(precious)
    try:
        assert setup_logging() is None  # runs without a log file rather than write there
    finally:
        stop_logging()
    assert precious.read_text() == "mine" and mode(precious) == 0o644
