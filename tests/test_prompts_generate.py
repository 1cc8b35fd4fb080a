"""`sdtui generate` with styles, presets, wildcards, combinations, grids and expansion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from sdtui.cli import main
from sdtui.config import config_dir, config_path
from sdtui.gallery.metadata import read_metadata
from sdtui.params import GenerationRequest

BASE = ["--model", "demo", "--steps", "1", "--json"]


@pytest.fixture(autouse=True)
def _threads(demo_model_dir: Path) -> None:
    import torch

    torch.set_num_threads(1)


def generate(capsys, *args: str) -> list[dict]:
    assert main(["generate", *args, *BASE]) == 0, capsys.readouterr().err
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def pngs(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.png")) if folder.exists() else []


def test_styles_wrap_the_prompt_and_are_recorded(capsys, gallery_dir):
    [line] = generate(capsys, "a fox", "--style", "anime", "--style", "pixel-art", "--seed", "3")
    assert line["prompt"].startswith("pixel art of anime artwork of a fox")
    meta = read_metadata(Path(line["path"]))
    assert meta.prompt == line["prompt"]
    assert meta.extras["Styles"] == "anime, pixel-art"
    assert meta.extras["Style base prompt"] == "a fox"
    assert "black and white" in meta.negative_prompt  # the anime style's negative


def test_wildcards_pick_per_image_seed(capsys):
    lines = generate(capsys, "a {red|green|blue} cat", "--seed", "40", "--count", "3")
    assert [line["seed"] for line in lines] == [40, 41, 42]
    from sdtui.prompts.wildcards import resolve_wildcards

    for line in lines:
        assert line["prompt"] == resolve_wildcards("a {red|green|blue} cat", line["seed"])[0]
        meta = read_metadata(Path(line["path"]))
        assert meta.extras["Wildcard prompt"] == "a {red|green|blue} cat"


def test_combinations_make_every_prompt(capsys):
    wildcards = config_dir() / "wildcards"
    wildcards.mkdir(parents=True)
    (wildcards / "animal.txt").write_text("cat\nowl\n", encoding="utf-8")
    lines = generate(capsys, "a {red|blue} __animal__", "--seed", "1", "--combinations")
    assert sorted(line["prompt"] for line in lines) == [
        "a blue cat",
        "a blue owl",
        "a red cat",
        "a red owl",
    ]
    assert {line["seed"] for line in lines} == {1}


def test_xy_grid_saves_cells_and_a_labelled_grid(capsys, gallery_dir):
    lines = generate(capsys, "a fox", "--seed", "9", "--xy", "steps=1,2", "--xy", "cfg=5,7")
    cells, grid = lines[:-1], lines[-1]
    assert [(c["steps"], c["cfg"]) for c in cells] == [(1, 5), (2, 5), (1, 7), (2, 7)]
    assert {c["seed"] for c in cells} == {9}
    assert grid["grid"] == "X: steps=1,2; Y: cfg=5,7"
    assert len(pngs(gallery_dir)) == 5
    with Image.open(grid["path"]) as image:
        assert image.width > 128 and image.height > 128
    assert read_metadata(Path(grid["path"])).extras["XY grid"] == grid["grid"]


def test_preset_settings_apply_under_explicit_flags(capsys):
    from sdtui.prompts.presets import save_preset

    save_preset("tiny", GenerationRequest("x", steps=9, cfg=4, width=72, height=64))
    [line] = generate(capsys, "a fox", "--preset", "tiny", "--seed", "1")
    # --steps 1 was given on the command line, so it wins over the preset's 9.
    assert (line["steps"], line["cfg"], line["width"]) == (1, 4.0, 72)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["a fox", "--style", "nosuch"], "no style named 'nosuch'"),
        (["a (fox", "--seed", "1"], "never closed"),
        (["a __nosuch__ fox"], "__nosuch__"),
        (["a fox", "--xy", "colour=red"], "NAME=VALUES"),
        (["a fox", "--xy", "steps=1,2", "--count", "2"], "grid varies one image"),
        (["a fox", "--preset", "nosuch"], "no preset named"),
    ],
)
def test_bad_prompt_craft_input_changes_nothing(capsys, gallery_dir, args, words):
    assert main(["generate", *args, *BASE]) == 2
    assert words in capsys.readouterr().err
    assert pngs(gallery_dir) == []


def test_expand_grows_the_prompt_before_generating(capsys, tmp_path):
    from test_expand import build_tiny_gpt2

    model = build_tiny_gpt2(tmp_path / "expander")
    config_path().parent.mkdir(parents=True, exist_ok=True)
    config_path().write_text(f'[prompts]\nexpander = "{model}"\n', encoding="utf-8")
    [line] = generate(capsys, "a cat", "--expand", "--seed", "4")
    [again] = generate(capsys, "a cat", "--expand", "--seed", "4")
    assert line["prompt"].startswith("a cat") and len(line["prompt"]) > len("a cat")
    assert again["prompt"] == line["prompt"]
    meta = read_metadata(Path(line["path"]))
    assert meta.extras["Expanded from"] == "a cat"
    assert str(model) in meta.extras["Expander"]
