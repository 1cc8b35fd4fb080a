"""Huge numbers, deep configs and closed pipes: a field message (exit 2) or a quiet exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from sdtui.cli import main
from sdtui.gallery import Gallery

HUGE = "9" * 5000  # past Python's 4,300-digit limit for int()


@pytest.fixture
def one_image(gallery_dir: Path) -> Path:
    gallery_dir.mkdir()
    Image.new("RGB", (8, 8)).save(gallery_dir / "a.png")
    return gallery_dir


@pytest.mark.parametrize(
    "argv, field",
    [
        (["gallery", "list", "--limit", "99999999999999999999"], "--limit"),
        (["gallery", "list", "--limit", HUGE], "--limit"),
        (["gallery", "list", "--offset", "99999999999999999999"], "--offset"),
        (["gallery", "list", "--offset", HUGE], "--offset"),
        (["gallery", "list", "--offset", "-1"], "--offset"),
        (["gallery", "show", "99999999999999999999"], "no image with id"),
        (["gallery", "show", HUGE], "no image with id"),
        (["gallery", "show", "²"], "no such file or gallery id"),
        (["gallery", "show", "x" * 5000], "no such file or gallery id"),
        (["info", "x" * 5000], "no such file"),
        (["generate", "a cat", "--model", "demo", "--keep-models", HUGE], "keep_models"),
        (["generate", "a cat", "--model", "demo", "--keep-models", "1" + "0" * 30], "keep_models"),
    ],
)
def test_huge_numbers_are_field_errors(one_image: Path, argv, field, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert field in err and "unexpected" not in err
    assert len(err) <= 520  # a 5,000-character argument is not echoed back whole


@pytest.mark.parametrize(
    "text", ["a = " + "[" * 5000 + "]" * 5000, "a = " + "{b = " * 5000 + "}" * 5000]
)
def test_config_nested_thousands_deep(one_image: Path, isolated_dirs: Path, text, capsys) -> None:
    config = isolated_dirs / "config" / "config.toml"
    config.parent.mkdir()
    config.write_text(text)
    assert main(["gallery", "list"]) == 2
    err = capsys.readouterr().err
    assert "config:" in err and "unexpected" not in err


def test_closed_pipe_exits_quietly(gallery_dir: Path) -> None:
    with Gallery(gallery_dir) as gallery:
        folder = gallery_dir / "2025-01-01"
        folder.mkdir()
        for n in range(30):
            Image.new("RGB", (4, 4)).save(folder / f"{n}.png")
        gallery.sync()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sdtui", "gallery", "list", "--limit", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # as `| head` does once it has its lines
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert err == ""


@pytest.mark.parametrize("text", ["performance = 5", 'keys = "ctrl+g"', "prompts = [1, 2]"])
def test_a_section_that_is_not_a_table_is_refused(
    one_image: Path, isolated_dirs: Path, text: str, capsys
) -> None:
    config = isolated_dirs / "config" / "config.toml"
    config.parent.mkdir()
    config.write_text(text + "\n")
    assert main(["gallery", "list"]) == 2
    name = text.split(" ")[0]
    assert f"config {name}: must be a table" in capsys.readouterr().err
