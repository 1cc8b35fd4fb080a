"""LoRAs and clip_l/clip_g embeddings on a tiny SDXL pipeline (two text encoders)."""

from __future__ import annotations

from pathlib import Path

import lora_files
import numpy as np
import pytest

from sdtui.addons import AddonError, AddonFolders, AddonLibrary, HashCache, scan_folder
from sdtui.params import GenerationRequest


@pytest.fixture(scope="module")
def sdxl_engine(tmp_path_factory: pytest.TempPathFactory, demo_model_dir: Path):
    from sdtui.engine import Engine

    root = tmp_path_factory.mktemp("sdxl")
    model = lora_files.build_tiny_sdxl(root / "model")
    loras, embeddings = root / "loras", root / "embeddings"
    lora_files.write_sdxl_diffusers_lora(model, loras / "xlstyle.safetensors")
    lora_files.write_kohya_lora(demo_model_dir, loras / "sd1style.safetensors")
    lora_files.write_embedding(embeddings / "xlhands.safetensors", style="sdxl", widths=(32, 32))
    lora_files.write_embedding(embeddings / "sd1hands.safetensors")
    library = AddonLibrary(AddonFolders(loras, embeddings), HashCache(None))
    engine = Engine(device="cpu", addons=library)
    engine.load(str(model))
    return engine


def _pixels(engine, prompt: str) -> np.ndarray:
    request = GenerationRequest(
        prompt=prompt, model=engine.loaded.requested, steps=3, width=64, height=64, seed=2
    )
    return np.asarray(engine.generate(request).images[0].image).astype(int)


def test_an_sdxl_lora_applies_and_comes_off_again(sdxl_engine) -> None:
    assert sdxl_engine.loaded.family == "sdxl"
    files = {f.name: f.family for f in scan_folder(sdxl_engine.addons.folders.loras, "lora")}
    assert files == {"sd1style": "sd1", "xlstyle": "sdxl"}
    base = _pixels(sdxl_engine, "a cat")
    assert (_pixels(sdxl_engine, "a cat <lora:xlstyle:0>") == base).all()
    assert np.abs(_pixels(sdxl_engine, "a cat <lora:xlstyle:1>") - base).mean() > 0.5
    assert (_pixels(sdxl_engine, "a cat") == base).all()


def test_an_sd1_lora_is_refused_on_sdxl(sdxl_engine) -> None:
    with pytest.raises(AddonError, match="made for SD 1.x; the loaded model is SDXL"):
        _pixels(sdxl_engine, "a cat <lora:sd1style:1>")


def test_a_two_encoder_embedding_changes_the_image_and_a_one_encoder_one_is_refused(
    sdxl_engine,
) -> None:
    base = _pixels(sdxl_engine, "a cat")
    assert np.abs(_pixels(sdxl_engine, "a cat xlhands") - base).mean() > 0.1
    added = [
        sdxl_engine.pipeline.tokenizer.get_added_vocab(),
        sdxl_engine.pipeline.tokenizer_2.get_added_vocab(),
    ]
    assert all("xlhands" in vocab for vocab in added)
    with pytest.raises(AddonError, match="one text encoder; SDXL needs clip_l and clip_g"):
        _pixels(sdxl_engine, "a cat sd1hands")
    assert (_pixels(sdxl_engine, "a cat") == base).all()
