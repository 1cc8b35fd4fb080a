"""X/Y grids: axes from text, a request per cell, a labelled picture saved to the gallery."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sdtui.errors import ValidationError
from sdtui.params import GenerationRequest
from sdtui.prompts.grid import assemble_grid, parse_axis, plan_grid


def solid(colour: tuple[int, int, int], size: int = 64) -> Image.Image:
    return Image.new("RGB", (size, size), colour)


def test_axes_are_read_with_aliases_and_quotes():
    assert parse_axis("steps=4, 8,16").values == ("4", "8", "16")
    assert parse_axis("Sampler=Euler a,DPM++ 2M").name == "scheduler"
    axis = parse_axis('prompt=cat,"dog, small",owl')
    assert axis.name == "prompt" and axis.values == ("cat", "dog, small", "owl")
    assert parse_axis("CFG Scale=5,7").name == "cfg"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("steps", "NAME=VALUES"),
        ("colour=red,blue", "NAME=VALUES"),
        ("steps=", "no values"),
        ("steps=4,4", "twice"),
        ("prompt=cat", "at least one other"),
    ],
)
def test_bad_axes_are_refused(text, words):
    with pytest.raises(ValidationError, match=words):
        parse_axis(text)


def test_plan_makes_one_request_per_cell_with_one_seed():
    base = GenerationRequest("a cat on a mat", steps=20, cfg=7, count=3, model="demo")
    plan = plan_grid(base, parse_axis("steps=4,8,12"), parse_axis("cfg=5,9"))
    assert (plan.columns, plan.rows, len(plan.cells)) == (3, 2, 6)
    assert [(c.request.steps, c.request.cfg) for c in plan.cells] == [
        (4, 5.0),
        (8, 5.0),
        (12, 5.0),
        (4, 9.0),
        (8, 9.0),
        (12, 9.0),
    ]
    seeds = {c.request.seed for c in plan.cells}
    assert len(seeds) == 1 and None not in seeds
    assert all(c.request.count == 1 for c in plan.cells)
    assert dict(plan.cells[4].request.extras)["XY cell"] == "Steps: 8, CFG: 9"


def test_prompt_search_and_replace_and_seed_axis():
    base = GenerationRequest("a cat on a mat", seed=1)
    plan = plan_grid(base, parse_axis("prompt=cat,dog,owl"), parse_axis("seed=1,2"))
    assert [c.request.prompt for c in plan.cells[:3]] == [
        "a cat on a mat",
        "a dog on a mat",
        "a owl on a mat",
    ]
    assert [c.request.seed for c in plan.cells] == [1, 1, 1, 2, 2, 2]


def test_plan_refuses_bad_values_missing_search_text_and_same_axis():
    base = GenerationRequest("a cat", seed=1)
    with pytest.raises(ValidationError, match="steps"):
        plan_grid(base, parse_axis("steps=4,999"))
    with pytest.raises(ValidationError, match="does not occur"):
        plan_grid(base, parse_axis("prompt=dog,owl"))
    with pytest.raises(ValidationError, match="both vary"):
        plan_grid(base, parse_axis("cfg=4,5"), parse_axis("cfg=6,7"))
    with pytest.raises(ValidationError, match="unknown scheduler 'Nonesuch'"):
        plan_grid(base, parse_axis("sampler=Euler,Nonesuch"))


def test_grid_image_has_labels_and_exact_cells():
    base = GenerationRequest("a cat", seed=1)
    plan = plan_grid(base, parse_axis("steps=4,8"), parse_axis("cfg=5,7.5"))
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    grid = assemble_grid(plan, [solid(c) for c in colours])
    pixels = np.asarray(grid)
    height, width = pixels.shape[:2]
    top, left = height - 2 * 64, width - 2 * 64
    assert top > 10 and left > 10  # room for the labels
    for cell, colour in zip(plan.cells, colours, strict=True):
        y0, x0 = top + cell.y * 64, left + cell.x * 64
        assert (pixels[y0 : y0 + 64, x0 : x0 + 64] == colour).all()
    # Dark label text above each column and beside each row.
    for xi in range(2):
        band = pixels[:top, left + xi * 64 : left + (xi + 1) * 64]
        assert (band.sum(axis=2) < 200).any()
    for yi in range(2):
        band = pixels[top + yi * 64 : top + (yi + 1) * 64, :left]
        assert (band.sum(axis=2) < 200).any()
    assert (pixels[:top, :left] == 255).all()  # the corner stays blank


def test_single_axis_grid_has_no_left_labels():
    plan = plan_grid(GenerationRequest("a cat", seed=1), parse_axis("seed=1,2,3"))
    grid = assemble_grid(plan, [solid((0, 0, 0))] * 3)
    assert grid.width == 3 * 64 and grid.height > 64
    with pytest.raises(ValueError, match="3 cells"):
        assemble_grid(plan, [solid((0, 0, 0))] * 2)


def test_grid_on_the_demo_model_saved_to_the_gallery(demo_model_dir: Path, gallery_dir: Path):
    import torch

    from sdtui.engine import Engine
    from sdtui.gallery.gallery import Gallery
    from sdtui.gallery.metadata import read_metadata
    from sdtui.prompts.grid import save_grid

    torch.set_num_threads(1)
    engine = Engine(device="cpu")
    base = GenerationRequest(
        "a cat on a mat", model=str(demo_model_dir), width=64, height=64, seed=5, steps=2
    )
    plan = plan_grid(base, parse_axis("steps=1,2"), parse_axis("prompt=cat,dog"))
    with Gallery(gallery_dir) as gallery:
        results, images = [], []
        for cell in plan.cells:
            result = engine.generate(cell.request)
            gallery.save(result.images[0], result)
            results.append(result)
            images.append(result.images[0].image)
        entry = save_grid(gallery, plan, assemble_grid(plan, images), results)
        assert gallery.count() == 5
    meta = read_metadata(entry.path)
    assert meta.extras["XY grid"] == "X: steps=1,2; Y: prompt=cat,dog"
    assert entry.request is not None and entry.request.prompt == "a cat on a mat"
    saved = Image.open(entry.path)
    assert saved.width > 128 and saved.height > 128
    # The two prompt rows really differ, and cells match what the engine made.
    pixels = np.asarray(saved.convert("RGB"))
    top, left = saved.height - 128, saved.width - 128
    np.testing.assert_array_equal(
        pixels[top : top + 64, left : left + 64], np.asarray(images[0].convert("RGB"))
    )
    assert not np.array_equal(np.asarray(images[0]), np.asarray(images[2]))
