"""Faults met inside the terminal app: each one is caused for real, and the app goes on.

A model that will not load, running out of memory mid-step, a failing worker,
save or preview, a full disk or read-only gallery, a hang-up, and a damaged
gallery at start.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import gallery_pngs, idle, wait_until
from PIL import Image

from sdtui.config import load_settings
from sdtui.logging_setup import log_path, stop_logging
from sdtui.tui.app import SdtuiApp
from sdtui.tui.preview import PreviewPane

torch.set_num_threads(1)
SIZE = (120, 40)


@pytest.fixture(autouse=True)
def log_file(isolated_dirs: Path) -> Any:
    # The CLI starts the log; the app's tests start it the same way.
    from sdtui.logging_setup import setup_logging

    path = setup_logging()
    yield path
    stop_logging()


def make_app(model: str = "demo", **overrides: Any) -> SdtuiApp:
    settings = load_settings({"model": model, **overrides})
    return SdtuiApp(settings)


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*.tmp")] if folder.exists() else []


async def generate(pilot: Any, app: SdtuiApp, prompt: str, model: str = "demo") -> None:
    """Type a prompt, set a tiny request and press the generate key; waits for the queue."""
    app.prompt_editor.load_text(prompt)
    app.params.set_value("model", model)
    app.params.set_value("steps", "2")
    app.prompt_editor.focus()
    await pilot.pause()
    await pilot.press("ctrl+g")
    await pilot.pause()
    await idle(pilot, app)


def read_log() -> str:
    path = log_path()
    return path.read_text(encoding="utf-8") if path.exists() else ""


# -- models that do not load ---------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "words"),
    [
        ("no such model!", "not a short model name"),
        ("someone/never-downloaded", "HF_HUB_OFFLINE"),
        ("/nowhere/model.safetensors", "no such file"),
    ],
)
async def test_a_model_that_cannot_load_is_explained_and_another_can_be_picked(
    model: str, words: str, gallery_dir: Path, demo_model_dir: Path
) -> None:
    app = make_app(model)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: bool(app.last_error))
        await idle(pilot, app)
        assert words in app.last_error
        assert "failed" in str(app.status.query_one("#status-line").render())
        await generate(pilot, app, "a lighthouse", model="demo")
        assert len(gallery_pngs(gallery_dir)) == 1
        assert app.runner.loaded_model == "demo"


def _hub_error(kind: type, status: int) -> Exception:
    try:
        import httpx2 as httpx  # the HTTP client huggingface_hub is built on
    except ImportError:  # pragma: no cover
        import httpx
    url = "https://huggingface.co/api/models/owner/name"
    return kind("hub said no", response=httpx.Response(status, request=httpx.Request("GET", url)))


@pytest.mark.parametrize(
    ("error", "words"),
    [("gated", "is gated"), ("missing", "no model owner/gated-model on the Hugging Face Hub")],
)
async def test_gated_or_missing_hub_repo_in_the_app(
    error: str, words: str, gallery_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from diffusers import AutoPipelineForText2Image
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    raised = _hub_error(GatedRepoError if error == "gated" else RepositoryNotFoundError, 403)

    real = AutoPipelineForText2Image.from_pretrained

    def from_pretrained(location: str, **kwargs: Any) -> Any:
        if location != "owner/gated-model":
            return real(location, **kwargs)
        # diffusers wraps what the hub raised in an OSError; the cause is kept.
        raise OSError("cannot load the repository") from raised

    monkeypatch.setattr(AutoPipelineForText2Image, "from_pretrained", from_pretrained)
    app = make_app("owner/gated-model")
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: bool(app.last_error))
        await idle(pilot, app)
        assert words in app.last_error
        await generate(pilot, app, "after the refusal", model="demo")
        assert len(gallery_pngs(gallery_dir)) == 1


async def test_truncated_checkpoint_in_the_app(
    gallery_dir: Path, demo_model_dir: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.safetensors"
    weights = demo_model_dir / "unet" / "diffusion_pytorch_model.safetensors"
    broken.write_bytes(weights.read_bytes()[:4096])
    app = make_app(str(broken))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: bool(app.last_error))
        await idle(pilot, app)
        assert "damaged" in app.last_error
        await generate(pilot, app, "after the broken file", model="demo")
        assert len(gallery_pngs(gallery_dir)) == 1


# -- running out of memory mid-step --------------------------------------------------


def fail_unet_on_call(app: SdtuiApp, call: int, error: BaseException) -> dict[str, int]:
    """Make the loaded UNet raise `error` on its `call`-th forward, once."""
    unet = app.runner.engine.ready.pipeline.unet
    real = unet.forward
    calls = {"n": 0}

    def forward(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == call:
            raise error
        return real(*args, **kwargs)

    unet.forward = forward
    return calls


async def test_out_of_memory_mid_step_is_explained_and_the_next_request_works(
    gallery_dir: Path,
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        fail_unet_on_call(app, 2, torch.OutOfMemoryError("CUDA out of memory. Tried to allocate"))
        await generate(pilot, app, "too big for the card")
        assert "ran out of memory" in app.last_error
        # The user is told what to lower or turn on.
        assert any(w in app.last_error for w in ("lower", "tiling", "offload", "slicing"))
        assert gallery_pngs(gallery_dir) == []
        await generate(pilot, app, "smaller this time")
        assert len(gallery_pngs(gallery_dir)) == 1


# -- failures in the worker, in saving, in the preview --------------------------------


async def test_a_failing_worker_is_shown_logged_and_the_app_goes_on(gallery_dir: Path) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        fail_unet_on_call(app, 1, ZeroDivisionError("the kernel divided by zero"))
        await generate(pilot, app, "first try")
        assert "the kernel divided by zero" in app.last_error
        assert "ZeroDivisionError" in read_log()  # with its traceback, for a bug report
        assert "Traceback" in read_log()
        await generate(pilot, app, "second try")
        assert len(gallery_pngs(gallery_dir)) == 1


async def test_a_failing_save_keeps_the_image_for_a_retry(
    gallery_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sdtui.gallery import Gallery

    real_save = Gallery.save
    broken = {"on": True}

    def save(self: Any, generated: Any, result: Any) -> Any:
        if broken["on"]:
            raise KeyError("index column vanished")  # not a failure the gallery expects
        return real_save(self, generated, result)

    monkeypatch.setattr(Gallery, "save", save)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        await generate(pilot, app, "kept in memory")
        assert "index column vanished" in app.last_error and "alt+s" in app.last_error
        assert "KeyError" in read_log()
        assert len(app.runner.unsaved) == 1
        kept = app.runner.unsaved[0][0].image
        broken["on"] = False
        await pilot.press("alt+s")
        await wait_until(pilot, lambda: len(gallery_pngs(gallery_dir)) == 1)
        await wait_until(pilot, lambda: len(app.history.entries) == 1)
        saved = Image.open(gallery_pngs(gallery_dir)[0])
        assert saved.tobytes() == kept.tobytes()
        assert saved.text["parameters"].startswith("kept in memory")
        assert app.runner.unsaved == []


async def test_a_failing_preview_is_shown_and_the_image_still_saved(
    gallery_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def show(self: Any, image: Any, caption: str) -> None:
        raise ValueError("renderer cannot draw this")

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        monkeypatch.setattr(PreviewPane, "show", show)
        await generate(pilot, app, "unseen but saved")
        assert "cannot show the preview" in app.last_error
        assert "renderer cannot draw this" in read_log()
        assert len(gallery_pngs(gallery_dir)) == 1
        assert app.is_running


# -- disk full, read-only gallery ---------------------------------------------------


@pytest.mark.parametrize("cause", ["disk full", "read-only"])
async def test_disk_full_or_read_only_gallery_keeps_the_image_and_saves_it_later(
    cause: str, gallery_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tests run as root, where chmod does not stop writes: the failing calls are simulated.
    trouble = {"on": False}
    real_fsync, real_open = os.fsync, os.open
    inside = str(gallery_dir)

    def fsync(fd: int) -> None:
        if trouble["on"] and cause == "disk full":
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    def open_(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if (
            trouble["on"]
            and cause == "read-only"
            and str(path).startswith(inside)
            and flags & os.O_CREAT
        ):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "open", open_)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        trouble["on"] = True
        await generate(pilot, app, "nowhere to put it")
        expected = "No space left" if cause == "disk full" else "Permission denied"
        assert expected in app.last_error and "kept in memory" in app.last_error
        assert gallery_pngs(gallery_dir) == [] and leftovers(gallery_dir) == []
        # Trying again before the cause is fixed changes nothing and loses nothing.
        await pilot.press("alt+s")
        await wait_until(pilot, lambda: "kept in memory" in app.last_error)
        await pilot.pause(0.2)
        assert len(app.runner.unsaved) == 1 and gallery_pngs(gallery_dir) == []
        trouble["on"] = False
        app.last_error = ""
        await pilot.press("alt+s")
        await wait_until(pilot, lambda: len(app.history.entries) == 1)
        assert len(gallery_pngs(gallery_dir)) == 1 and leftovers(gallery_dir) == []
        assert app.runner.unsaved == []


async def test_retry_with_nothing_kept_says_so(gallery_dir: Path) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        await pilot.press("alt+s")
        await pilot.pause()
        assert gallery_pngs(gallery_dir) == []
        assert app.last_error == ""


# -- the terminal goes away ---------------------------------------------------------


async def test_hangup_cancels_the_running_image_and_quits_without_a_partial_file(
    gallery_dir: Path,
) -> None:
    app = make_app()
    held = threading.Event()
    release = threading.Event()
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        engine = app.runner.engine.ready
        real_generate = engine.generate

        def slow_generate(request: Any, on_progress: Any = None, **kwargs: Any) -> Any:
            def progress(p: Any) -> None:
                on_progress(p)
                held.set()
                release.wait(30)

            return real_generate(request, on_progress=progress, **kwargs)

        engine.generate = slow_generate
        app.prompt_editor.load_text("interrupted by a hang-up")
        app.params.set_value("steps", "5")
        await pilot.press("ctrl+g")
        await pilot.press("ctrl+g")  # a second one waits in the queue
        await wait_until(pilot, held.is_set)
        app.hangup()
        assert app.jobs.pending == []
        release.set()
        await wait_until(pilot, lambda: not app.is_running)
    assert gallery_pngs(gallery_dir) == [] and leftovers(gallery_dir) == []


# -- a damaged gallery at start -----------------------------------------------------


async def test_damaged_index_and_corrupt_png_at_start(
    gallery_dir: Path, demo_model_dir: Path
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        await generate(pilot, app, "a survivor")
    good = gallery_pngs(gallery_dir)
    assert len(good) == 1
    index = gallery_dir / ".sdtui" / "index.sqlite3"
    index.write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        Path(f"{index}{suffix}").unlink(missing_ok=True)
    (good[0].parent / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(300))
    (good[0].parent / "empty.png").write_bytes(b"")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: len(app.history.entries) == 1)
        await idle(pilot, app)
        assert app.history.entries[0].path == good[0]
        assert app.is_running
    with sqlite3.connect(index) as conn:
        assert conn.execute("select count(*) from images").fetchone()[0] >= 1


def test_sighup_to_the_real_app_in_a_terminal_drops_the_queue_and_quits(
    gallery_dir: Path, demo_model_dir: Path
) -> None:
    """The whole program in a pseudo-terminal, as over SSH: the link drops mid-queue."""
    import fcntl
    import pty
    import select
    import signal
    import struct
    import subprocess
    import sys
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TERM": "xterm-256color"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sdtui", "--model", "demo", "--renderer", "halfcell"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)

    def pump(rounds: int, until: Any = lambda: False) -> None:
        """Read what the app draws (it would block on a full terminal otherwise)."""
        for _ in range(rounds):
            if until():
                return
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    os.read(master, 65536)
                except OSError:
                    return

    try:
        pump(30)
        os.write(master, b"a lighthouse")
        pump(5)
        for _ in range(6):  # six images queued
            os.write(master, b"\x07")  # ctrl+g
            pump(2)
        pump(1500, until=lambda: bool(gallery_pngs(gallery_dir)))
        assert gallery_pngs(gallery_dir), "the first image never arrived"
        proc.send_signal(signal.SIGHUP)
        pump(600, until=lambda: proc.poll() is not None)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    files = gallery_pngs(gallery_dir)
    assert 1 <= len(files) < 6  # the rest of the queue was dropped
    for path in files:
        with Image.open(path) as im:
            im.load()
            assert im.text["parameters"].startswith("a lighthouse")
    assert leftovers(gallery_dir) == []


async def test_quitting_with_unsaved_images_asks_once(
    gallery_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fsync = os.fsync
    full = {"on": True}

    def fsync(fd: int) -> None:
        if full["on"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        await generate(pilot, app, "only in memory")
        assert len(app.runner.unsaved) == 1
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert app.is_running and "1 image not saved yet" in app.last_error
        full["on"] = False
        await pilot.press("alt+s")
        await wait_until(pilot, lambda: len(gallery_pngs(gallery_dir)) == 1)
        await pilot.press("ctrl+q")
        await wait_until(pilot, lambda: not app.is_running)


async def test_an_index_that_refuses_a_write_keeps_the_png_and_saves_no_duplicate(
    gallery_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sdtui.gallery.index import GalleryIndex

    real_add = GalleryIndex.add_rows
    locked = {"on": False}

    def add_rows(self: Any, rows: Any) -> Any:
        if locked["on"]:
            raise sqlite3.OperationalError("database is locked")
        return real_add(self, rows)

    monkeypatch.setattr(GalleryIndex, "add_rows", add_rows)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        locked["on"] = True
        await generate(pilot, app, "on disk, not in the index")
        assert "could not add it to the gallery index" in app.last_error
        assert "alt+s" not in app.last_error and app.runner.unsaved == []
        assert len(gallery_pngs(gallery_dir)) == 1
        locked["on"] = False
        app.reload_history()  # the next start (a sync) lists it
        await wait_until(pilot, lambda: len(app.history.entries) == 1)
    assert len(gallery_pngs(gallery_dir)) == 1


async def test_a_gallery_path_that_is_a_file_keeps_images_until_it_is_fixed(
    gallery_dir: Path,
) -> None:
    gallery_dir.write_text("a file where the gallery folder should be")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "gallery" in app.last_error)
        await idle(pilot, app)
        await generate(pilot, app, "waiting for a folder")
        assert "cannot use the gallery folder" in app.last_error
        assert len(app.runner.unsaved) == 1
        gallery_dir.unlink()
        await pilot.press("alt+s")
        await wait_until(pilot, lambda: len(app.history.entries) == 1)
        assert len(gallery_pngs(gallery_dir)) == 1
