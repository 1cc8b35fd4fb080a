"""Switching models parks the previous pipeline in CPU memory; switching back skips the disk."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sdtui.config import load_settings
from sdtui.engine import Engine, demo, loader
from sdtui.engine.performance import (
    PerformanceOptions,
    add_performance_arguments,
    performance_from_settings,
)
from sdtui.errors import ValidationError
from sdtui.params import GenerationRequest

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def models(demo_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Four local model folders: the demo, one with other weights, and two copies of the demo."""
    root = tmp_path_factory.mktemp("models")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(demo, "DEMO_SEED", 1234)
        demo.build_demo_pipeline(root / "other")
    for name in ("copy-c", "copy-d"):
        shutil.copytree(demo_model_dir, root / name)
    return {
        "a": str(demo_model_dir),
        "b": str(root / "other"),
        "c": str(root / "copy-c"),
        "d": str(root / "copy-d"),
    }


@pytest.fixture
def disk_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every model folder the loader reads from disk, in order."""
    reads: list[str] = []
    real = loader.load_pipeline

    def counting(source, *args, **kwargs):
        reads.append(source.location)
        return real(source, *args, **kwargs)

    monkeypatch.setattr(loader, "load_pipeline", counting)
    return reads


def make_engine(**options) -> Engine:
    return Engine(device="cpu", performance=PerformanceOptions(**options))


def pixels(engine: Engine, model: str, seed: int = 5) -> np.ndarray:
    request = GenerationRequest(
        prompt="a lighthouse at dusk", model=model, steps=3, width=64, height=64, seed=seed
    )
    return np.asarray(engine.generate(request).images[0].image)


def test_switching_back_restores_from_memory_without_reading_disk(models, disk_reads):
    engine = make_engine()
    engine.load(models["a"])
    first_pipe = engine.pipeline
    engine.load(models["b"])
    assert engine.parked_models == (models["a"],)
    statuses: list[str] = []
    loaded = engine.load(models["a"], on_status=statuses.append)
    assert disk_reads == [models["a"], models["b"]]
    assert engine.load_count == 2
    assert engine.pipeline is first_pipe
    assert f"restoring {models['a']} from memory" in statuses
    assert loaded.model_id == models["a"] and loaded.load_seconds >= 0
    assert engine.parked_models == (models["b"],)
    # And B comes back the same way.
    engine.load(models["b"])
    assert len(disk_reads) == 2


def test_restored_pipeline_makes_the_same_pixels(models, disk_reads):
    engine = make_engine()
    before = pixels(engine, models["a"])
    other = pixels(engine, models["b"])
    assert not np.array_equal(before, other)  # B really is another model
    after = pixels(engine, models["a"])
    assert len(disk_reads) == 2
    np.testing.assert_array_equal(before, after)


def test_keep_models_zero_reads_the_disk_again(models, disk_reads):
    engine = make_engine(keep_models=0)
    engine.load(models["a"])
    engine.load(models["b"])
    assert engine.parked_models == ()
    engine.load(models["a"])
    assert disk_reads == [models["a"], models["b"], models["a"]]


def test_the_least_recently_used_model_leaves_the_park_first(models, disk_reads):
    engine = make_engine(keep_models=2)
    for name in ("a", "b", "c"):
        engine.load(models[name])
    assert engine.parked_models == (models["a"], models["b"])
    engine.load(models["a"])  # from memory; B is now the one used longest ago
    assert engine.parked_models == (models["b"], models["c"])
    engine.load(models["d"])
    assert engine.parked_models == (models["c"], models["a"])
    assert len(disk_reads) == 4
    engine.load(models["c"])  # still parked
    assert len(disk_reads) == 4
    engine.load(models["b"])  # evicted: read again
    assert disk_reads[-1] == models["b"] and len(disk_reads) == 5


def test_unload_empties_the_park(models, disk_reads):
    engine = make_engine()
    engine.load(models["a"])
    engine.load(models["b"])
    engine.unload()
    assert engine.pipeline is None and engine.parked_models == ()
    engine.load(models["a"])
    assert len(disk_reads) == 3


def test_compiled_pipelines_are_not_parked(models, disk_reads):
    engine = make_engine(compile=True)
    engine.load(models["a"])  # compiles lazily, on the first generation: none here
    engine.load(models["b"])
    assert engine.parked_models == ()
    engine.load(models["a"])
    assert len(disk_reads) == 3


def test_out_of_memory_moving_back_loads_fresh(models, disk_reads, monkeypatch):
    engine = make_engine(keep_models=2)
    engine.load(models["a"])
    engine.load(models["b"])
    engine.load(models["c"])
    parked_a = engine._parked[next(iter(engine._parked))].pipe
    real_to = type(parked_a).to

    def out_of_memory_once(self, *args, **kwargs):
        if self is parked_a:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(type(parked_a), "to", out_of_memory_once)
    statuses: list[str] = []
    engine.load(models["a"], on_status=statuses.append)
    assert disk_reads[-1] == models["a"] and len(disk_reads) == 4
    assert engine.pipeline is not parked_a
    assert any("out of memory" in s for s in statuses)
    # Every parked pipeline was dropped to make room.
    assert engine.parked_models == ()


@pytest.mark.parametrize("value", [-1, "-2", "lots", 1.5, True, 17, ""])
def test_bad_keep_models_is_refused_with_the_setting_name(value):
    with pytest.raises(ValidationError, match="keep_models"):
        PerformanceOptions(keep_models=value)


def test_keep_models_from_config_env_and_flag(isolated_dirs):
    config = isolated_dirs / "config"
    config.mkdir()
    (config / "config.toml").write_text("[performance]\nkeep_models = 3\n")
    parser = argparse.ArgumentParser()
    add_performance_arguments(parser)
    settings = load_settings()
    assert performance_from_settings(settings, parser.parse_args([]), env={}).keep_models == 3
    env = {"SDTUI_KEEP_MODELS": "2"}
    assert performance_from_settings(settings, parser.parse_args([]), env=env).keep_models == 2
    flag = parser.parse_args(["--keep-models", "0"])
    assert performance_from_settings(settings, flag, env=env).keep_models == 0
    with pytest.raises(ValidationError, match="keep_models"):
        performance_from_settings(settings, parser.parse_args(["--keep-models", "x"]), env={})
    assert PerformanceOptions().keep_models == 1
