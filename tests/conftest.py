"""Shared fixtures: a tiny random-weight pipeline, and folders kept out of the user's home."""

from __future__ import annotations

import os

# Two OpenMP threads on a 2-core machine make a tiny UNet 20-50x slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
# The app's engine on a thread, so tests can patch it; SDTUI_IN_PROCESS=0 runs the
# suite through the engine process instead (tests/test_engine_process.py always does).
os.environ.setdefault("SDTUI_IN_PROCESS", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from ray_helpers import ray_deployment  # noqa: E402, F401  (the `ray` tests' Ray)


@pytest.fixture(scope="session")
def session_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder shared by the whole run, so the demo model is built once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def demo_model_dir(session_cache_dir: Path) -> Path:
    """The tiny pipeline saved as a diffusers folder (what `--model demo` loads)."""
    import torch

    torch.set_num_threads(1)
    from sdtui.engine.demo import demo_model_folder

    return demo_model_folder(session_cache_dir)


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, session_cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point config, cache, logs and gallery at temporary folders for every test."""
    monkeypatch.setenv("SDTUI_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("SDTUI_CACHE_DIR", str(session_cache_dir))
    monkeypatch.setenv("SDTUI_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("SDTUI_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SDTUI_GALLERY", str(tmp_path / "gallery"))
    monkeypatch.delenv("SDTUI_CONFIG", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    return tmp_path


@pytest.fixture
def gallery_dir(isolated_dirs: Path) -> Path:
    return isolated_dirs / "gallery"


@pytest.fixture(scope="session")
def family_model(session_cache_dir: Path):  # noqa: ANN201 - returns a builder
    """`family_model("sd3" | "flux" | "flux-schnell" | "sdxl")`: a tiny folder of that family."""
    from family_models import model_folder

    return lambda kind: model_folder(kind, session_cache_dir)
