"""Faults met by `sdtui generate` and the gallery, caused for real.

Load failures and out-of-memory exit 1 with the reason; a full disk saves
nothing partial; a process killed mid-save, a hang-up, two processes sharing a
gallery and a damaged index all leave complete PNGs and an index that agrees.
"""

from __future__ import annotations

import errno
import gc
import json
import os
import random
import signal
import subprocess
import sys
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import gallery_pngs, messages
from PIL import Image

from sdtui.cli import main
from sdtui.engine import Engine, loader
from sdtui.errors import OutOfMemoryError
from sdtui.gallery import Gallery
from sdtui.logging_setup import log_path, stop_logging
from sdtui.params import GenerationRequest

torch.set_num_threads(1)
TINY = ["--model", "demo", "--steps", "2", "--width", "64", "--height", "64"]


@pytest.fixture(autouse=True)
def close_log() -> Any:
    yield
    stop_logging()


def temp_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.tmp")) if folder.exists() else []


def complete_png(path: Path) -> bool:
    """The whole file decodes and carries our settings."""
    try:
        with Image.open(path) as im:
            im.load()
            return "parameters" in im.text and "sdtui" in im.text
    except (OSError, SyntaxError):
        return False


def one_error_line(err: str) -> str:
    lines = messages(err)  # the progress stages aside
    assert len(lines) == 1, err
    return lines[0]


# -- models that do not load ---------------------------------------------------------


def _hub_error(kind: type, status: int) -> Exception:
    try:
        import httpx2 as httpx  # the HTTP client huggingface_hub is built on
    except ImportError:  # pragma: no cover
        import httpx
    url = "https://huggingface.co/api/models/owner/name"
    return kind("hub said no", response=httpx.Response(status, request=httpx.Request("GET", url)))


@pytest.fixture
def hub_refuses(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Make the hub download raise `error` for repository `owner/name` (offline here)."""
    from diffusers import AutoPipelineForText2Image

    real = AutoPipelineForText2Image.from_pretrained

    def refuse(error: Exception) -> None:
        def from_pretrained(location: str, **kwargs: Any) -> Any:
            if location != "owner/name":
                return real(location, **kwargs)
            raise OSError(f"could not fetch {location}") from error

        monkeypatch.setattr(AutoPipelineForText2Image, "from_pretrained", from_pretrained)

    return refuse


@pytest.mark.parametrize(
    ("model", "hub_error", "words"),
    [
        ("no such model", None, "not a short model name, a hub id"),
        ("someone/not-downloaded", None, "not in the local cache and HF_HUB_OFFLINE is set"),
        ("owner/name", "gated", "owner/name is gated"),
        ("owner/name", "missing", "no model owner/name on the Hugging Face Hub"),
    ],
)
def test_generate_with_a_model_that_cannot_load_exits_1_with_the_reason(
    model: str,
    hub_error: str | None,
    words: str,
    hub_refuses: Any,
    gallery_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    if hub_error == "gated":
        hub_refuses(_hub_error(GatedRepoError, 403))
    elif hub_error == "missing":
        hub_refuses(_hub_error(RepositoryNotFoundError, 404))
    assert main(["generate", "a lighthouse", "--model", model, "--steps", "2"]) == 1
    out, err = capsys.readouterr()
    assert words in one_error_line(err) and out == ""
    assert gallery_pngs(gallery_dir) == []


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_generate_with_a_truncated_checkpoint_exits_1(
    kind: str,
    demo_model_dir: Path,
    tmp_path: Path,
    gallery_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    weights = demo_model_dir / "unet" / "diffusion_pytorch_model.safetensors"
    if kind == "file":
        model = tmp_path / "cut.safetensors"
        model.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    else:
        import shutil

        model = tmp_path / "cut-folder"
        shutil.copytree(demo_model_dir, model)
        cut = model / "unet" / "diffusion_pytorch_model.safetensors"
        cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    assert main(["generate", "x", "--model", str(model), "--steps", "2"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "damaged" in line or "cannot load" in line
    assert gallery_pngs(gallery_dir) == []


# -- out of memory in the middle of a step ----------------------------------------------


def test_out_of_memory_mid_step_frees_memory_and_the_next_request_works(
    demo_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = Engine(device="cpu")
    request = GenerationRequest(prompt="a cat", model="demo", steps=3, width=64, height=64, seed=9)
    before = engine.generate(request).images[0].image
    unet = engine.pipeline.unet
    real_forward = unet.forward
    seen: list[weakref.ref] = []
    freed: list[str] = []
    calls = {"n": 0}

    def forward(sample: Any, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        seen.append(weakref.ref(sample))
        if calls["n"] == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 4.00 GiB")
        return real_forward(sample, *args, **kwargs)

    real_free = loader.free_device_memory
    monkeypatch.setattr(unet, "forward", forward)
    monkeypatch.setattr(loader, "free_device_memory", lambda d: (freed.append(d), real_free(d)))
    with pytest.raises(OutOfMemoryError) as info:
        engine.generate(request.replace(width=512, height=512))
    message = str(info.value)
    assert "ran out of memory" in message and "512x512" in message
    assert any(w in message for w in ("lower", "tiling", "slicing", "offload"))
    assert freed == ["cpu"]
    del info
    gc.collect()
    # Nothing of the failed run is kept alive: its latents are gone.
    assert all(ref() is None for ref in seen)
    monkeypatch.setattr(unet, "forward", real_forward)
    after = engine.generate(request).images[0].image
    assert np.array_equal(np.asarray(before), np.asarray(after))


def test_out_of_memory_in_generate_exits_1_with_what_to_lower(
    demo_model_dir: Path,
    gallery_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from diffusers import UNet2DConditionModel

    real_forward = UNet2DConditionModel.forward

    def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 4.00 GiB")

    monkeypatch.setattr(UNet2DConditionModel, "forward", forward)
    assert main(["generate", "too big", *TINY]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "ran out of memory" in line
    assert gallery_pngs(gallery_dir) == []
    monkeypatch.setattr(UNet2DConditionModel, "forward", real_forward)


# -- unexpected failures and the log ----------------------------------------------------


def test_an_unexpected_failure_is_one_line_and_its_traceback_is_logged(
    gallery_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sdtui.cli import generate

    def broken(*args: Any) -> Any:
        raise LookupError("table of sizes is missing")

    monkeypatch.setattr(generate, "build_request", broken)
    assert main(["generate", "x", "--model", "demo"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "LookupError: table of sizes is missing" in line and str(log_path()) in line
    text = log_path().read_text()
    assert "Traceback" in text and "table of sizes is missing" in text


# -- disk full ---------------------------------------------------------------------


@pytest.mark.parametrize("cause", ["disk full", "read-only"])
def test_generate_on_a_full_disk_exits_1_and_leaves_no_partial_file(
    cause: str,
    demo_model_dir: Path,
    gallery_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    Gallery(gallery_dir).close()  # the folder exists; writing into it fails
    real_fsync, real_open = os.fsync, os.open

    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    def open_(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if str(path).startswith(str(gallery_dir)) and flags & os.O_CREAT and ".tmp" in str(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    if cause == "disk full":
        monkeypatch.setattr(os, "fsync", fsync)
    else:
        monkeypatch.setattr(os, "open", open_)
    assert main(["generate", "no room", *TINY]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert ("No space left" if cause == "disk full" else "Permission denied") in line
    monkeypatch.setattr(os, "fsync", real_fsync)
    monkeypatch.setattr(os, "open", real_open)
    assert gallery_pngs(gallery_dir) == [] and temp_files(gallery_dir) == []
    with Gallery(gallery_dir) as gallery:
        assert gallery.list() == []


# -- killed while saving -------------------------------------------------------------

SAVER = r"""
import sys
import numpy as np
from PIL import Image
from sdtui.gallery import Gallery
from sdtui.params import GenerationRequest
from sdtui.results import GeneratedImage, GenerationResult

gallery = Gallery(sys.argv[1])
rng = np.random.default_rng(int(sys.argv[2]))
request = GenerationRequest(prompt="killed while saving", model="demo", seed=1)
print("ready", flush=True)
for seed in range(10_000):
    # Noise does not compress: each save takes long enough to be killed in the middle.
    image = Image.fromarray(rng.integers(0, 256, (512, 512, 3), dtype=np.uint8))
    generated = GeneratedImage(image, seed, 0, request)
    gallery.save(generated, GenerationResult(request, [generated], "demo", "cpu", "fp32"))
"""


def test_sigkill_during_saves_leaves_only_complete_pngs_and_a_matching_index(
    gallery_dir: Path,
) -> None:
    pick = random.Random(1234)
    for round_ in range(6):
        proc = subprocess.Popen(
            [sys.executable, "-c", SAVER, str(gallery_dir), str(round_)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        try:
            proc.wait(timeout=pick.uniform(0.05, 1.5))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL
    files = gallery_pngs(gallery_dir)
    assert files, "no save finished before the kills"
    assert all(complete_png(p) for p in files)
    # A temporary file of a killed save stays hidden and is cleaned once it is old.
    for tmp in temp_files(gallery_dir):
        assert tmp.name.startswith(".")
        os.utime(tmp, (0, 0))
    with Gallery(gallery_dir) as gallery:
        gallery.sync()
        indexed = {e.path for e in gallery.list(limit=10_000)}
    assert indexed == set(files)
    assert temp_files(gallery_dir) == []


# -- the terminal goes away --------------------------------------------------------


def run_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sdtui", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def test_sighup_during_generate_stops_cleanly(demo_model_dir: Path, gallery_dir: Path) -> None:
    proc = run_cli("generate", "hung up", *TINY[:2], "--steps", "25", "--count", "40", "--json")
    assert proc.stdout is not None
    first = proc.stdout.readline()  # one image saved: the job is well under way
    assert first.startswith("{"), proc.stderr.read() if proc.stderr else ""
    proc.send_signal(signal.SIGHUP)
    rest, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    printed = [json.loads(line)["path"] for line in [first, *rest.splitlines()] if line.strip()]
    files = gallery_pngs(gallery_dir)
    assert sorted(map(Path, printed)) == files and len(files) < 40
    assert all(complete_png(p) for p in files) and temp_files(gallery_dir) == []


# -- two processes, one gallery --------------------------------------------------------


def test_two_processes_generating_into_one_gallery(demo_model_dir: Path, gallery_dir: Path):
    args = ("generate", "the same prompt", *TINY, "--seed", "77", "--json")
    procs = [run_cli(*args), run_cli(*args)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outputs]
    paths = [Path(json.loads(out)["path"]) for out, _ in outputs]
    assert paths[0] != paths[1] and sorted(paths) == gallery_pngs(gallery_dir)
    # Same seed, same pixels: neither file was overwritten by the other.
    pixels = [np.asarray(Image.open(p)) for p in paths]
    assert np.array_equal(pixels[0], pixels[1])
    with Gallery(gallery_dir) as gallery:
        assert {e.path for e in gallery.list()} == set(paths)
        assert gallery.sync().added == 0


# -- a damaged gallery ------------------------------------------------------------------


def test_gallery_list_survives_a_damaged_index_and_corrupt_pngs(
    demo_model_dir: Path, gallery_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", "a survivor", *TINY]) == 0
    saved = Path(capsys.readouterr().out.strip())
    index = gallery_dir / ".sdtui" / "index.sqlite3"
    index.write_bytes(os.urandom(8192))
    for suffix in ("-wal", "-shm"):
        Path(f"{index}{suffix}").unlink(missing_ok=True)
    (saved.parent / "cut.png").write_bytes(saved.read_bytes()[:200])
    (saved.parent / "text.png").write_text("not an image at all")
    assert main(["gallery", "list", "--json"]) == 0
    out, _ = capsys.readouterr()
    listed = [json.loads(line)["path"] for line in out.splitlines()]
    assert listed == [str(saved)]


REAL_OOM = r"""
import resource
import numpy as np
import torch
from sdtui.engine import Engine
from sdtui.errors import OutOfMemoryError
from sdtui.params import GenerationRequest

torch.set_num_threads(1)
engine = Engine(device="cpu")
small = GenerationRequest(prompt="x", model="demo", steps=2, width=64, height=64, seed=1)
before = np.asarray(engine.generate(small).images[0].image)
# Leave the process only a little more memory than it holds now: a large image
# then fails inside the allocator, as it would on a full GPU.
status = open("/proc/self/status").read().split("VmSize:")[1]
held = int(status.split()[0]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (held + 80_000_000, resource.RLIM_INFINITY))
try:
    engine.generate(small.replace(width=1024, height=1024, steps=1))
    print("no failure")
except OutOfMemoryError as exc:
    print("refused:", exc)
after = np.asarray(engine.generate(small).images[0].image)
print("next request works:", np.array_equal(before, after))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_a_real_allocation_failure_mid_generation(demo_model_dir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", REAL_OOM],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("refused: cpu ran out of memory making a 1024x1024 image (")
    assert lines[-1] == "next request works: True"


def test_an_unwritable_log_folder_does_not_stop_sdtui(
    isolated_dirs: Path, gallery_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    blocker = isolated_dirs / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("SDTUI_LOG_DIR", str(blocker / "logs"))
    assert main(["generate", "logless", *TINY]) == 0
    assert len(gallery_pngs(gallery_dir)) == 1
    assert main(["generate", "x", "--steps", "0"]) == 2
    assert "steps" in capsys.readouterr().err
