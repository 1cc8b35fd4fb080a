"""The request type's validation and the AUTOMATIC1111 parameters round trip."""

from __future__ import annotations

import pytest

from sdtui.errors import ValidationError
from sdtui.params import (
    GenerationRequest,
    format_parameters,
    parse_parameters,
    request_from_parameters,
)


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"steps": 0}, "steps", "from 1 to 150"),
        ({"steps": 151}, "steps", "from 1 to 150"),
        ({"steps": "many"}, "steps", "whole number"),
        ({"cfg": 31}, "guidance", "from 0 to 30"),
        ({"cfg": float("nan")}, "guidance", "from 0 to 30"),
        ({"seed": -1}, "seed", "from 0 to 4294967295"),
        ({"seed": 2**32}, "seed", "from 0 to 4294967295"),
        ({"width": 513}, "width", "multiple of 8"),
        ({"height": 32}, "height", "from 64 to 2048"),
        ({"count": 0}, "count", "from 1 to 64"),
        ({"prompt": "   "}, "prompt", "empty"),
        ({"prompt": "cat\x1b[31m"}, "prompt", "control character U+001B"),
        ({"scheduler": "Warp drive"}, "scheduler", "unknown scheduler"),
    ],
)
def test_validation_names_field_and_range(changes, field, words):
    base = {"prompt": "a cat"}
    with pytest.raises(ValidationError) as info:
        GenerationRequest(**{**base, **changes})
    assert info.value.field == field
    assert words in str(info.value)


def test_limits_themselves_are_accepted():
    req = GenerationRequest(
        "a cat", steps=150, cfg=30, seed=2**32 - 1, width=2048, height=64, count=64
    )
    assert (req.steps, req.seed, req.width) == (150, 2**32 - 1, 2048)


def test_text_fields_are_normalised():
    req = GenerationRequest("a cat", steps="20", cfg="7.5", seed="42", scheduler="euler a")
    assert (req.steps, req.cfg, req.seed, req.scheduler) == (20, 7.5, 42, "Euler a")


def test_request_is_immutable_and_replace_validates():
    req = GenerationRequest("a cat")
    with pytest.raises(AttributeError):
        req.steps = 3  # type: ignore[misc]
    with pytest.raises(ValidationError):
        req.replace(steps=1000)


def test_round_trip_through_parameters_text():
    req = GenerationRequest(
        "oil painting of a cat,\nsitting on a rainbow",
        negative_prompt="blurry, lowres\nugly",
        scheduler="DPM++ SDE Karras",
        steps=30,
        cfg=6.5,
        seed=1234,
        width=640,
        height=448,
        model="stable-diffusion-v1-5/stable-diffusion-v1-5",
        extras={"Styles": "cinematic, moody", "Note": 'say "hi"'},
    )
    text = format_parameters(req)
    assert text.splitlines()[-1].startswith("Steps: 30, Sampler: DPM++ SDE Karras, CFG scale: 6.5")
    assert request_from_parameters(text) == req


def test_json_round_trip():
    req = GenerationRequest("a cat", seed=7, extras={"k": "v"})
    assert GenerationRequest.from_json(req.to_json()) == req


A1111_TEXT = """masterpiece, best quality, (lighthouse:1.2) at dusk
stormy sea
Negative prompt: lowres, bad anatomy, (worst quality:1.4)
Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 3839447154, \
Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.45, \
Hires upscale: 2, Hires upscaler: Latent, Lora hashes: "add_detail: 7c6bad76eb54, more: abc", \
Version: v1.10.1"""


def test_reads_real_a1111_text_with_extra_keys():
    req = request_from_parameters(A1111_TEXT)
    assert req.prompt == "masterpiece, best quality, (lighthouse:1.2) at dusk\nstormy sea"
    assert req.negative_prompt == "lowres, bad anatomy, (worst quality:1.4)"
    assert (req.steps, req.cfg, req.seed) == (28, 6.5, 3839447154)
    assert (req.width, req.height) == (512, 768)
    assert req.scheduler == "DPM++ 2M Karras"
    extras = dict(req.extras)
    assert extras["Lora hashes"] == "add_detail: 7c6bad76eb54, more: abc"
    assert req.hires_scale == 2.0  # A1111's hires fix is a setting of ours too
    assert extras["Model hash"] == "6ce0161689"
    # Written back out, the extra keys survive for A1111 to read again.
    again = parse_parameters(format_parameters(req))
    assert again.settings["Lora hashes"] == "add_detail: 7c6bad76eb54, more: abc"
    assert again.settings["Version"] == "v1.10.1"


def test_missing_negative_prompt_and_settings():
    parsed = parse_parameters("just a prompt: with a colon")
    assert parsed.prompt == "just a prompt: with a colon"
    assert parsed.negative_prompt == ""
    assert parsed.settings == {}
    assert request_from_parameters("a cat\nSteps: 5, Sampler: Euler a, Seed: 9").steps == 5
