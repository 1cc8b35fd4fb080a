"""`sdtui generate`: saved files, JSON lines, reproducible pixels, and exit statuses 0/2/1/130."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sdtui.cli import generate as generate_command
from sdtui.cli import main

PROMPT = "oil painting of a cat sitting on a rainbow"


def run_sdtui(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sdtui", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def pngs(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.png")) if folder.exists() else []


def test_generate_end_to_end_in_a_subprocess(demo_model_dir: Path, gallery_dir: Path):
    done = run_sdtui(
        "generate", PROMPT, "--model", "demo", "--steps", "3", "--seed", "11", "--count", "2",
        "--scheduler", "Euler a", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["seed"] for line in lines] == [11, 12]
    for line in lines:
        assert Path(line["path"]).is_file()
        assert Path(line["path"]).parent.parent == gallery_dir
        assert (line["width"], line["height"]) == (64, 64)  # the demo's native size
        assert (line["prompt"], line["model"], line["steps"]) == (PROMPT, "demo", 3)
        assert (line["scheduler"], line["cfg"]) == ("Euler a", 7.0)
        assert line["seconds"] >= 0
    assert pngs(gallery_dir) == sorted(Path(line["path"]) for line in lines)
    with Image.open(lines[1]["path"]) as image:
        parameters = image.text["parameters"]
        second = np.asarray(image.convert("RGB"))
    assert parameters.startswith(PROMPT)
    assert "Steps: 3, Sampler: Euler a, CFG scale: 7, Seed: 12, Size: 64x64" in parameters

    # The second image made alone, in this process, has the very same pixels.
    from sdtui.engine import Engine
    from sdtui.params import GenerationRequest

    alone = Engine(device="cpu").generate(
        GenerationRequest(PROMPT, model="demo", steps=3, seed=12, width=64, height=64,
                          scheduler="Euler a")
    )  # fmt: skip
    assert np.array_equal(np.asarray(alone.images[0].image), second)


def test_plain_output_is_one_path_per_image(demo_model_dir: Path, gallery_dir: Path, capsys):
    code = main(["generate", "a red boat", "--model", "demo", "--steps", "2", "--count", "2"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert sorted(Path(line) for line in out) == pngs(gallery_dir)
    assert len(out) == 2


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--steps", "0"], "steps"),
        (["--width", "100"], "width"),
        (["--scheduler", "Warp drive"], "scheduler"),
        (["--count", "many"], "count"),
        (["--device", "tpu"], "invalid choice"),
        (["--dtype", "fp8"], "invalid choice"),
        (["--no-such-flag"], "unrecognized arguments"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, words, demo_model_dir, gallery_dir):
    done = run_sdtui("generate", "a cat", "--model", "demo", *args, timeout=120)
    assert done.returncode == 2
    assert words in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    assert not gallery_dir.exists()  # nothing was created


def test_pickle_checkpoint_refused_with_exit_2(tmp_path: Path, gallery_dir: Path, capsys):
    checkpoint = tmp_path / "model.ckpt"
    checkpoint.write_bytes(b"\x80\x04not read")
    assert main(["generate", "a cat", "--model", str(checkpoint)]) == 2
    # Without a terminal the stages come first, one line each; the refusal is one line.
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0] == "sdtui: starting the engine (importing torch)"
    assert lines[1].startswith("sdtui: loading") and len(lines) == 3
    assert "--allow-pickle" in lines[-1]
    assert pngs(gallery_dir) == []


def test_runtime_failures_exit_1(tmp_path: Path, gallery_dir: Path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    assert main(["generate", "a cat", "--model", "runwayml/stable-diffusion-v1-5"]) == 1
    err = capsys.readouterr().err
    assert "no longer on the hub" in err  # the moved-id notice
    assert "not in the local cache" in err and "Traceback" not in err
    garbage = tmp_path / "broken.safetensors"
    garbage.write_bytes(b"\xff" * 64)
    assert main(["generate", "a cat", "--model", str(garbage)]) == 1
    assert "damaged" in capsys.readouterr().err
    assert pngs(gallery_dir) == []


def _interrupt_at(monkeypatch, image_index: int, step: int, times: int = 1) -> None:
    """Press Ctrl+C (a real SIGINT to this process) when the run reaches that step."""
    real_step = generate_command._ProgressBar.step

    def step_then_interrupt(self, progress):
        real_step(self, progress)
        if (progress.image_index, progress.step) == (image_index, step):
            for _ in range(times):
                os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(generate_command._ProgressBar, "step", step_then_interrupt)


def test_ctrl_c_keeps_finished_images_and_exits_130(
    demo_model_dir, gallery_dir, capsys, monkeypatch
):
    _interrupt_at(monkeypatch, image_index=1, step=2)
    code = main(["generate", "a cat", "--model", "demo", "--steps", "6", "--count", "3"])
    captured = capsys.readouterr()
    assert code == 130
    assert "interrupted; 1 of 3 images saved" in captured.err
    # The image finished before Ctrl+C is kept; the one in progress is not written.
    assert [Path(line) for line in captured.out.splitlines()] == pngs(gallery_dir)
    assert len(pngs(gallery_dir)) == 1
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_during_the_first_image_writes_nothing(
    demo_model_dir, gallery_dir, capsys, monkeypatch
):
    _interrupt_at(monkeypatch, image_index=0, step=1, times=2)  # pressed twice: stop at once
    code = main(["generate", "a cat", "--model", "demo", "--steps", "6", "--count", "2"])
    assert code == 130
    assert capsys.readouterr().out == ""
    assert pngs(gallery_dir) == []


def test_sigint_to_a_running_generate_exits_130(demo_model_dir: Path, gallery_dir: Path):
    process = subprocess.Popen(
        [sys.executable, "-m", "sdtui", "generate", "a cat", "--model", "demo", "--json",
         "--steps", "150", "--count", "6"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    try:
        first = process.stdout.readline()  # the first image is saved
        process.send_signal(signal.SIGINT)
        rest, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, err
    printed = [json.loads(line)["path"] for line in [first, *rest.splitlines()]]
    assert 1 <= len(printed) < 6
    assert sorted(map(Path, printed)) == pngs(gallery_dir)
    assert "interrupted" in err and "Traceback" not in err


def test_missing_cuda_exits_2_and_creates_nothing(gallery_dir: Path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(["generate", "a cat", "--model", "demo", "--device", "cuda"]) == 2
    assert "--device cpu" in capsys.readouterr().err
    assert not gallery_dir.exists()


def test_folder_model_defaults_to_its_native_size(
    demo_model_dir: Path, tmp_path: Path, gallery_dir: Path, capsys
):
    import shutil

    folder = shutil.copytree(demo_model_dir, tmp_path / "my-model")
    assert main(["generate", "a cat", "--model", str(folder), "--steps", "2", "--json"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert (line["width"], line["height"]) == (64, 64)  # from the UNet and VAE configs
    assert main(["generate", "a cat", "--model", str(folder), "--steps", "2", "--json",
                 "--width", "96"]) == 0  # fmt: skip
    line = json.loads(capsys.readouterr().out)
    assert (line["width"], line["height"]) == (96, 64)
    with Image.open(line["path"]) as image:
        assert image.size == (96, 64)


def test_allow_pickle_and_model_config_flags(
    demo_model_dir: Path, tmp_path: Path, gallery_dir: Path, capsys
):
    import torch
    from safetensors.torch import load_file
    from test_loader import write_ldm_checkpoint

    safe = write_ldm_checkpoint(demo_model_dir, tmp_path / "tiny.safetensors")
    checkpoint = tmp_path / "tiny.ckpt"
    torch.save({"state_dict": load_file(safe)}, checkpoint)
    args = ["generate", "a cat", "--model", str(checkpoint), "--steps", "2", "--seed", "3",
            "--model-config", str(demo_model_dir), "--json"]  # fmt: skip
    assert main(args) == 2  # refused without the opt-in
    capsys.readouterr()
    assert main([*args, "--allow-pickle"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["model_id"] == str(checkpoint.resolve()) and line["seed"] == 3
    assert (line["width"], line["height"]) == (64, 64)
    assert [Path(line["path"])] == pngs(gallery_dir)


def test_safety_checker_black_images_are_pointed_out(
    demo_model_dir: Path, gallery_dir: Path, capsys, monkeypatch
):
    from sdtui.engine import Engine

    real_generate = Engine.generate

    def flagged(self, request, **kwargs):
        result = real_generate(self, request, **kwargs)
        result.info["blacked_out_seeds"] = [result.seeds[0]]
        return result

    monkeypatch.setattr(Engine, "generate", flagged)
    assert main(["generate", "a cat", "--model", "demo", "--steps", "2", "--seed", "8"]) == 0
    assert "safety checker blacked out seed 8" in capsys.readouterr().err
