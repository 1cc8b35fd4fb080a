"""Requests refused up front: text that is not UTF-8, a gallery that is a file; tiny models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sdtui.cli import main
from sdtui.errors import ValidationError
from sdtui.params import GenerationRequest

NOT_UTF8 = os.fsdecode(b"a cat \xff\xfe")


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"prompt": NOT_UTF8}, "prompt"),
        ({"negative_prompt": NOT_UTF8}, "negative prompt"),
        ({"model": os.fsdecode(b"sd\xff")}, "model"),
        ({"extras": {"Lora": NOT_UTF8}}, "extras"),
        ({"extras": {os.fsdecode(b"k\xff"): "v"}}, "extras"),
    ],
)
def test_text_that_is_not_utf8_is_refused(changes, field) -> None:
    with pytest.raises(ValidationError, match=f"{field}: is not valid UTF-8"):
        GenerationRequest(**{"prompt": "a cat", **changes})


def test_cli_refuses_before_loading(gallery_dir: Path, monkeypatch, capsys) -> None:
    import sdtui.engine.engine as engine_module

    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(engine_module.Engine, "load", no_load)
    assert main(["generate", NOT_UTF8, "--model", "demo"]) == 2
    assert main(["generate", "a cat", "--negative", NOT_UTF8, "--model", "demo"]) == 2
    err = capsys.readouterr().err
    assert "prompt: is not valid UTF-8" in err and "negative prompt: is not valid UTF-8" in err
    assert not gallery_dir.exists()


def test_cli_with_raw_bytes_in_argv(isolated_dirs: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sdtui", "generate", b"a \xff cat", "--model", "demo"],
        capture_output=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert b"prompt: is not valid UTF-8" in done.stderr


def test_gallery_that_is_a_file_is_refused_before_loading(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    import sdtui.engine.engine as engine_module

    def no_engine(*args, **kwargs):
        raise AssertionError("the engine was started")

    monkeypatch.setattr(engine_module.Engine, "__init__", no_engine)
    file = tmp_path / "notes.txt"
    file.write_text("mine")
    assert main(["generate", "a cat", "--model", "demo", "--gallery", str(file)]) == 2
    err = capsys.readouterr().err
    assert "gallery:" in err and "is not a folder" in err
    assert main(["gallery", "list", "--gallery", str(file)]) == 2
    assert main(["gallery", "import", str(file), "--gallery", str(file)]) == 2
    assert file.read_text() == "mine"


def test_tiny_native_size_is_raised_to_the_smallest_request() -> None:
    from types import SimpleNamespace

    from sdtui.engine.loader import native_size

    def pipe(sample):
        return SimpleNamespace(
            unet=SimpleNamespace(config=SimpleNamespace(sample_size=sample)), vae_scale_factor=8
        )

    assert native_size(pipe(4)) == (64, 64)
    assert native_size(pipe((4, 6))) == (64, 64)
    assert native_size(pipe(1000)) == (2048, 2048)
    assert native_size(pipe(64)) == (512, 512)
    width, height = native_size(pipe(4))
    GenerationRequest(prompt="a cat", width=width, height=height)  # accepted as it is
