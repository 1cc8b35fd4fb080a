"""Upscalers: a tiny random-weight ESRGAN built here, loaded through spandrel, tiled."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sdtui.cli import main
from sdtui.engine import upscale  # noqa: E402
from sdtui.errors import BadCheckpointError, UnsafeCheckpointError, ValidationError
from sdtui.gallery.metadata import read_metadata
from sdtui.workflows import file_sha256
from tests.helpers import gallery_pngs

if importlib.util.find_spec("spandrel") is None:
    pytest.skip("spandrel is an optional extra (sdtui[upscale])", allow_module_level=True)
upscale._spandrel()  # imports spandrel even without torchvision

torch.set_num_threads(1)


def tiny_esrgan_state_dict(scale: int = 2) -> dict[str, torch.Tensor]:
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(0)
    model = ESRGAN(num_filters=8, num_blocks=1, scale=scale)
    return {k: v.contiguous() for k, v in model.state_dict().items()}


@pytest.fixture
def upscaler_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from safetensors.torch import save_file

    folder = tmp_path / "upscalers"
    folder.mkdir()
    save_file(tiny_esrgan_state_dict(2), str(folder / "tiny-x2.safetensors"))
    monkeypatch.setenv("SDTUI_UPSCALERS", str(folder))
    return folder


def noise_image(width: int, height: int) -> Image.Image:
    rng = np.random.default_rng(1)
    return Image.fromarray((rng.random((height, width, 3)) * 255).astype(np.uint8))


def test_spandrel_loads_without_torchvision():
    code = (
        "import sys; from sdtui.engine import upscale; upscale._spandrel(); "
        "print('torchvision' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_scale_times_the_size_and_tiled_agrees_with_untiled(upscaler_folder: Path):
    model = upscale.load_upscaler(upscaler_folder / "tiny-x2.safetensors")
    assert (model.architecture, model.scale) == ("ESRGAN", 2)
    image = noise_image(72, 40)
    whole = upscale.upscale_image(model, image, tile=0)
    tiles: list[tuple[int, int]] = []
    tiled = upscale.upscale_image(
        model, image, tile=32, overlap=8, on_tile=lambda *t: tiles.append(t)
    )
    assert whole.size == tiled.size == (144, 80)
    assert tiles[-1] == (len(tiles), len(tiles)) and len(tiles) > 2
    diff = np.abs(np.asarray(whole, np.int16) - np.asarray(tiled, np.int16))
    assert diff.mean() < 0.5 and diff.max() <= 8


def test_a_scale_other_than_the_models_resizes_the_result(upscaler_folder: Path):
    model = upscale.load_upscaler(upscaler_folder / "tiny-x2.safetensors")
    assert upscale.upscale_image(model, noise_image(40, 32), scale=3).size == (120, 96)
    with pytest.raises(ValidationError, match="megapixels"):
        upscale.upscale_image(model, Image.new("RGB", (4096, 4096)), scale=4)


def test_pickles_refused_unless_allowed_and_read_as_weights_only(tmp_path: Path):
    path = tmp_path / "tiny.pth"
    torch.save(tiny_esrgan_state_dict(2), path)
    with pytest.raises(UnsafeCheckpointError, match="pickle"):
        upscale.load_upscaler(path)
    assert upscale.load_upscaler(path, allow_pickle=True).scale == 2


def test_a_file_that_is_not_an_upscaler(tmp_path: Path):
    from safetensors.torch import save_file

    junk = tmp_path / "junk.safetensors"
    save_file({"weight": torch.zeros(3, 3)}, str(junk))
    with pytest.raises(BadCheckpointError, match="not an upscaler model"):
        upscale.load_upscaler(junk)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a safetensors file at all")
    with pytest.raises(BadCheckpointError, match="not a readable upscaler"):
        upscale.load_upscaler(broken)


def test_folder_lookup(tmp_path: Path, upscaler_folder: Path, monkeypatch):
    assert upscale.upscaler_dir() == upscaler_folder
    assert upscale.upscaler_dir(str(tmp_path)) == tmp_path  # the flag wins
    monkeypatch.delenv("SDTUI_UPSCALERS")
    assert upscale.upscaler_dir(None, str(tmp_path / "cfg")) == tmp_path / "cfg"
    assert upscale.upscaler_dir().name == "upscalers"
    assert upscale.find_upscaler("tiny-x2", upscaler_folder).name == "tiny-x2.safetensors"
    with pytest.raises(ValidationError, match="tiny-x2"):
        upscale.find_upscaler("other", upscaler_folder)


def test_cli_upscale_saves_a_new_gallery_image_recording_its_source(
    upscaler_folder: Path, gallery_dir: Path, tmp_path: Path, capsys
):
    source = tmp_path / "photo.png"
    noise_image(48, 32).save(source)
    assert main(["upscale", str(source), "--json", "--tile", "32"]) == 0
    line = json.loads(capsys.readouterr().out)
    saved = gallery_pngs(gallery_dir)
    assert [str(p) for p in saved] == [line["path"]]
    assert Image.open(saved[0]).size == (96, 64) == (line["width"], line["height"])
    meta = read_metadata(saved[0])
    record = meta.info["info"]["upscale"]
    assert record["source"] == str(source.resolve())
    assert record["source_sha256"] == file_sha256(source)
    assert (record["upscaler"], record["scale"]) == ("tiny-x2", 2.0)
    assert meta.extras["Postprocess upscaler"] == "tiny-x2"
    assert source.read_bytes() == open(source, "rb").read()  # the source is untouched


def test_cli_upscale_keeps_the_sources_settings(upscaler_folder, gallery_dir, tmp_path, capsys):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", "a lighthouse\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 5, "
                  "Size: 512x512, Model: sd15")  # fmt: skip
    source = tmp_path / "a1111.png"
    noise_image(48, 32).save(source, pnginfo=info)
    assert main(["upscale", str(source), "--upscaler", "tiny-x2", "--scale", "3"]) == 0
    path = Path(capsys.readouterr().out.strip())
    meta = read_metadata(path)
    assert (meta.prompt, meta.seed, meta.steps) == ("a lighthouse", 5, 20)
    assert Image.open(path).size == (144, 96)
    assert meta.extras["Postprocess upscale by"] == "3"


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--upscaler", "nope"], "not in"),
        (["--scale", "20"], "from 1 to 8"),
        (["--tile", "abc"], "whole number"),
    ],
)
def test_cli_upscale_bad_input_exits_2(upscaler_folder, gallery_dir, tmp_path, capsys, argv, words):
    source = tmp_path / "photo.png"
    noise_image(16, 16).save(source)
    assert main(["upscale", str(source), *argv]) == 2
    assert words in capsys.readouterr().err
    assert not gallery_dir.exists() or not gallery_pngs(gallery_dir)


def test_cli_upscale_missing_image_exits_2(upscaler_folder, tmp_path, capsys):
    assert main(["upscale", str(tmp_path / "none.png")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_cli_upscalers_lists_the_folder(upscaler_folder: Path, capsys):
    torch.save({}, upscaler_folder / "old.pth")
    assert main(["upscalers", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(u["name"], u["format"]) for u in listed] == [
        ("old", "pickle"),
        ("tiny-x2", "safetensors"),
    ]
    assert main(["upscalers"]) == 0
    out = capsys.readouterr().out
    assert "tiny-x2" in out and "needs --allow-pickle" in out


def test_hires_fix_through_an_upscaler_model(
    upscaler_folder: Path, demo_model_dir: Path, gallery_dir: Path, capsys
):
    argv = ["generate", "a boat", "--model", "demo", "--steps", "2", "--seed", "1",
            "--width", "64", "--height", "64", "--hires-scale", "1.5",
            "--hires-upscaler", "tiny-x2", "--hires-denoise", "0.5"]  # fmt: skip
    assert main(argv) == 0
    path = Path(capsys.readouterr().out.strip())
    assert Image.open(path).size == (96, 96)
    meta = read_metadata(path)
    assert meta.request().hires_upscaler == str(upscaler_folder / "tiny-x2.safetensors")
    from sdtui.gallery.metadata import read_text_chunks

    assert "Hires upscaler: tiny-x2" in read_text_chunks(path)[0]["parameters"]


def test_tiles_cover_the_side_evenly_with_the_overlap_asked():
    spans = upscale._spans(1024, 512, 32)
    assert len(spans) == 3 and spans[0][0] == 0 and sum(spans[-1]) == 1024
    for (a, size), (b, _) in zip(spans, spans[1:], strict=False):
        assert a + size - b >= 32  # neighbours overlap by at least the overlap
    assert max(size for _, size in spans) <= 512
    assert upscale._spans(300, 512, 32) == [(0, 300)]
