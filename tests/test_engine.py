"""The engine on the tiny demo pipeline: reproducible seeds, progress, cancel, schedulers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sdtui.engine import Engine
from sdtui.engine.device import choose_device, choose_dtype
from sdtui.errors import GenerationCancelled, OutOfMemoryError, ValidationError
from sdtui.params import GenerationRequest
from sdtui.results import CancelToken, StepProgress

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def engine(demo_model_dir: Path) -> Engine:
    engine = Engine(device="cpu")
    engine.load(str(demo_model_dir))
    return engine


@pytest.fixture
def request_for(demo_model_dir: Path):
    def make(**changes) -> GenerationRequest:
        fields = dict(
            prompt="oil painting of a cat sitting on a rainbow",
            model=str(demo_model_dir),
            steps=4,
            width=64,
            height=64,
            seed=42,
            scheduler="Euler",
        )
        fields.update(changes)
        return GenerationRequest(**fields)

    return make


def pixels(result, index: int = 0) -> np.ndarray:
    return np.asarray(result.images[index].image)


def test_same_seed_same_pixels_other_seed_other_pixels(engine, request_for):
    first = engine.generate(request_for(seed=7))
    again = engine.generate(request_for(seed=7))
    other = engine.generate(request_for(seed=8))
    assert pixels(first).shape == (64, 64, 3)
    assert np.array_equal(pixels(first), pixels(again))
    assert not np.array_equal(pixels(first), pixels(other))
    assert first.seeds == [7] and other.seeds == [8]


def test_each_image_of_a_batch_reproduces_alone(engine, request_for):
    batch = engine.generate(request_for(seed=100, count=3))
    assert batch.seeds == [100, 101, 102]
    assert [img.index for img in batch.images] == [0, 1, 2]
    for i, generated in enumerate(batch.images):
        alone = engine.generate(generated.image_request())
        assert alone.seeds == [100 + i]
        assert np.array_equal(pixels(alone), pixels(batch, i))


def test_random_seed_is_recorded_and_reproduces(engine, request_for):
    result = engine.generate(request_for(seed=None, count=2))
    base = result.info["base_seed"]
    assert result.seeds == [base, base + 1]
    again = engine.generate(result.images[1].image_request())
    assert np.array_equal(pixels(again), pixels(result, 1))


def test_progress_every_step_and_images_as_they_finish(engine, request_for):
    events: list[StepProgress] = []
    finished = []
    engine.generate(
        request_for(steps=5, count=2),
        on_progress=events.append,
        on_image=lambda g: finished.append((g.index, len(events))),
    )
    assert [(e.image_index, e.step) for e in events] == [
        (i, s) for i in range(2) for s in range(1, 6)
    ]
    assert all(e.total == 5 and e.image_count == 2 for e in events)
    assert events[-1].fraction == 1.0
    elapsed = [e.elapsed for e in events]
    assert elapsed == sorted(elapsed)
    # Image 0 was handed over before image 1's first step.
    assert finished == [(0, 5), (1, 10)]


def test_cancel_stops_within_a_step_without_decoding(engine, request_for, monkeypatch):
    decodes = []
    vae = engine.pipeline.vae
    real_decode = vae.decode
    monkeypatch.setattr(vae, "decode", lambda *a, **k: decodes.append(1) or real_decode(*a, **k))
    token = CancelToken()
    steps_seen: list[int] = []
    images = []

    def on_progress(progress: StepProgress) -> None:
        steps_seen.append(progress.step)
        if progress.step == 2:
            token.cancel()

    with pytest.raises(GenerationCancelled) as info:
        engine.generate(
            request_for(steps=8, count=2),
            on_progress=on_progress,
            cancel=token,
            on_image=images.append,
        )
    assert info.value.exit_code == 130
    assert steps_seen == [1, 2]
    assert images == [] and decodes == []
    # The engine is usable again straight away.
    assert len(engine.generate(request_for()).images) == 1


def test_cancel_before_start_runs_nothing(engine, request_for):
    token = CancelToken()
    token.cancel()
    events = []
    with pytest.raises(GenerationCancelled):
        engine.generate(request_for(), on_progress=events.append, cancel=token)
    assert events == []


def test_scheduler_switch_keeps_the_pipeline(engine, request_for):
    pipe = engine.pipeline
    loads = engine.load_count
    euler = engine.generate(request_for(scheduler="Euler"))
    assert type(pipe.scheduler).__name__ == "EulerDiscreteScheduler"
    karras = engine.generate(request_for(scheduler="DPM++ 2M Karras"))
    assert type(pipe.scheduler).__name__ == "DPMSolverMultistepScheduler"
    assert pipe.scheduler.config.use_karras_sigmas is True
    ddim = engine.generate(request_for(scheduler="DDIM"))
    euler_again = engine.generate(request_for(scheduler="Euler"))
    assert engine.pipeline is pipe and engine.load_count == loads
    assert karras.load_seconds == 0.0
    assert np.array_equal(pixels(euler), pixels(euler_again))
    assert not np.array_equal(pixels(euler), pixels(ddim))
    assert not np.array_equal(pixels(euler), pixels(karras))


def test_second_order_scheduler_reports_its_real_step_count(engine, request_for):
    events: list[StepProgress] = []
    engine.generate(request_for(scheduler="Heun", steps=3), on_progress=events.append)
    assert events[-1].step == events[-1].total == len(events)


def test_same_model_loads_nothing_the_second_time(engine, demo_model_dir):
    pipe = engine.pipeline
    loads = engine.load_count
    again = engine.load(str(demo_model_dir))
    by_name = engine.load("demo")  # the short name points at the same folder
    assert again.load_seconds == 0.0 and by_name.load_seconds == 0.0
    assert engine.pipeline is pipe and engine.load_count == loads
    assert by_name.family == "sd1" and by_name.native_size == (64, 64)


def test_unknown_scheduler_is_refused(engine):
    with pytest.raises(ValidationError) as info:
        engine.use_scheduler("Warp drive")
    assert info.value.field == "scheduler"


def test_out_of_memory_is_explained(engine, request_for, monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(type(engine.pipeline), "__call__", out_of_memory)
    with pytest.raises(OutOfMemoryError) as info:
        engine.generate(request_for(width=1024, height=1024))
    assert "1024x1024" in info.value.message
    assert info.value.hint


def test_weighted_prompt_embeddings_are_used(engine, request_for, monkeypatch):
    import sdtui.prompts.weighting as weighting

    pipe = engine.pipeline
    calls = []

    def embeds(p, prompt, negative):
        calls.append(prompt)
        positive, negative_embeds = p.encode_prompt(prompt, "cpu", 1, True, negative or None)
        return {"prompt_embeds": positive, "negative_prompt_embeds": negative_embeds}

    plain = engine.generate(request_for(count=2))
    monkeypatch.setattr(weighting, "encode_prompt_kwargs", embeds)
    weighted = engine.generate(request_for(count=2))
    assert len(calls) == 1  # once per request: every image shares the prompt
    assert engine.pipeline is pipe
    # The same text encoded ahead gives the very same pixels.
    assert np.array_equal(pixels(plain, 1), pixels(weighted, 1))


def test_speed_options_and_previews_are_wired(demo_model_dir, request_for, monkeypatch):
    from PIL import Image

    import sdtui.engine.performance as performance
    import sdtui.engine.preview as preview

    applied = []
    monkeypatch.setattr(
        performance,
        "apply_performance",
        lambda pipe, options, device: applied.append((options, device)) or ["channels-last"],
    )
    frame = Image.new("RGB", (8, 8))
    seen = []

    def make_previewer(family, mode="latent", max_fps=4.0):
        seen.append((family, mode))
        return lambda latents, step, total: frame if latents is not None else None

    monkeypatch.setattr(preview, "make_previewer", make_previewer)
    options = performance.PerformanceOptions(vae_tiling="on")
    engine = Engine(device="cpu", performance=options, preview="latent")
    loaded = engine.load(str(demo_model_dir))
    assert applied == [(options, "cpu")] and loaded.notes == ("channels-last",)
    events: list[StepProgress] = []
    engine.generate(request_for(steps=2), on_progress=events.append)
    assert seen == [("sd1", "latent")]
    assert [e.preview for e in events] == [frame, frame]


def test_device_and_dtype_choice():
    assert choose_dtype("cpu") == "fp32"
    assert choose_dtype("cuda") == "fp16"
    assert choose_dtype("mps") == "fp16"
    assert choose_dtype("cuda", "bf16") == "bf16"
    assert choose_device("cpu") == "cpu"
    if not torch.cuda.is_available():
        assert choose_device("auto") in ("cpu", "mps")
        with pytest.raises(ValidationError) as info:
            choose_device("cuda")
        assert "cuda" in str(info.value) and "--device cpu" in str(info.value)
    with pytest.raises(ValidationError):
        choose_dtype("cpu", "fp8")


def test_one_job_at_a_time(engine, request_for):
    import threading

    events: list[tuple[str, int]] = []
    first_started = threading.Event()

    def run(name: str) -> None:
        def on_progress(progress: StepProgress) -> None:
            events.append((name, progress.step))
            first_started.set()

        engine.generate(request_for(steps=6), on_progress=on_progress)

    first = threading.Thread(target=run, args=("first",))
    first.start()
    first_started.wait(timeout=60)
    second = threading.Thread(target=run, args=("second",))
    second.start()
    first.join(timeout=120)
    second.join(timeout=120)
    # The second request waited for the whole first one: no interleaved steps.
    assert events == [("first", s) for s in range(1, 7)] + [("second", s) for s in range(1, 7)]


def test_unexpected_failures_are_one_line_errors(engine, request_for, monkeypatch):
    from sdtui.errors import SdtuiError

    def broken(*args, **kwargs):
        raise ValueError("`height` and `width` have to be divisible by 8\nmore detail")

    monkeypatch.setattr(type(engine.pipeline), "__call__", broken)
    with pytest.raises(SdtuiError) as info:
        engine.generate(request_for())
    assert str(info.value) == "generation failed: `height` and `width` have to be divisible by 8"
    assert info.value.exit_code == 1


def test_images_blacked_out_by_a_safety_checker_are_reported(engine, request_for, monkeypatch):
    from types import SimpleNamespace

    from PIL import Image

    real_call = type(engine.pipeline).__call__

    def flag_odd_seeds(pipe, *args, **kwargs):
        output = real_call(pipe, *args, **kwargs)
        seed = kwargs["generator"].initial_seed()
        black = Image.new("RGB", output.images[0].size)
        if seed % 2:
            return SimpleNamespace(images=[black], nsfw_content_detected=[True])
        return SimpleNamespace(images=output.images, nsfw_content_detected=[False])

    monkeypatch.setattr(type(engine.pipeline), "__call__", flag_odd_seeds)
    result = engine.generate(request_for(seed=10, count=3))
    assert result.info["blacked_out_seeds"] == [11]
