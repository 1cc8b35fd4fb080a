"""The engine in its own process: same pictures, same errors, and it never outlives the app."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import gallery_pngs, idle, wait_until
from PIL import Image

from sdtui.config import load_settings
from sdtui.engine import Engine
from sdtui.engine.performance import PerformanceOptions
from sdtui.errors import (
    GenerationCancelled,
    ModelNotFoundError,
    OutOfMemoryError,
    SdtuiError,
    ValidationError,
)
from sdtui.params import GenerationRequest
from sdtui.results import CancelToken
from sdtui.service import frames
from sdtui.service.process import EngineProcessError, ProcessEngine

# Every step gets its preview: previews are throttled by time, and tests must not be.
FAST_PREVIEWS = PerformanceOptions(preview="latent", preview_fps=60)


def request(**changes: Any) -> GenerationRequest:
    values: dict[str, Any] = dict(
        prompt="a lighthouse", model="demo", width=64, height=64, steps=3, seed=42, count=2
    )
    values.update(changes)
    return GenerationRequest(**values)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (dead, not yet reaped by its parent) counts as gone.
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\nState:\tZ" in status.read_text())


@pytest.fixture(scope="module")
def engine(demo_model_dir: Path, session_cache_dir: Path, tmp_path_factory: Any) -> Any:
    """One engine process for the module: each start imports torch (seconds). It takes
    its folders from the environment when it starts, before any test's own."""
    home = tmp_path_factory.mktemp("engine-process")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SDTUI_CACHE_DIR", str(session_cache_dir))
        for name in ("CONFIG_DIR", "LOG_DIR", "GALLERY"):
            patch.setenv(f"SDTUI_{name}", str(home / name.lower()))
        engine = ProcessEngine(device="cpu", performance=FAST_PREVIEWS)
        engine.load("demo")  # started here, while the variables are set
    yield engine
    engine.close()


def test_same_seed_gives_the_same_pixels_as_the_engine_in_this_process(engine: Any) -> None:
    loaded = engine.load("demo")
    assert (loaded.family, loaded.device, loaded.native_size) == ("sd1", "cpu", (64, 64))
    steps: list[tuple[int, int]] = []
    previews: list[Any] = []
    shown: list[int] = []

    def on_progress(progress: Any) -> None:
        steps.append((progress.image_index, progress.step))
        if progress.preview is not None:
            previews.append(progress.preview)

    result = engine.generate(
        request(), on_progress=on_progress, on_image=lambda g: shown.append(g.seed)
    )
    here = Engine(device="cpu", performance=FAST_PREVIEWS)
    local = here.generate(request())

    # The model's defaults (sizes, presets, schedulers) arrive whole, as their own type.
    assert here.loaded is not None and loaded.defaults == here.loaded.defaults
    assert result.seeds == local.seeds == [42, 43] == shown
    for ours, theirs in zip(result.images, local.images, strict=True):
        assert ours.image.size == (64, 64)
        assert np.array_equal(np.asarray(ours.image), np.asarray(theirs.image))
    # Steps in order; the last of each image always arrives (others may be merged).
    assert steps == sorted(steps) and steps[0] == (0, 1)
    assert (0, 3) in steps and steps[-1] == (1, 3)
    assert previews and previews[0].mode == "RGB"
    assert result.model_id == local.model_id and result.info["base_seed"] == 42


def test_cancel_stops_within_the_job_and_returns_no_image(engine: Any) -> None:
    cancel = CancelToken()
    steps: list[int] = []
    images: list[Any] = []

    def on_progress(progress: Any) -> None:
        steps.append(progress.step)
        cancel.cancel()

    with pytest.raises(GenerationCancelled):
        engine.generate(
            request(steps=150, count=1), on_progress=on_progress, cancel=cancel,
            on_image=images.append,
        )
    assert images == [] and 1 <= max(steps) < 150
    # The process goes on with the next job.
    assert engine.generate(request(count=1, steps=2)).seeds == [42]


def test_errors_keep_their_type_message_and_hint(engine: Any) -> None:
    with pytest.raises(ModelNotFoundError) as ours:
        engine.load("no-such-model-anywhere")
    with pytest.raises(ModelNotFoundError) as theirs:
        Engine(device="cpu").load("no-such-model-anywhere")
    assert (ours.value.message, ours.value.hint) == (theirs.value.message, theirs.value.hint)
    with pytest.raises(ModelNotFoundError):
        engine.generate(request(model="no-such-model-anywhere"))
    assert engine.generate(request(count=1, steps=1)).seeds == [42]  # and it goes on


def test_an_engine_that_cannot_be_set_up_says_why_at_each_call() -> None:
    with pytest.raises(ValidationError) as theirs:
        Engine(device="tpu")
    engine = ProcessEngine(device="tpu")
    try:
        for _ in range(2):
            with pytest.raises(ValidationError) as ours:
                engine.load("demo")
            assert (ours.value.field, str(ours.value)) == ("device", str(theirs.value))
    finally:
        engine.close()


@pytest.mark.parametrize(
    "error",
    [
        ValidationError("scheduler", "unknown scheduler 'x'"),
        OutOfMemoryError("cuda ran out of memory making a 2048x2048 image", "lower the size"),
        GenerationCancelled(),
        KeyError("latents"),
    ],
)
def test_error_frames_rebuild_the_same_exception(error: Exception) -> None:
    rebuilt = frames.error_from_frame(frames.decode(frames.encode(frames.error_frame(3, error))))
    if isinstance(error, SdtuiError):
        assert type(rebuilt) is type(error)
        assert (rebuilt.message, rebuilt.hint, str(rebuilt)) == (
            error.message, error.hint, str(error)
        )
        assert getattr(rebuilt, "field", None) == getattr(error, "field", None)
    else:  # anything else is explained in one line, with its type
        assert type(rebuilt) is SdtuiError
        assert rebuilt.message == "unexpected error in the engine: KeyError: 'latents'"


def test_a_killed_engine_fails_only_its_job_and_the_next_starts_a_new_one(engine: Any) -> None:
    engine.load("demo")
    first = engine.pid
    starts = engine.starts

    def kill_at_first_step(progress: Any) -> None:
        if progress.step == 1 and engine.pid is not None:
            os.kill(engine.pid, signal.SIGKILL)

    with pytest.raises(EngineProcessError) as failed:
        engine.generate(request(steps=150, count=1), on_progress=kill_at_first_step)
    assert failed.value.message == "the engine process was killed (SIGKILL; out of memory?)"
    assert "next job starts a new engine" in failed.value.hint
    assert "\n" not in str(failed.value)
    assert not alive(first)

    result = engine.generate(request(count=1, steps=2))
    assert result.seeds == [42] and result.images[0].image.size == (64, 64)
    assert engine.starts == starts + 1 and engine.pid not in (None, first)


PARENT = textwrap.dedent(
    """
    import sys, time
    from sdtui.errors import ModelNotFoundError
    from sdtui.service.process import ProcessEngine

    engine = ProcessEngine(device="cpu")
    try:  # a call answered: the engine process is up (a model would only cost time)
        engine.load("no-such-model-anywhere")
    except ModelNotFoundError:
        pass
    print(engine.pid, flush=True)
    time.sleep(120)
    """
)


def test_the_engine_process_ends_when_its_parent_is_killed(demo_model_dir: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(child)
    finally:
        parent.kill()
        parent.wait(10)


async def test_the_app_generates_through_the_engine_process_and_closing_ends_it(
    demo_model_dir: Path, gallery_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sdtui.tui.app import SdtuiApp

    # Started from a folder holding another sdtui (a checkout), it still runs this one.
    (tmp_path / "sdtui").mkdir()
    (tmp_path / "sdtui" / "__init__.py").write_text("raise ImportError('the wrong sdtui')\n")
    monkeypatch.chdir(tmp_path)
    app = SdtuiApp(load_settings({"model": "demo", "in_process": False}))
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await idle(pilot, app)
            engine = app.runner.engine.ready
            assert isinstance(engine, ProcessEngine)
            pid = engine.pid
            assert pid is not None and pid != os.getpid() and alive(pid)
            app.prompt_editor.load_text("a lighthouse at dusk")
            app.params.set_value("steps", "2")
            app.prompt_editor.focus()
            await pilot.press("ctrl+g")
            await wait_until(pilot, lambda: len(app.history.entries) == 1)
            await idle(pilot, app)
            files = gallery_pngs(gallery_dir)
            assert len(files) == 1 and app.history.entries[0].path == files[0]
            parameters = Image.open(files[0]).text["parameters"]
            assert parameters.startswith("a lighthouse at dusk\n") and "Steps: 2" in parameters
            assert app.last_error == ""
    finally:
        app.runner.engine.ready.close()
    assert not alive(pid)
    with pytest.raises(EngineProcessError):
        engine.load("demo")


STUCK_PARENT = textwrap.dedent(
    """
    import signal, time
    from sdtui.errors import ModelNotFoundError
    from sdtui.service.process import ProcessEngine

    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # an app that fails to quit on hang-up
    engine = ProcessEngine(device="cpu")
    try:
        engine.load("no-such-model-anywhere")
    except ModelNotFoundError:
        pass
    print("engine", engine.pid, flush=True)
    time.sleep(120)
    """
)


def test_a_terminal_hang_up_ends_the_engine_even_when_the_app_is_stuck(
    demo_model_dir: Path,
) -> None:
    import pty

    parent, master = pty.fork()
    if parent == 0:  # the app's side, on the terminal's slave end
        os.execv(sys.executable, [sys.executable, "-c", STUCK_PARENT])
    try:
        seen = b""
        deadline = time.monotonic() + 120
        while b"\n" not in seen.partition(b"engine ")[2] and time.monotonic() < deadline:
            seen += os.read(master, 1024)
        child = int(seen.partition(b"engine ")[2].split()[0])
        assert alive(child)
        os.close(master)  # the terminal goes away, as when an SSH link drops
        deadline = time.monotonic() + 10
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(child)
        assert alive(parent)  # the stuck app itself is not this module's business
    finally:
        os.kill(parent, signal.SIGKILL)
        os.waitpid(parent, 0)
