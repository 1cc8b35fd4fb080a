"""Speed/memory settings reach the pipeline; settings come from config, env and flags."""

from __future__ import annotations

import argparse

import pytest
import torch

from sdtui.config import load_settings
from sdtui.engine.performance import (
    PerformanceOptions,
    add_performance_arguments,
    apply_performance,
    apply_request_settings,
    compile_pending,
    mark_compiled,
    next_memory_step,
    performance_from_settings,
)
from sdtui.errors import ValidationError

torch.set_num_threads(1)


@pytest.fixture
def pipe(demo_model_dir):
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline.from_pretrained(demo_model_dir)


def _processor_types(module) -> set[str]:
    return {type(p).__name__ for p in module.attn_processors.values()}


def _first_conv(module) -> torch.nn.Conv2d:
    return next(m for m in module.modules() if isinstance(m, torch.nn.Conv2d))


def _generate(pipe, seed: int = 3):
    return pipe(
        "a cat",
        num_inference_steps=2,
        height=64,
        width=64,
        generator=torch.Generator("cpu").manual_seed(seed),
        output_type="np",
    ).images


def test_sdpa_is_set_on_unet_and_vae(pipe) -> None:
    from diffusers.models.attention_processor import AttnProcessor

    pipe.unet.set_attn_processor(AttnProcessor())  # as an older load might leave it
    apply_performance(pipe, PerformanceOptions(), "cpu")
    assert _processor_types(pipe.unet) == {"AttnProcessor2_0"}
    assert _processor_types(pipe.vae) == {"AttnProcessor2_0"}


def test_classic_attention_can_be_chosen_and_gives_the_same_image(pipe) -> None:
    sdpa = _generate(pipe)
    notes = apply_performance(pipe, PerformanceOptions(attention="classic"), "cpu")
    assert _processor_types(pipe.unet) == {"AttnProcessor"}
    assert any("classic" in n for n in notes)
    assert abs(_generate(pipe) - sdpa).max() < 1e-3


def test_custom_attention_processors_are_left_alone(pipe) -> None:
    from diffusers.models.attention_processor import AttnProcessor2_0

    class Custom(AttnProcessor2_0):
        pass

    pipe.unet.set_attn_processor(Custom())
    apply_performance(pipe, PerformanceOptions(attention="classic"), "cpu")
    assert _processor_types(pipe.unet) == {"Custom"}


def test_channels_last_on_reaches_unet_and_vae_weights(pipe) -> None:
    before = _generate(pipe)
    notes = apply_performance(pipe, PerformanceOptions(channels_last="on"), "cpu")
    for module in (pipe.unet, pipe.vae):
        weight = _first_conv(module).weight
        assert weight.is_contiguous(memory_format=torch.channels_last)
        assert not weight.is_contiguous()
    assert "channels-last memory format" in notes
    assert abs(_generate(pipe) - before).max() < 1e-3


def test_channels_last_auto_is_off_on_cpu(pipe) -> None:
    notes = apply_performance(pipe, PerformanceOptions(), "cpu")
    assert _first_conv(pipe.unet).weight.is_contiguous()
    assert notes == []


def test_vae_tiling_auto_follows_the_size(pipe) -> None:
    options = PerformanceOptions()
    assert apply_request_settings(pipe, options, 512, 512) == []
    assert not pipe.vae.use_tiling and not pipe.vae.use_slicing
    assert apply_request_settings(pipe, options, 1536, 1024) == ["VAE tiling"]
    assert pipe.vae.use_tiling
    apply_request_settings(pipe, options, 1024, 1024)
    assert not pipe.vae.use_tiling  # 1024x1024 still decodes whole


def test_vae_slicing_auto_follows_the_count(pipe) -> None:
    options = PerformanceOptions()
    assert apply_request_settings(pipe, options, 512, 512, count=4) == ["VAE slicing"]
    assert pipe.vae.use_slicing
    apply_request_settings(pipe, options, 512, 512, count=1)
    assert not pipe.vae.use_slicing


def test_vae_tiling_and_slicing_forced(pipe) -> None:
    on = PerformanceOptions(vae_tiling="on", vae_slicing="on")
    apply_request_settings(pipe, on, 64, 64)
    assert pipe.vae.use_tiling and pipe.vae.use_slicing
    off = PerformanceOptions(vae_tiling="off", vae_slicing="off")
    apply_request_settings(pipe, off, 2048, 2048, count=8)
    assert not pipe.vae.use_tiling and not pipe.vae.use_slicing


@pytest.mark.parametrize("offload", ["model", "sequential"])
def test_offload_refuses_clearly_on_cpu_and_changes_nothing(pipe, offload: str) -> None:
    with pytest.raises(ValidationError) as info:
        apply_performance(pipe, PerformanceOptions(offload=offload), "cpu")
    message = str(info.value)
    assert "needs a CUDA GPU" in message and "--offload none" in message
    assert info.value.exit_code == 2
    assert not getattr(pipe, "_all_hooks", None)
    assert _generate(pipe).shape == (1, 64, 64, 3)


def test_offload_auto_is_none_on_cpu(pipe) -> None:
    assert apply_performance(pipe, PerformanceOptions(offload="auto"), "cpu") == []


def test_compile_marks_the_first_generation_as_compiling(pipe, monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(pipe.unet, "compile", lambda **kw: calls.append(kw))
    notes = apply_performance(pipe, PerformanceOptions(compile=True), "cpu")
    assert calls == [{"mode": "max-autotune-no-cudagraphs", "fullgraph": False}]
    assert any("first generation compiles" in n for n in notes)
    assert compile_pending(pipe)
    mark_compiled(pipe)
    assert not compile_pending(pipe)


def test_memory_steps_go_from_tiling_to_offload_to_smaller_size() -> None:
    hint = next_memory_step(PerformanceOptions(), 768, 768, 1)
    assert hint == "turn on VAE tiling (--vae-tiling on)"
    hint = next_memory_step(PerformanceOptions(vae_tiling="on"), 768, 768, 1)
    assert "--offload model" in hint
    hint = next_memory_step(PerformanceOptions(vae_tiling="on", offload="model"), 768, 768, 1)
    assert "--quantize int8" in hint
    quantized = PerformanceOptions(vae_tiling="on", offload="model", quantize="int8")
    assert "--offload sequential" in next_memory_step(quantized, 768, 768, 1)
    last = PerformanceOptions(vae_tiling="on", offload="sequential", quantize="int8")
    hint = next_memory_step(last, 1024, 768, 2)
    assert "lower the size" in hint and "--size 704x512" in hint and "fewer images" in hint
    # Auto tiling is already on for very large images: skip to offload.
    assert "--offload model" in next_memory_step(PerformanceOptions(), 2048, 2048, 1)


def test_bad_values_are_refused_with_the_setting_name() -> None:
    with pytest.raises(ValidationError, match="vae_tiling"):
        PerformanceOptions(vae_tiling="sometimes")
    with pytest.raises(ValidationError, match="preview_fps"):
        PerformanceOptions(preview_fps=-1)
    with pytest.raises(ValidationError, match="compile_mode"):
        PerformanceOptions(compile_mode="fast")


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_performance_arguments(parser)
    return parser.parse_args(argv)


def test_defaults_without_config_or_flags() -> None:
    options = performance_from_settings(load_settings(), _parse([]), env={})
    assert options == PerformanceOptions()


def test_config_then_env_then_flags(isolated_dirs) -> None:
    config = isolated_dirs / "config"
    config.mkdir()
    (config / "config.toml").write_text(
        "[performance]\nvae_tiling = true\nchannels_last = 'off'\n"
        "compile = 'reduce-overhead'\npreview = 'taesd'\npreview_fps = 2\n"
    )
    settings = load_settings()
    options = performance_from_settings(settings, _parse([]), env={})
    assert options.vae_tiling == "on" and options.channels_last == "off"
    assert options.compile and options.compile_mode == "reduce-overhead"
    assert options.preview == "taesd" and options.preview_fps == 2.0

    env = {"SDTUI_CHANNELS_LAST": "on", "SDTUI_PREVIEW": "off"}
    options = performance_from_settings(settings, _parse([]), env=env)
    assert options.channels_last == "on" and options.preview == "off"

    args = _parse(["--channels-last", "auto", "--compile", "off", "--vae-tiling", "off"])
    options = performance_from_settings(settings, args, env=env)
    assert options.channels_last == "auto" and not options.compile
    assert options.vae_tiling == "off" and options.preview == "off"

    options = performance_from_settings(settings, _parse(["--compile"]), env={})
    assert options.compile and options.compile_mode == "max-autotune-no-cudagraphs"


def test_typo_in_config_is_named(isolated_dirs) -> None:
    config = isolated_dirs / "config"
    config.mkdir()
    (config / "config.toml").write_text("[performance]\nvae_tilling = true\n")
    with pytest.raises(ValidationError, match="vae_tilling"):
        performance_from_settings(load_settings(), None, env={})


def test_bad_flag_value_is_refused_by_the_parser(capsys) -> None:
    with pytest.raises(SystemExit):
        _parse(["--offload", "gpu"])
    assert "invalid choice" in capsys.readouterr().err


# -- through the engine -----------------------------------------------------


def _engine(demo_model_dir, **options):
    from sdtui.engine import Engine

    engine = Engine(device="cpu", performance=PerformanceOptions(**options))
    engine.load(str(demo_model_dir))
    return engine


def _request(demo_model_dir, **fields):
    from sdtui.params import GenerationRequest

    values = dict(prompt="a cat", model=str(demo_model_dir), steps=3, width=64, height=64, seed=7)
    return GenerationRequest(**{**values, **fields})


def test_engine_shows_previews_from_the_preview_setting(demo_model_dir, monkeypatch) -> None:
    from sdtui.engine import preview

    made = []
    ticks = iter(range(1000))  # one second between steps, whatever the machine's speed

    def previewer(family, mode, max_fps):
        made.append((family, mode, max_fps))
        return preview.Previewer(family, mode, max_fps, clock=lambda: next(ticks))

    monkeypatch.setattr(preview, "make_previewer", previewer)
    engine = _engine(demo_model_dir, preview="latent", preview_fps=2)
    steps = []
    engine.generate(_request(demo_model_dir), on_progress=steps.append)
    assert [s.preview.size for s in steps] == [(16, 16)] * 3  # 8x8 latents, doubled
    assert made == [("sd1", "latent", 2.0)]
    off = _engine(demo_model_dir, preview="off")
    steps.clear()
    off.generate(_request(demo_model_dir), on_progress=steps.append)
    assert len(steps) == 3 and all(s.preview is None for s in steps)


def test_engine_sets_vae_tiling_and_slicing_per_request(demo_model_dir) -> None:
    engine = _engine(demo_model_dir, vae_tiling="on")
    engine.generate(_request(demo_model_dir, count=2))
    assert engine.pipeline.vae.use_tiling and engine.pipeline.vae.use_slicing
    engine.performance = PerformanceOptions()
    engine.generate(_request(demo_model_dir))
    assert not engine.pipeline.vae.use_tiling and not engine.pipeline.vae.use_slicing


def test_engine_reports_compiling_on_the_first_generation_only(demo_model_dir, monkeypatch):
    from diffusers import UNet2DConditionModel

    monkeypatch.setattr(UNet2DConditionModel, "compile", lambda self, **kw: None)
    engine = _engine(demo_model_dir, compile=True)
    assert any("torch.compile" in n for n in engine.loaded.notes)
    first, second = [], []
    engine.generate(_request(demo_model_dir), on_status=first.append)
    engine.generate(_request(demo_model_dir), on_status=second.append)
    assert any(s.startswith("compiling the UNet") for s in first)
    assert not any("compiling" in s for s in second)


def test_out_of_memory_suggests_the_next_setting(demo_model_dir, monkeypatch) -> None:
    from sdtui.errors import OutOfMemoryError

    engine = _engine(demo_model_dir)

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(type(engine.pipeline), "__call__", out_of_memory)
    with pytest.raises(OutOfMemoryError) as info:
        engine.generate(_request(demo_model_dir))
    assert info.value.hint == "turn on VAE tiling (--vae-tiling on)"
    engine.performance = PerformanceOptions(vae_tiling="on")
    with pytest.raises(OutOfMemoryError) as info:
        engine.generate(_request(demo_model_dir))
    assert info.value.hint == "turn on model CPU offload (--offload model)"
