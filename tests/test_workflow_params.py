"""The image-to-image fields of a request: validation, JSON and A1111 round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from sdtui.errors import ValidationError
from sdtui.gallery.metadata import metadata_from_texts
from sdtui.params import (
    GenerationRequest,
    format_parameters,
    parse_parameters,
    request_from_parameters,
)
from sdtui.workflows import file_sha256, with_file_hashes


def make(**changes) -> GenerationRequest:
    return GenerationRequest(prompt="a cat", seed=1, **changes)


def test_defaults_are_plain_text_to_image():
    request = make()
    assert request.init_image is None and request.hires_scale is None
    assert request.strength == 0.75 and request.hires_upscaler == "latent"
    assert "Denoising strength" not in format_parameters(request)


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"init_image": "a.png", "strength": 1.5}, "strength: must be from 0 to 1"),
        ({"init_image": "a.png", "strength": "lots"}, "strength: must be a number"),
        ({"mask": "m.png"}, "mask: needs an init image"),
        ({"outpaint": ("left:64",)}, "outpaint: needs an init image"),
        ({"init_image": "a.png", "outpaint": ("sideways:64",)}, "is not one of left"),
        ({"init_image": "a.png", "outpaint": ("left:60",)}, "multiple of 8"),
        ({"init_image": "a.png", "outpaint": ("left",)}, "SIDE:PIXELS"),
        ({"hires_scale": 9}, "hires scale: must be from 1 to 4"),
        ({"hires_scale": 2, "hires_denoise": -0.1}, "hires denoise"),
        ({"hires_scale": 2, "hires_steps": 2.5}, "whole number"),
        ({"hires_scale": 2, "init_image": "a.png"}, "text-to-image only"),
        ({"hires_scale": 4, "width": 2048, "height": 2048}, "limit is 4096"),
        ({"init_image": "a.png", "init_image_sha256": "xyz"}, "64 hexadecimal"),
        ({"init_image": "a.png", "mask": "m.png", "mask_blur": 100}, "mask blur"),
    ],
)
def test_bad_values_are_refused_in_one_line(changes, words):
    with pytest.raises(ValidationError, match=words) as info:
        make(**changes)
    assert "\n" not in str(info.value)


def test_outpaint_forms_and_a_scale_of_one_is_no_hires():
    request = make(init_image="a.png", outpaint=["right:16", ("left", "32"), "right:8"])
    assert request.outpaint == (("left", 32), ("right", 24))
    assert make(hires_scale=1).hires_scale is None


def test_json_round_trip_keeps_every_workflow_field():
    request = make(
        init_image="/pics/a.png", init_image_sha256="a" * 64, strength=0.4,
        mask="/pics/m.png", mask_sha256="b" * 64, mask_blur=8, outpaint=("up:64",),
    )  # fmt: skip
    data = json.loads(request.to_json())
    assert data["init_image"] == "/pics/a.png" and data["mask_sha256"] == "b" * 64
    assert GenerationRequest.from_json(request.to_json()) == request
    hires = make(hires_scale=2, hires_steps=10, hires_denoise=0.3, hires_upscaler="4x-Ultra")
    assert GenerationRequest.from_json(hires.to_json()) == hires


def test_hires_keys_written_and_read_back_under_a1111_names():
    request = make(hires_scale=1.5, hires_steps=12, hires_denoise=0.45)
    text = format_parameters(request)
    settings = parse_parameters(text).settings
    assert settings["Denoising strength"] == "0.45"
    assert settings["Hires upscale"] == "1.5"
    assert settings["Hires steps"] == "12"
    assert settings["Hires upscaler"] == "Latent"
    assert request_from_parameters(text) == request


def test_an_a1111_hires_image_reads_back_into_fields():
    text = (
        "a castle\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 9, "
        "Size: 512x512, Model: sd15, Denoising strength: 0.7, Hires upscale: 2, "
        "Hires steps: 15, Hires upscaler: R-ESRGAN 4x+"
    )
    request = request_from_parameters(text)
    assert (request.hires_scale, request.hires_steps, request.hires_denoise) == (2.0, 15, 0.7)
    assert request.hires_upscaler == "R-ESRGAN 4x+"
    assert not any(k.startswith("Hires") for k, _ in request.extras)
    latent = request_from_parameters(text.replace("R-ESRGAN 4x+", "Latent (nearest-exact)"))
    assert latent.hires_upscaler == "latent"


def test_an_a1111_img2img_strength_stays_an_extra_and_is_written_once():
    text = (
        "a dog\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 3, Size: 512x512, "
        "Denoising strength: 0.6"
    )
    request = request_from_parameters(text)
    assert dict(request.extras)["Denoising strength"] == "0.6"
    again = request.replace(init_image="x.png", strength=0.3)
    assert format_parameters(again).count("Denoising strength") == 1
    assert "Denoising strength: 0.3" in format_parameters(again)


def test_upscaler_file_recorded_by_name():
    request = make(hires_scale=2, hires_upscaler="/models/up/4x-UltraSharp.safetensors")
    assert "Hires upscaler: 4x-UltraSharp" in format_parameters(request)


def test_sdtui_chunk_carries_the_source_and_mask_record():
    request = make(init_image="/p/a.png", init_image_sha256="c" * 64, mask="/p/m.png")
    record = {"request": request.to_dict(), "seed": 1}
    meta = metadata_from_texts({"sdtui": json.dumps(record)})
    assert meta.request() == request


def test_hashes_filled_in_and_a_changed_file_refused(tmp_path: Path):
    path = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(path)
    request = with_file_hashes(make(init_image=str(path)))
    assert request.init_image_sha256 == file_sha256(path)
    assert with_file_hashes(request) == request
    Image.new("RGB", (8, 8), (1, 2, 3)).save(path)
    with pytest.raises(ValidationError, match="has changed"):
        with_file_hashes(request)
    with pytest.raises(ValidationError, match="no such file"):
        with_file_hashes(make(init_image=str(tmp_path / "gone.png")))


def test_an_a1111_png_remixes_with_its_hires_fix():
    text = (
        "a castle\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 9, Size: 512x512, "
        "Denoising strength: 0.35, Hires upscale: 1.5, Hires upscaler: Latent"
    )
    request = metadata_from_texts({"parameters": text}).request()
    assert (request.hires_scale, request.hires_denoise, request.hires_upscaler) == (
        1.5, 0.35, "latent",
    )  # fmt: skip
