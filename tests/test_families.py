"""Model families: detection, defaults that follow the model, and SD 3 / FLUX end to end.

The SD 3, FLUX and SDXL models are tiny random-weight pipelines built locally
(tests/family_models.py) and loaded through the real loading code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from family_models import transformer_file
from helpers import messages

from sdtui import families
from sdtui.engine import Engine
from sdtui.errors import ValidationError
from sdtui.params import GenerationRequest, format_parameters, request_from_parameters

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def engines() -> dict[str, Engine]:
    """One CPU engine per family, so each tiny model loads once per module."""
    return {}


def _engine(engines: dict[str, Engine], folder: Path, preview: str = "off") -> Engine:
    key = f"{folder}:{preview}"
    if key not in engines:
        engines[key] = Engine(device="cpu", preview=preview)
    engines[key].load(str(folder))
    return engines[key]


def _request(folder: Path, **fields: object) -> GenerationRequest:
    defaults = dict(
        prompt="a lighthouse at dusk",
        model=str(folder),
        scheduler="Euler",
        steps=3,
        cfg=3.5,
        seed=7,
        width=64,
        height=64,
    )
    defaults.update(fields)
    return GenerationRequest(**defaults)


def _pixels(result: object) -> np.ndarray:
    return np.asarray(result.images[0].image)  # type: ignore[attr-defined]


# -- the registry, without loading anything -----------------------------------


def test_every_family_has_classes_defaults_schedulers_and_preview_factors() -> None:
    for name in ("sd1", "sd2", "sdxl", "sd3", "flux"):
        family = families.FAMILIES[name]
        assert family.txt2img.endswith("Pipeline") and family.img2img and family.inpaint
        assert family.scheduler in family.schedulers
        assert family.latent_rgb is not None
        assert len(family.latent_rgb) == family.latent_channels
    assert families.FAMILIES["sd3"].latent_channels == 16
    assert families.FAMILIES["flux"].latent_channels == 16
    assert families.FAMILIES["flux"].packed_latents


def test_flow_matching_families_offer_only_flow_schedulers() -> None:
    ddpm_only = {"DPM++ 2M Karras", "DDIM", "LCM", "Euler a"}
    for name in ("sd3", "flux"):
        assert not ddpm_only & set(families.FAMILIES[name].schedulers)
    for name in ("sd1", "sd2", "sdxl"):
        assert ddpm_only <= set(families.FAMILIES[name].schedulers)


@pytest.mark.parametrize(
    ("model_id", "family", "tuning", "steps", "cfg"),
    [
        ("stabilityai/sdxl-turbo", "sdxl", "turbo", 1, 0.0),
        ("stabilityai/stable-diffusion-3.5-large-turbo", "sd3", "turbo", 4, 0.0),
        ("ByteDance/SDXL-Lightning-8step", "sdxl", "lightning", 8, 0.0),
        ("some/hyper-sdxl-1step", "sdxl", "hyper", 1, 0.0),
        ("latent-consistency/lcm-sdxl", "sdxl", "lcm", 4, 1.0),
        ("black-forest-labs/FLUX.1-schnell", "flux", "schnell", 4, 0.0),
        ("black-forest-labs/FLUX.1-dev", "flux", "", 28, 3.5),
        ("stabilityai/stable-diffusion-3.5-medium", "sd3", "", 28, 4.5),
    ],
)
def test_few_step_tunings_come_from_the_model_name(
    model_id: str, family: str, tuning: str, steps: int, cfg: float
) -> None:
    defaults = families.defaults_for_entry(family, (1024, 1024), model_id)
    assert (defaults.tuning, defaults.steps, defaults.cfg) == (tuning, steps, cfg)
    assert defaults.scheduler in defaults.schedulers
    if tuning in ("turbo", "lightning", "hyper") and family == "sdxl":
        assert defaults.scheduler.endswith("trailing")


def test_defaults_clamp_the_pipeline_size_to_the_limits() -> None:
    assert families.model_defaults("sd1", (32, 32)).size == (64, 64)
    assert families.model_defaults("sdxl", (4096, 4096)).size == (2048, 2048)
    assert families.model_defaults("flux", (1000, 1000)).size == (992, 992)  # multiple of 16


def test_fitting_a_request_keeps_what_the_user_set_unless_it_cannot_run() -> None:
    flux = families.model_defaults("flux", (1024, 1024))
    request = GenerationRequest("a cat", negative_prompt="blurry", scheduler="DDIM", steps=12)
    fitted, notices = families.fit_request(request, flux, {"steps", "scheduler"})
    assert fitted.steps == 12  # set by hand, valid: kept
    assert fitted.scheduler == "Euler"  # set by hand, but DDIM does not run on FLUX
    assert (fitted.width, fitted.height, fitted.cfg) == (1024, 1024, 3.5)
    assert fitted.negative_prompt == ""  # FLUX does not use one, and the notice says so
    assert any("DDIM does not fit" in n for n in notices)
    assert any("negative prompt" in n for n in notices)
    assert dict(fitted.extras)["Distilled CFG Scale"] == "3.5"


def test_guidance_on_a_distilled_model_is_reported() -> None:
    turbo = families.defaults_for_entry("sdxl", (512, 512), "stabilityai/sdxl-turbo")
    fitted, notices = families.fit_request(GenerationRequest("a cat", cfg=5), turbo, {"cfg"})
    assert fitted.cfg == 5 and any("made for guidance 0" in n for n in notices)
    schnell = families.defaults_for_entry("flux", (1024, 1024), "FLUX.1-schnell")
    fitted, notices = families.fit_request(GenerationRequest("a cat", cfg=5), schnell, {"cfg"})
    assert fitted.cfg == 0 and any("no guidance" in n for n in notices)


def test_forge_metadata_for_flux_writes_distilled_guidance_and_reads_it_back() -> None:
    flux = families.model_defaults("flux", (1024, 1024))
    request, _ = families.fit_request(GenerationRequest("a cat", seed=3), flux)
    text = format_parameters(request)
    assert "CFG scale: 1," in text and "Distilled CFG Scale: 3.5" in text
    assert request_from_parameters(text).cfg == 3.5
    forge = "a cat\nSteps: 20, Sampler: Euler, Schedule type: Simple, CFG scale: 1, "
    forge += "Distilled CFG Scale: 3.5, Seed: 1, Size: 896x1152, Model: flux1-dev"
    read = request_from_parameters(forge)
    assert (read.cfg, read.scheduler, read.width, read.height) == (3.5, "Euler", 896, 1152)


def test_family_from_checkpoint_keys() -> None:
    from sdtui.engine.loader import family_from_state_dict_keys

    assert family_from_state_dict_keys(["double_blocks.0.img_attn.qkv.weight"]) == "flux"
    assert family_from_state_dict_keys(["model.diffusion_model.joint_blocks.0.x"]) == "sd3"
    assert family_from_state_dict_keys(["single_transformer_blocks.0.attn.to_q.weight"]) == "flux"
    assert family_from_state_dict_keys(["conditioner.embedders.1.model.x"]) == "sdxl"
    assert family_from_state_dict_keys(["model.diffusion_model.input_blocks.0.0.weight"]) == "sd1"


# -- SD 3 and FLUX through the real loader and engine --------------------------


@pytest.mark.parametrize("kind", ["sd3", "flux"])
def test_tiny_model_loads_with_its_family_and_reproduces_by_seed(
    kind: str, family_model: object, engines: dict[str, Engine]
) -> None:
    folder = family_model(kind)  # type: ignore[operator]
    engine = _engine(engines, folder)
    assert engine.loaded.family == kind
    assert engine.loaded.pipeline_class == families.FAMILIES[kind].txt2img
    first = engine.generate(_request(folder))
    again = engine.generate(_request(folder))
    other = engine.generate(_request(folder, seed=8))
    assert first.images[0].image.size == (64, 64)
    assert np.array_equal(_pixels(first), _pixels(again))
    assert not np.array_equal(_pixels(first), _pixels(other))
    assert first.info["family"] == kind


def test_tiny_sd3_below_64_pixels_defaults_to_64(family_model: object) -> None:
    loaded = Engine(device="cpu").load(str(family_model("sd3")))  # type: ignore[operator]
    assert loaded.native_size == (64, 64)  # the pipeline's own 32x32, clamped
    assert (loaded.defaults.steps, loaded.defaults.scheduler) == (28, "Euler")


def test_flux_dev_and_schnell_defaults(family_model: object) -> None:
    dev = Engine(device="cpu").load(str(family_model("flux")))  # type: ignore[operator]
    schnell = Engine(device="cpu").load(str(family_model("flux-schnell")))  # type: ignore[operator]
    assert (dev.defaults.tuning, dev.defaults.steps, dev.defaults.cfg) == ("", 28, 3.5)
    assert "negative_prompt" in dev.defaults.unused
    assert (schnell.defaults.tuning, schnell.defaults.steps) == ("schnell", 4)
    assert {"cfg", "negative_prompt"} <= schnell.defaults.unused
    assert dev.native_size == (1024, 1024) and dev.defaults.size_presets[0] == (1024, 1024)


@pytest.mark.parametrize("kind", ["sd3", "flux"])
def test_preview_frames_of_16_channel_and_packed_latents(
    kind: str, family_model: object, engines: dict[str, Engine]
) -> None:
    folder = family_model(kind)  # type: ignore[operator]
    engine = _engine(engines, folder, preview="latent")
    frames = []
    engine.generate(
        _request(folder, width=128, height=64),
        on_progress=lambda p: frames.append(p.preview.size if p.preview else None),
    )
    # The first frame is always due: latents at 1/8 of the image, doubled.
    assert frames[0] == (128 // 8 * 2, 64 // 8 * 2)


@pytest.mark.parametrize("kind", ["sd3", "flux"])
def test_every_listed_scheduler_runs_and_ddpm_ones_are_refused(
    kind: str, family_model: object, engines: dict[str, Engine]
) -> None:
    folder = family_model(kind)  # type: ignore[operator]
    engine = _engine(engines, folder)
    for name in engine.loaded.defaults.schedulers:
        assert engine.generate(_request(folder, scheduler=name, steps=2)).images
        assert type(engine.pipeline.scheduler).__name__ == "FlowMatchEulerDiscreteScheduler"
    with pytest.raises(ValidationError, match="does not fit a .* model"):
        engine.generate(_request(folder, scheduler="DPM++ 2M Karras"))


@pytest.mark.parametrize("kind", ["sd3", "flux"])
def test_transformer_file_loads_offline_with_model_config(
    kind: str, family_model: object, tmp_path: Path
) -> None:
    folder = family_model(kind)  # type: ignore[operator]
    single = transformer_file(folder, tmp_path / f"{kind}-transformer.safetensors")
    engine = Engine(device="cpu")
    loaded = engine.load(str(single), config=str(folder))
    assert loaded.family == kind
    from_file = engine.generate(_request(str(single)))
    from_folder = Engine(device="cpu").generate(_request(folder))
    assert np.array_equal(_pixels(from_file), _pixels(from_folder))


def test_single_file_without_config_offline_says_what_to_do(
    family_model: object, tmp_path: Path
) -> None:
    from sdtui.errors import ModelOfflineError

    folder = family_model("flux")  # type: ignore[operator]
    single = transformer_file(folder, tmp_path / "flux1-dev.safetensors")
    with pytest.raises(ModelOfflineError, match="model configuration") as caught:
        Engine(device="cpu").load(str(single))
    assert "--model-config" in caught.value.hint


def test_metadata_round_trip_and_remix(
    family_model: object, engines: dict[str, Engine], tmp_path: Path
) -> None:
    from sdtui.gallery import Gallery
    from sdtui.gallery.metadata import read_metadata, read_text_chunks

    folder = family_model("flux")  # type: ignore[operator]
    engine = _engine(engines, folder)
    defaults = engine.loaded.defaults
    request, _ = families.fit_request(_request(folder), defaults, set(families.FOLLOWING_FIELDS))
    result = engine.generate(request)
    entry = Gallery(tmp_path / "gallery").save(result.images[0], result)
    meta = read_metadata(entry.path)
    assert meta.source == "sdtui"
    assert meta.info["family"] == meta.info["info"]["family"] == "flux"
    parameters = read_text_chunks(entry.path)[0]["parameters"]
    assert "CFG scale: 1," in parameters and "Distilled CFG Scale: 3.5" in parameters
    remixed = engine.generate(meta.request())
    assert np.array_equal(_pixels(remixed), _pixels(result))
    # The A1111 text alone reproduces it too (what another tool's reader sees).
    from_text = request_from_parameters(parameters, model=str(folder))
    assert np.array_equal(_pixels(engine.generate(from_text)), _pixels(result))


# -- `sdtui generate` follows the loaded model ---------------------------------


def _generate_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[list[dict], str]:
    import json

    from sdtui.cli import main

    code = main(["generate", *args, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return [json.loads(line) for line in captured.out.splitlines()], captured.err


def test_generate_without_settings_uses_the_model_defaults(
    family_model: object, gallery_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = family_model("sd3")  # type: ignore[operator]
    # Steps are given to keep the test fast; everything else comes from the model.
    lines, _ = _generate_json(capsys, "a red boat", "--model", str(folder), "--steps", "2")
    line = lines[0]
    assert (line["width"], line["height"]) == (64, 64)  # 32 native, clamped to the minimum
    assert (line["steps"], line["cfg_scale"], line["sampler"]) == (2, 4.5, "Euler")
    assert line["family"] == "sd3"


def test_generate_reports_unused_input_and_replaces_an_unfit_sampler(
    family_model: object, gallery_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = family_model("flux")  # type: ignore[operator]
    lines, err = _generate_json(
        capsys, "a red boat", "--model", str(folder), "--steps", "2", "--width", "64",
        "--height", "64", "--negative", "blurry", "--scheduler", "DPM++ 2M Karras",
    )  # fmt: skip
    line = lines[0]
    assert (line["family"], line["sampler"], line["cfg_scale"]) == ("flux", "Euler", 3.5)
    assert line["negative_prompt"] == ""
    assert "does not use a negative prompt" in err
    assert "DPM++ 2M Karras does not fit a flux model; using Euler" in err


def test_generate_keeps_valid_values_set_by_hand(
    demo_model_dir: Path, gallery_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines, err = _generate_json(
        capsys, "a red boat", "--model", "demo", "--steps", "2", "--cfg", "3",
        "--scheduler", "DDIM", "--width", "96",
    )  # fmt: skip
    line = lines[0]
    assert (line["width"], line["height"]) == (96, 64)
    assert (line["cfg_scale"], line["sampler"]) == (3, "DDIM")
    assert line["family"] == "sd1" and messages(err) == []  # no notice of a change


def test_sd3_and_flux_get_bf16_on_gpus_that_have_it(
    family_model: object, demo_model_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from sdtui.engine import device, loader

    sd3 = loader.resolve_source(str(family_model("sd3")))  # type: ignore[operator]
    flux_file = transformer_file(family_model("flux"), tmp_path / "f.safetensors")  # type: ignore[operator]
    assert loader.guess_family(sd3) == "sd3"
    assert loader.guess_family(loader.resolve_source(str(flux_file))) == "flux"
    assert loader.guess_family(loader.resolve_source("flux-dev")) == "flux"
    assert loader.guess_family(loader.resolve_source(str(demo_model_dir))) == "sd1"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert device.dtype_for_family("cuda", "flux") == "bf16"
    assert device.dtype_for_family("cuda", "sdxl") == "fp16"
    assert device.dtype_for_family("cpu", "flux") == "fp32"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert device.dtype_for_family("cuda", "sd3") == "fp16"


# -- a pipeline without a registry entry runs in plain mode --------------------


@pytest.fixture(scope="module")
def plain_model(demo_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo weights as diffusers' LatentConsistencyModelPipeline (no family entry)."""
    from diffusers import (
        LatentConsistencyModelPipeline,
        LCMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )

    base = StableDiffusionPipeline.from_pretrained(demo_model_dir)
    torch.manual_seed(0)
    # LCM UNets take the guidance scale as an embedding.
    unet = UNet2DConditionModel.from_config({**base.unet.config, "time_cond_proj_dim": 32})
    pipe = LatentConsistencyModelPipeline.from_pipe(
        base, unet=unet, scheduler=LCMScheduler.from_config(base.scheduler.config)
    )
    folder = tmp_path_factory.mktemp("plain") / "lcm"
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def test_an_unknown_pipeline_loads_plain_and_says_what_is_not_used(plain_model: Path) -> None:
    statuses: list[str] = []
    engine = Engine(device="cpu", preview="latent")
    loaded = engine.load(str(plain_model), on_status=statuses.append)
    defaults = loaded.defaults
    assert loaded.family == "LatentConsistencyModelPipeline"
    assert "plain mode: live previews" in statuses[-1]
    assert (defaults.scheduler, defaults.tuning, defaults.steps) == ("LCM", "lcm", 4)
    request = _request(plain_model, scheduler="LCM", steps=2, negative_prompt="blurry")
    first = engine.generate(request)
    assert np.array_equal(_pixels(first), _pixels(engine.generate(request)))
    assert first.info["not_used"] == ["negative_prompt"]  # its __call__ takes none


# -- SDXL's refiner as a second stage ------------------------------------------


def test_sdxl_refiner_finishes_the_image_and_reproduces(
    family_model: object, engines: dict[str, Engine], tmp_path: Path
) -> None:
    from sdtui.gallery import Gallery
    from sdtui.gallery.metadata import read_metadata, read_text_chunks

    base = family_model("sdxl")  # type: ignore[operator]
    refiner = family_model("sdxl-refiner")  # type: ignore[operator]
    engine = _engine(engines, base)
    plain = _request(base, scheduler="Euler", steps=4, cfg=5)
    refined = plain.replace(refiner=str(refiner), refiner_switch=0.5)
    steps: list[tuple[int, int]] = []
    first = engine.generate(refined, on_progress=lambda p: steps.append((p.step, p.total)))
    assert steps == [(1, 2), (2, 2), (1, 2), (2, 2)]  # base half, then refiner half
    second_stage = engine._refiner._pipe
    assert second_stage.vae is engine.pipeline.vae  # shared, not loaded twice
    assert second_stage.text_encoder_2 is engine.pipeline.text_encoder_2
    again = engine.generate(refined)
    assert np.array_equal(_pixels(first), _pixels(again))
    assert not np.array_equal(_pixels(first), _pixels(engine.generate(plain)))
    entry = Gallery(tmp_path / "gallery").save(first.images[0], first)
    parameters = read_text_chunks(entry.path)[0]["parameters"]
    assert f"Refiner: {refiner}" in parameters and "Refiner switch at: 0.5" in parameters
    remix = read_metadata(entry.path).request()
    assert (remix.refiner, remix.refiner_switch) == (str(refiner), 0.5)
    assert np.array_equal(_pixels(engine.generate(remix)), _pixels(first))


def test_a_refiner_after_a_non_sdxl_model_is_refused(
    family_model: object, engines: dict[str, Engine]
) -> None:
    folder = family_model("sd3")  # type: ignore[operator]
    engine = _engine(engines, folder)
    request = _request(folder, refiner=str(family_model("sdxl-refiner")))  # type: ignore[operator]
    with pytest.raises(ValidationError, match="runs after SDXL models"):
        engine.generate(request)


def test_generate_with_a_refiner_from_the_command_line(
    family_model: object, gallery_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    base, second = family_model("sdxl"), family_model("sdxl-refiner")  # type: ignore[operator]
    lines, _ = _generate_json(
        capsys, "a red boat", "--model", str(base), "--refiner", str(second),
        "--refiner-switch", "0.6", "--steps", "3", "--width", "64", "--height", "64",
    )  # fmt: skip
    with Image.open(lines[0]["path"]) as image:
        assert "Refiner switch at: 0.6" in image.text["parameters"]


def test_tuning_words_must_stand_alone_in_the_name() -> None:
    assert families.tuning_from_name("someone/hyperrealism-xl", "sdxl") is None
    assert families.tuning_from_name("/models/turbocharged_v2.safetensors", "sdxl") is None
    assert families.tuning_from_name("/models/dreamshaperXL_lightning.safetensors", "sdxl")


def test_sd2_presets_scale_with_its_native_size() -> None:
    presets = families.model_defaults("sd2", (768, 768)).size_presets
    assert presets[:3] == ((768, 768), (768, 1152), (1152, 768))
    assert families.model_defaults("sd1", (512, 512)).size_presets[0] == (512, 512)
