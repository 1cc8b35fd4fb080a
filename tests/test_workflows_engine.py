"""img2img, hires fix, inpainting and outpainting on the tiny demo pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from sdtui.engine import Engine
from sdtui.engine import workflows as engine_workflows
from sdtui.errors import GenerationCancelled, ValidationError
from sdtui.params import GenerationRequest, format_parameters, parse_parameters
from sdtui.results import CancelToken, StepProgress
from sdtui.workflows import file_sha256

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def engine(demo_model_dir: Path) -> Engine:
    engine = Engine(device="cpu")
    engine.load(str(demo_model_dir))
    return engine


@pytest.fixture
def init_png(tmp_path: Path) -> Path:
    """A smooth picture (a VAE round trip keeps it close) with a coloured disc."""
    y, x = np.mgrid[0:64, 0:64]
    pixels = np.stack([x * 4, y * 4, np.full_like(x, 128)], axis=-1).astype(np.uint8)
    image = Image.fromarray(pixels)
    ImageDraw.Draw(image).ellipse((16, 16, 48, 48), fill=(220, 40, 40))
    path = tmp_path / "init.png"
    image.save(path)
    return path


@pytest.fixture
def mask_png(tmp_path: Path) -> Path:
    """White (repaint) on the right half only."""
    mask = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(mask).rectangle((32, 0, 63, 63), fill=255)
    path = tmp_path / "mask.png"
    mask.save(path)
    return path


@pytest.fixture
def request_for(demo_model_dir: Path):
    def make(**changes) -> GenerationRequest:
        fields = dict(
            prompt="a red ball", model=str(demo_model_dir), steps=4,
            width=64, height=64, seed=42, scheduler="Euler",
        )  # fmt: skip
        fields.update(changes)
        return GenerationRequest(**fields)

    return make


def pixels(result) -> np.ndarray:
    return np.asarray(result.images[0].image).astype(np.int16)


def test_img2img_pipeline_shares_the_loaded_weights(engine):
    pipe = engine.pipeline
    for kind in ("img2img", "inpaint"):
        derived = engine_workflows.image_pipeline(pipe, kind)
        assert derived is not pipe
        for name in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
            assert getattr(derived, name) is getattr(pipe, name), name
        assert derived.unet.dtype == pipe.unet.dtype
    assert type(engine_workflows.image_pipeline(pipe, "img2img")).__name__ == (
        "StableDiffusionImg2ImgPipeline"
    )


def test_strength_zero_gives_the_input_back(engine, request_for, init_png):
    original = np.asarray(Image.open(init_png).convert("RGB")).astype(np.int16)
    assert np.array_equal(
        pixels(engine.generate(request_for(init_image=str(init_png), strength=0.0))), original
    )
    # The smallest strength that runs a step (1 of 4) already changes it.
    smallest = pixels(engine.generate(request_for(init_image=str(init_png), strength=0.25)))
    assert smallest.shape == original.shape
    assert not np.array_equal(smallest, original)


def test_higher_strength_changes_more_and_same_seed_same_pixels(engine, request_for, init_png):
    low = pixels(engine.generate(request_for(init_image=str(init_png), strength=0.25)))
    low_again = pixels(engine.generate(request_for(init_image=str(init_png), strength=0.25)))
    high = pixels(engine.generate(request_for(init_image=str(init_png), strength=1.0)))
    other_seed = engine.generate(request_for(init_image=str(init_png), strength=0.25, seed=43))
    assert np.array_equal(low, low_again)
    assert not np.array_equal(low, high)
    assert not np.array_equal(low, pixels(other_seed))
    zero = pixels(engine.generate(request_for(init_image=str(init_png), strength=0.0)))
    assert np.abs(high - zero).mean() > np.abs(low - zero).mean()


def test_img2img_records_the_source_and_its_hash(engine, request_for, init_png):
    result = engine.generate(request_for(init_image=str(init_png), strength=0.5))
    request = result.images[0].image_request()
    assert request.init_image == str(init_png)
    assert request.init_image_sha256 == file_sha256(init_png)
    assert "Denoising strength: 0.5" in format_parameters(request, result.seeds[0])
    assert result.info["workflow"] == "img2img"


def test_img2img_resizes_the_init_image_to_the_request(engine, request_for, tmp_path):
    path = tmp_path / "wide.png"
    Image.new("RGB", (100, 50), (10, 200, 30)).save(path)
    result = engine.generate(request_for(init_image=str(path), width=96, height=64))
    assert result.images[0].image.size == (96, 64)


def test_img2img_previews_progress_and_cancel(engine, request_for, init_png):
    seen: list[StepProgress] = []
    engine.generate(request_for(init_image=str(init_png), strength=1.0), on_progress=seen.append)
    assert [p.step for p in seen] == [1, 2, 3, 4]
    cancel = CancelToken()

    def cancel_at_two(progress: StepProgress) -> None:
        if progress.step == 2:
            cancel.cancel()

    with pytest.raises(GenerationCancelled):
        engine.generate(
            request_for(init_image=str(init_png), strength=1.0),
            on_progress=cancel_at_two, cancel=cancel,
        )  # fmt: skip


def test_a_changed_source_is_refused_when_a_hash_was_recorded(engine, request_for, init_png):
    request = request_for(init_image=str(init_png), init_image_sha256="0" * 64)
    with pytest.raises(ValidationError, match="changed since"):
        engine.generate(request)


@pytest.mark.parametrize("bad", ["missing.png", "notimage.txt"])
def test_missing_or_unreadable_init_image(engine, request_for, tmp_path, bad):
    (tmp_path / "notimage.txt").write_text("hello")
    with pytest.raises(ValidationError, match="init image"):
        engine.generate(request_for(init_image=str(tmp_path / bad)))


def test_hires_fix_gives_the_target_size(engine, request_for):
    seen: list[StepProgress] = []
    request = request_for(hires_scale=1.5, hires_steps=4, hires_denoise=0.5)
    result = engine.generate(request, on_progress=seen.append)
    assert result.images[0].image.size == (96, 96)
    # Both passes report their steps: 4 at the base size, then int(4 * 0.5) = 2.
    assert [p.step for p in seen] == [1, 2, 3, 4, 1, 2]
    again = engine.generate(request)
    assert np.array_equal(pixels(result), pixels(again))
    text = format_parameters(result.images[0].image_request(), result.seeds[0])
    for pair in ("Denoising strength: 0.5", "Hires upscale: 1.5", "Hires steps: 4",
                 "Hires upscaler: Latent", "Size: 64x64"):  # fmt: skip
        assert pair in text


def test_inpainting_keeps_pixels_outside_the_mask(engine, request_for, init_png, mask_png):
    original = np.asarray(Image.open(init_png).convert("RGB")).astype(np.int16)
    sharp = engine.generate(
        request_for(init_image=str(init_png), mask=str(mask_png), mask_blur=0, strength=1.0)
    )
    out = pixels(sharp)
    assert np.array_equal(out[:, :32], original[:, :32])
    assert not np.array_equal(out[:, 32:], original[:, 32:])
    blurred = pixels(
        engine.generate(
            request_for(init_image=str(init_png), mask=str(mask_png), mask_blur=4, strength=1.0)
        )
    )
    # A blur of 4 feathers a few pixels into the kept half; further away nothing moves.
    assert np.array_equal(blurred[:, :20], original[:, :20])
    assert not np.array_equal(blurred[:, 28:32], original[:, 28:32])


def test_a_mask_of_another_size_is_resized_with_a_notice(engine, request_for, init_png, tmp_path):
    mask = tmp_path / "small-mask.png"
    Image.new("L", (32, 32), 255).save(mask)
    notices: list[str] = []
    result = engine.generate(
        request_for(init_image=str(init_png), mask=str(mask)), on_status=notices.append
    )
    assert result.images[0].image.size == (64, 64)
    assert any("mask was resized" in n for n in notices)


def test_a_black_mask_is_refused(engine, request_for, init_png, tmp_path):
    mask = tmp_path / "black.png"
    Image.new("L", (64, 64), 0).save(mask)
    with pytest.raises(ValidationError, match="no white area"):
        engine.generate(request_for(init_image=str(init_png), mask=str(mask)))


def test_outpainting_gives_the_larger_canvas(engine, request_for, init_png):
    original = np.asarray(Image.open(init_png).convert("RGB")).astype(np.int16)
    result = engine.generate(
        request_for(init_image=str(init_png), outpaint=("left:32", "down:16"), mask_blur=0)
    )
    out = pixels(result)
    assert out.shape == (80, 96, 3)
    assert np.array_equal(out[0:64, 32:96], original)  # the picture itself stays
    assert result.info["workflow"] == "outpaint"
    settings = parse_parameters(format_parameters(result.request, 42)).settings
    assert settings["Outpaint"] == "left:32 down:16"


def test_inpainting_checkpoint_takes_the_inpaint_pipeline(engine, init_png, mask_png, request_for):
    """A UNet with 9 input channels (mask + masked image) runs through the inpaint pipeline."""
    from diffusers import UNet2DConditionModel

    pipe = engine.pipeline
    config = dict(pipe.unet.config)
    config["in_channels"] = 9
    torch.manual_seed(0)
    nine = UNet2DConditionModel.from_config(config)
    original_unet = pipe.unet
    pipe.unet = nine
    try:
        assert engine_workflows.is_inpainting_model(pipe)
        result = engine.generate(
            request_for(init_image=str(init_png), mask=str(mask_png), mask_blur=0, strength=1.0)
        )
        source = np.asarray(Image.open(init_png).convert("RGB")).astype(np.int16)
        assert np.array_equal(pixels(result)[:, :32], source[:, :32])
        assert result.info["workflow"] == "inpaint"
    finally:
        pipe.unet = original_unet


def test_img2img_and_hires_show_previews(demo_model_dir, request_for, init_png):
    engine = Engine(device="cpu", preview="latent")
    seen: list[StepProgress] = []
    engine.generate(request_for(init_image=str(init_png), strength=1.0), on_progress=seen.append)
    assert any(p.preview is not None for p in seen)
    seen.clear()
    engine.generate(request_for(hires_scale=2, hires_denoise=1.0), on_progress=seen.append)
    assert any(p.preview is not None for p in seen)


def test_inpaint_only_masked_repaints_the_area_alone(engine, request_for, init_png, tmp_path):
    mask = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(mask).rectangle((40, 40, 55, 55), fill=255)
    mask_path = tmp_path / "corner.png"
    mask.save(mask_path)
    source = np.asarray(Image.open(init_png).convert("RGB")).astype(np.int16)
    fields = dict(init_image=str(init_png), mask=str(mask_path), mask_blur=0, strength=1.0)
    only = engine.generate(request_for(**fields, inpaint_only_masked=True, mask_padding=8))
    whole = engine.generate(request_for(**fields))
    out = pixels(only)
    assert out.shape == (64, 64, 3)
    outside = np.asarray(mask) == 0
    assert np.array_equal(out[outside], source[outside])
    assert not np.array_equal(out[40:56, 40:56], source[40:56, 40:56])
    # The area was painted at full size from its crop: not what the whole picture gives.
    assert not np.array_equal(out[40:56, 40:56], pixels(whole)[40:56, 40:56])
    settings = parse_parameters(format_parameters(only.request, 42)).settings
    assert (settings["Inpaint area"], settings["Masked area padding"]) == ("Only masked", "8")


def test_inpaint_only_masked_needs_a_mask(request_for, init_png):
    with pytest.raises(ValidationError, match="needs a mask"):
        request_for(init_image=str(init_png), inpaint_only_masked=True)
