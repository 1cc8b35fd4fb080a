"""--quantize int8|fp8: 8-bit denoiser weights through torchao (an optional extra)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from sdtui.engine import Engine
from sdtui.engine.performance import PerformanceOptions, performance_from_settings
from sdtui.errors import SdtuiError, ValidationError
from sdtui.params import GenerationRequest

torch.set_num_threads(1)


def _request(folder: object, seed: int = 5) -> GenerationRequest:
    return GenerationRequest(
        "a cat", model=str(folder), scheduler="Euler", steps=3, cfg=3.5, seed=seed,
        width=64, height=64,
    )  # fmt: skip


def _pixels(engine: Engine, request: GenerationRequest) -> np.ndarray:
    return np.asarray(engine.generate(request).images[0].image).astype(int)


def test_int8_transformer_reproduces_and_stays_close(family_model: object) -> None:
    pytest.importorskip("torchao")
    folder = family_model("flux")  # type: ignore[operator]
    plain = _pixels(Engine(device="cpu"), _request(folder))
    engine = Engine(device="cpu", performance=PerformanceOptions(quantize="int8"))
    loaded = engine.load(str(folder))
    assert any("quantized to int8" in note for note in loaded.notes)
    weight = engine.pipeline.transformer.transformer_blocks[0].attn.to_q.weight
    assert "Int8" in type(weight).__name__
    first, again = _pixels(engine, _request(folder)), _pixels(engine, _request(folder))
    assert np.array_equal(first, again)
    assert np.abs(first - plain).mean() < 4  # 8-bit weights: nearly the same picture


def test_fp8_on_the_cpu_is_refused_with_the_reason(family_model: object) -> None:
    engine = Engine(device="cpu", performance=PerformanceOptions(quantize="fp8"))
    with pytest.raises(ValidationError, match="fp8 needs a CUDA GPU"):
        engine.load(str(family_model("sd3")))  # type: ignore[operator]
    assert engine.loaded is None


def test_without_torchao_the_message_says_how_to_install_it(
    family_model: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torchao.quantization", None)
    engine = Engine(device="cpu", performance=PerformanceOptions(quantize="int8"))
    with pytest.raises(SdtuiError, match="needs torchao") as caught:
        engine.load(str(family_model("sd3")))  # type: ignore[operator]
    assert "sdtui[quantize]" in caught.value.hint


def test_quantize_flag_and_bad_values() -> None:
    import argparse

    from sdtui.engine.performance import add_performance_arguments

    parser = argparse.ArgumentParser()
    add_performance_arguments(parser)
    options = performance_from_settings(None, parser.parse_args(["--quantize", "int8"]), env={})
    assert options.quantize == "int8"
    with pytest.raises(ValidationError, match="quantize"):
        PerformanceOptions(quantize="int4")
