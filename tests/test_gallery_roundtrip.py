"""From the engine to the gallery and back: the saved PNG makes the same image again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sdtui.gallery import Gallery, read_metadata
from sdtui.params import GenerationRequest

torch.set_num_threads(1)


def test_saved_settings_reproduce_the_same_pixels(demo_model_dir: Path, gallery_dir: Path) -> None:
    from sdtui.engine import Engine

    engine = Engine(device="cpu")
    request = GenerationRequest(
        prompt="a lighthouse at dusk, oil painting",
        negative_prompt="blurry",
        model=str(demo_model_dir),
        scheduler="Euler a",
        steps=3,
        cfg=6.0,
        width=64,
        height=64,
        seed=1000,
        count=2,
    )
    result = engine.generate(request)
    gallery = Gallery(gallery_dir)
    entries = [gallery.save(image, result) for image in result.images]

    second = entries[1]
    meta = read_metadata(second.path)
    assert meta.seed == 1001 and meta.info["device"] == "cpu"
    again = engine.generate(meta.request())  # the second image alone, from its file
    with Image.open(second.path) as saved:
        assert np.array_equal(np.asarray(saved.convert("RGB")), np.asarray(again.images[0].image))
    assert [e.seed for e in gallery.list()] == [1001, 1000]
    gallery.close()
