"""The app's options mean the same before or after a command; one a command does not
take is refused. Without a terminal `generate` says each stage on stderr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import gallery_pngs

from sdtui.cli import parse_args


@pytest.mark.parametrize(
    "argv",
    [
        ["--model", "demo", "generate", "a cat"],
        ["generate", "a cat", "--model", "demo"],
        ["--model", "sd15", "generate", "a cat", "--model", "demo"],  # the later one wins
    ],
)
def test_model_before_or_after_generate_means_the_same(argv: list[str]) -> None:
    args = parse_args(argv)
    assert args.command == "generate" and args.model == "demo"


def test_gallery_before_a_nested_command_is_used(tmp_path: Path) -> None:
    args = parse_args(["--gallery", str(tmp_path), "gallery", "list"])
    assert args.gallery == str(tmp_path)
    args = parse_args(["gallery", "list"])
    assert args.gallery is None


def test_an_option_the_command_does_not_take_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--renderer", "halfcell", "generate", "a cat"])
    assert exit_info.value.code == 2
    assert "--renderer does not apply to 'sdtui generate'" in capsys.readouterr().err


def test_bare_app_options_still_parse() -> None:
    args = parse_args(["--model", "demo", "--renderer", "halfcell"])
    assert args.command is None and args.model == "demo" and args.renderer == "halfcell"


def test_generate_without_a_terminal_prints_its_stages(
    demo_model_dir: Path, gallery_dir: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sdtui", "--model", "demo", "generate", "a cat", "--steps", "2"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == "sdtui: starting the engine (importing torch)"
    assert any(line.startswith("sdtui: loading") for line in lines)
    assert "sdtui: image 1/1: 2 steps" in lines
    assert len(gallery_pngs(gallery_dir)) == 1  # and the model was demo, given first
