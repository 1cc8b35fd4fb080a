"""`sdtui generate` with --init-image, --mask, --outpaint and the hires fix flags."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from sdtui.cli import main
from sdtui.gallery.metadata import read_metadata, read_text_chunks
from sdtui.workflows import file_sha256
from tests.helpers import gallery_pngs


@pytest.fixture
def init_png(tmp_path: Path) -> Path:
    y, x = np.mgrid[0:72, 0:80]
    pixels = np.stack([x * 3, y * 3, np.full_like(x, 90)], axis=-1).astype(np.uint8)
    path = tmp_path / "start.png"
    Image.fromarray(pixels).save(path)
    return path


def generate(capsys, *args: str) -> list[dict]:
    code = main(["generate", "a red boat", "--model", "demo", "--steps", "4", "--seed", "3",
                 "--json", *args])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return [json.loads(line) for line in captured.out.splitlines()]


def test_img2img_takes_the_pictures_size_and_records_its_source(
    demo_model_dir, gallery_dir, init_png, capsys
):
    [line] = generate(capsys, "--init-image", str(init_png), "--strength", "0.5")
    path = Path(line["path"])
    assert Image.open(path).size == (80, 72)
    meta = read_metadata(path)
    request = meta.request()
    assert request.init_image == str(init_png)
    assert request.init_image_sha256 == file_sha256(init_png)
    assert request.strength == 0.5
    texts, _, _ = read_text_chunks(path)
    assert "Denoising strength: 0.5" in texts["parameters"]
    [again] = generate(capsys, "--init-image", str(init_png), "--strength", "0.5")
    assert np.array_equal(np.asarray(Image.open(path)), np.asarray(Image.open(again["path"])))


def test_hires_fix_makes_the_target_size_and_records_a1111_keys(
    demo_model_dir, gallery_dir, capsys
):
    [line] = generate(capsys, "--width", "64", "--height", "64", "--hires-scale", "2",
                      "--hires-steps", "2", "--hires-denoise", "0.5")  # fmt: skip
    path = Path(line["path"])
    assert Image.open(path).size == (128, 128)
    texts, _, _ = read_text_chunks(path)
    for pair in ("Size: 64x64", "Hires upscale: 2", "Hires steps: 2",
                 "Hires upscaler: Latent", "Denoising strength: 0.5"):  # fmt: skip
        assert pair in texts["parameters"]
    request = read_metadata(path).request()
    assert (request.hires_scale, request.hires_steps, request.hires_denoise) == (2.0, 2, 0.5)


def test_mask_repaints_only_the_white_part(demo_model_dir, gallery_dir, init_png, tmp_path, capsys):
    mask = Image.new("L", (80, 72), 0)
    ImageDraw.Draw(mask).rectangle((0, 0, 79, 31), fill=255)  # the top repaints
    mask_path = tmp_path / "mask.png"
    mask.save(mask_path)
    [line] = generate(capsys, "--init-image", str(init_png), "--mask", str(mask_path),
                      "--mask-blur", "2", "--strength", "1")  # fmt: skip
    out = np.asarray(Image.open(line["path"]).convert("RGB"))
    source = np.asarray(Image.open(init_png).convert("RGB"))
    assert np.array_equal(out[40:], source[40:])
    assert not np.array_equal(out[:32], source[:32])
    request = read_metadata(Path(line["path"])).request()
    assert (request.mask, request.mask_sha256) == (str(mask_path), file_sha256(mask_path))


def test_outpaint_gives_the_larger_canvas(demo_model_dir, gallery_dir, init_png, capsys):
    [line] = generate(capsys, "--init-image", str(init_png), "--outpaint", "left:16",
                      "--outpaint", "up:8", "--outpaint", "right:8")  # fmt: skip
    assert Image.open(line["path"]).size == (80 + 24, 72 + 8)


@pytest.mark.parametrize(
    "args, words",
    [
        (["--init-image", "missing.png"], "init image: missing.png: no such file"),
        (["--init-image", "notes.txt"], "not an image file"),
        (["--init-image", "start.png", "--strength", "2"], "strength: must be from 0 to 1"),
        (["--init-image", "start.png", "--mask", "notes.txt"], "mask:"),
        (["--mask", "start.png"], "needs an init image"),
        (["--init-image", "start.png", "--outpaint", "north:64"], "not one of left"),
        (["--hires-scale", "2", "--hires-upscaler", "nope"], "upscaler: 'nope' is not in"),
        (["--hires-scale", "12"], "hires scale"),
    ],
)
def test_bad_workflow_input_exits_2_and_saves_nothing(
    demo_model_dir, gallery_dir, init_png, capsys, monkeypatch, args, words
):
    monkeypatch.chdir(init_png.parent)
    (init_png.parent / "notes.txt").write_text("not a picture")
    code = main(["generate", "a cat", "--model", "demo", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert words in err and len(err.strip().splitlines()) == 1
    assert not gallery_dir.exists() or not gallery_pngs(gallery_dir)


def test_inpaint_only_masked_flags(demo_model_dir, gallery_dir, init_png, tmp_path, capsys):
    mask = Image.new("L", (80, 72), 0)
    ImageDraw.Draw(mask).rectangle((8, 8, 31, 31), fill=255)
    mask_path = tmp_path / "spot.png"
    mask.save(mask_path)
    [line] = generate(capsys, "--init-image", str(init_png), "--mask", str(mask_path),
                      "--inpaint-only-masked", "--mask-padding", "16", "--mask-blur", "0",
                      "--strength", "1")  # fmt: skip
    out = np.asarray(Image.open(line["path"]).convert("RGB"))
    assert out.shape == (72, 80, 3)
    source = np.asarray(Image.open(init_png).convert("RGB"))
    assert np.array_equal(out[40:], source[40:])
    request = read_metadata(Path(line["path"])).request()
    assert (request.inpaint_only_masked, request.mask_padding) == (True, 16)


def test_a_mask_of_another_size_is_resized_and_said(
    demo_model_dir, gallery_dir, init_png, tmp_path, capsys
):
    mask_path = tmp_path / "small.png"
    Image.new("L", (40, 36), 255).save(mask_path)
    code = main(["generate", "a boat", "--model", "demo", "--steps", "2",
                 "--init-image", str(init_png), "--mask", str(mask_path)])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0
    assert "the mask is 40x36 and the image 80x72: the mask was resized to fit" in captured.err
    assert Image.open(captured.out.strip()).size == (80, 72)
