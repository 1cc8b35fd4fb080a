"""FIFOs and devices under ordinary names: every reader refuses them at once, none hangs."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from sdtui.cli import main
from sdtui.errors import ValidationError
from sdtui.regular_files import NotRegularFileError, open_regular, read_regular_text


def finishes(action: Callable[[], Any], fifo: Path, seconds: float = 20) -> Any:
    """Run `action`; fail (and unblock it) when it waits on the FIFO instead of returning."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = action()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            result["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # lets the blocked open return
        os.close(fd)
        thread.join(5)
        pytest.fail(f"waited on the FIFO {fifo}")
    if "error" in result:
        raise result["error"]
    return result.get("value")


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "in" / "photo.png"
    path.parent.mkdir()
    os.mkfifo(path)
    return path


def test_helper_refuses_fifo_device_folder_and_huge(tmp_path: Path, fifo: Path) -> None:
    with pytest.raises(NotRegularFileError, match="FIFO"):
        finishes(lambda: open_regular(fifo), fifo)
    with pytest.raises(NotRegularFileError, match="character device"):
        open_regular("/dev/zero")
    with pytest.raises(IsADirectoryError):
        open_regular(tmp_path)
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * 2000)
    with pytest.raises(NotRegularFileError, match="too large"):
        read_regular_text(big, 1000)
    assert read_regular_text(big, 4000).startswith("#")


def test_cli_commands_do_not_hang_on_a_fifo(gallery_dir: Path, fifo: Path, capsys) -> None:
    good = fifo.parent / "good.png"
    Image.new("RGB", (8, 8)).save(good)
    assert finishes(lambda: main(["info", str(fifo)]), fifo) != 0
    assert "FIFO" in capsys.readouterr().err
    assert finishes(lambda: main(["gallery", "import", str(fifo.parent)]), fifo) == 0
    captured = capsys.readouterr()
    assert "imported 1, skipped 1" in captured.out and "FIFO" in captured.err
    assert finishes(lambda: main(["gallery", "show", str(fifo)]), fifo) != 0
    # A FIFO placed inside the gallery is passed over by sync, rebuild, list and show.
    inside = gallery_dir / "2025-01-01" / "x.png"
    inside.parent.mkdir()
    os.mkfifo(inside)
    for argv in (["gallery", "list"], ["gallery", "rebuild"]):
        assert finishes(lambda argv=argv: main(argv), inside) == 0


def test_an_indexed_file_replaced_by_a_fifo(gallery_dir: Path, tmp_path: Path) -> None:
    from sdtui.gallery import Gallery, ImageReadError

    source = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(source)
    with Gallery(gallery_dir) as gallery:
        (entry,) = gallery.import_paths([source]).entries
        entry.path.unlink()
        os.mkfifo(entry.path)
        with pytest.raises(ImageReadError, match="FIFO"):
            finishes(lambda: gallery.thumbnail(entry.id, 16), entry.path)
        assert finishes(lambda: main(["gallery", "show", str(entry.id)]), entry.path) != 0


def test_config_theme_styles_wildcards_refuse_a_fifo(isolated_dirs: Path, monkeypatch) -> None:
    from sdtui.config import read_config_file
    from sdtui.prompts.datafiles import user_entries
    from sdtui.prompts.wildcards import resolve_wildcards
    from sdtui.tui.themes import load_themes, remembered_theme

    config = isolated_dirs / "config"
    (config / "themes").mkdir(parents=True)
    (config / "styles").mkdir()
    (config / "wildcards").mkdir()
    fifos = [
        config / "config.toml",
        config / "themes" / "evil.toml",
        config / "state.json",
        config / "styles" / "mine.toml",
        config / "wildcards" / "animal.txt",
    ]
    for path in fifos:
        os.mkfifo(path)
    with pytest.raises(ValidationError, match="FIFO"):
        finishes(lambda: read_config_file(fifos[0]), fifos[0])
    monkeypatch.setenv("SDTUI_CONFIG", str(fifos[0]))
    assert finishes(lambda: main(["gallery", "list"]), fifos[0]) == 2
    monkeypatch.delenv("SDTUI_CONFIG")
    themes, problems = finishes(lambda: load_themes([config / "themes"]), fifos[1])
    assert themes == [] and "FIFO" in problems[0]
    assert finishes(remembered_theme, fifos[2]) is None
    problems = finishes(lambda: list(user_entries(config / "styles", "style")), fifos[3])
    assert len(problems) == 1 and "FIFO" in problems[0]
    with pytest.raises(ValidationError, match="FIFO"):
        finishes(lambda: resolve_wildcards("a __animal__", 1, config / "wildcards"), fifos[4])
