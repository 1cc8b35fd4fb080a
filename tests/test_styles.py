"""Styles and presets as data files: built-ins, the user's own, applying and saving."""

from __future__ import annotations

import os

import pytest

from sdtui.config import config_dir
from sdtui.errors import ValidationError
from sdtui.params import GenerationRequest, format_parameters, request_from_parameters
from sdtui.prompts.presets import load_preset, load_presets, save_preset
from sdtui.prompts.styles import apply_styles, load_styles, style_request


def write_user_styles(text: str, name: str = "mine.toml") -> None:
    folder = config_dir() / "styles"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")


def test_builtin_styles_load_cleanly():
    catalog = load_styles()
    assert catalog.problems == []
    names = set(catalog.styles)
    assert {"cinematic", "photographic", "anime", "oil-painting", "watercolor"} <= names
    assert {"pixel-art", "line-art", "3d-render"} <= names
    for style in catalog.styles.values():
        assert "{prompt}" in style.template and style.negative


def test_styles_nest_and_negatives_join():
    catalog = load_styles()
    prompt, negative = apply_styles(
        "a fox", "blurry", [catalog.get("watercolor"), catalog.get("cinematic")]
    )
    watercolor = catalog.get("watercolor").apply("a fox")
    assert prompt == catalog.get("cinematic").template.replace("{prompt}", watercolor)
    assert negative.startswith("blurry, ")
    assert catalog.get("watercolor").negative in negative
    assert catalog.get("cinematic").negative in negative


def test_style_request_records_names_and_base_prompt_for_remix():
    request = GenerationRequest("a fox", negative_prompt="blurry", seed=3, model="demo")
    styled = style_request(request, ["anime", "pixel-art"])
    extras = dict(styled.extras)
    assert extras["Styles"] == "anime, pixel-art"
    assert extras["Style base prompt"] == "a fox"
    assert extras["Style base negative prompt"] == "blurry"
    assert "pixel art of anime artwork of a fox" in styled.prompt
    again = request_from_parameters(format_parameters(styled))
    assert (again.prompt, again.negative_prompt) == (styled.prompt, styled.negative_prompt)
    assert dict(again.extras)["Styles"] == "anime, pixel-art"


def test_user_style_with_settings_overrides_builtin_and_applies_settings():
    write_user_styles(
        '[[style]]\nname = "anime"\ntemplate = "my {prompt}"\nnegative = "x"\n'
        'steps = 9\ncfg = 4.5\nscheduler = "euler a"\nwidth = 320\n'
    )
    catalog = load_styles()
    assert catalog.get("anime").source.endswith("mine.toml")
    styled = style_request(GenerationRequest("cat", steps=30), ["anime"], catalog)
    assert (styled.prompt, styled.steps, styled.cfg, styled.width) == ("my cat", 9, 4.5, 320)
    assert styled.scheduler == "Euler a"


def test_broken_user_files_are_reported_and_the_rest_still_load():
    write_user_styles("this is [not toml", "broken.toml")
    write_user_styles(
        '[[style]]\nname = "noslot"\ntemplate = "no placeholder"\n'
        '[[style]]\nname = "badsteps"\ntemplate = "{prompt}"\nsteps = 9999\n'
        '[[style]]\nname = "good"\ntemplate = "good {prompt}"\n',
        "mixed.toml",
    )
    catalog = load_styles()
    assert "good" in catalog.styles and "cinematic" in catalog.styles
    text = "\n".join(catalog.problems)
    assert "broken.toml" in text
    assert "must contain {prompt}" in text
    assert "steps" in text and "150" in text
    assert "noslot" not in catalog.styles and "badsteps" not in catalog.styles


def test_unknown_style_is_refused_with_the_known_names():
    with pytest.raises(ValidationError) as info:
        style_request(GenerationRequest("cat"), ["nosuch"])
    assert "nosuch" in str(info.value) and "cinematic" in str(info.value)


def test_builtin_presets_and_applying_one():
    presets, problems = load_presets()
    assert problems == []
    draft, final = presets["fast-draft"], presets["final"]
    assert draft.settings["steps"] < final.settings["steps"]
    assert draft.settings["width"] < final.settings["width"]
    request = draft.apply(GenerationRequest("a fox", seed=1, negative_prompt="blurry"))
    assert (request.steps, request.width, request.prompt) == (12, 384, "a fox")
    assert request.negative_prompt == "blurry"


def test_save_preset_round_trips_and_never_overwrites():
    request = GenerationRequest(
        "a fox",
        negative_prompt='no "text", please',
        steps=17,
        cfg=5.5,
        width=320,
        height=448,
        scheduler="Euler a",
        model="demo",
        count=2,
        seed=9,
    )
    path = save_preset("my look", request, description="mine")
    assert path.parent == config_dir() / "presets"
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    loaded = load_preset("my look")
    applied = loaded.apply(GenerationRequest("other prompt", seed=1))
    assert applied.prompt == "other prompt" and applied.seed == 1
    for key in ("steps", "cfg", "width", "height", "scheduler", "model", "count"):
        assert getattr(applied, key) == getattr(request, key)
    assert applied.negative_prompt == request.negative_prompt

    before = path.read_bytes()
    with pytest.raises(ValidationError, match="already exists"):
        save_preset("my look", request.replace(steps=40))
    assert path.read_bytes() == before
    assert [p for p in os.listdir(path.parent) if p.startswith(".tmp")] == []
    save_preset("my look", request.replace(steps=40), overwrite=True)
    assert load_preset("my look").settings["steps"] == 40


@pytest.mark.parametrize("name", ["", "../escape", "a/b", ".hidden", "x" * 80])
def test_unsafe_preset_names_are_refused(name):
    with pytest.raises(ValidationError, match="name"):
        save_preset(name, GenerationRequest("cat"))
    assert not (config_dir() / "presets").exists() or not any((config_dir() / "presets").iterdir())


def test_unknown_preset_lists_known():
    with pytest.raises(ValidationError, match="fast-draft"):
        load_preset("nosuch")


def test_cli_styles_lists_builtins_and_user_styles(capsys):
    import json

    from sdtui.cli import main

    write_user_styles('[[style]]\nname = "moody"\ntemplate = "moody {prompt}"\nsteps = 30\n')
    write_user_styles("not = [valid", "broken.toml")
    assert main(["styles", "--json"]) == 0
    out = capsys.readouterr()
    rows = {row["name"]: row for row in json.loads(out.out)}
    assert rows["moody"]["template"] == "moody {prompt}"
    assert rows["moody"]["settings"] == {"steps": 30}
    assert rows["cinematic"]["negative"] and rows["cinematic"]["source"] == "built-in"
    assert "broken.toml" in out.err
    assert main(["styles"]) == 0
    text = capsys.readouterr().out
    assert "moody" in text and "template: moody {prompt}" in text


def test_cli_presets_listing(capsys):
    import json

    from sdtui.cli import main

    assert main(["styles", "--presets", "--json"]) == 0
    names = {row["name"] for row in json.loads(capsys.readouterr().out)}
    assert {"fast-draft", "final"} <= names


def test_preset_where_no_folder_can_be_made_fails_clearly(tmp_path):
    from sdtui.errors import SaveError

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    with pytest.raises(SaveError, match="could not write"):
        save_preset("x", GenerationRequest("cat"), folder=blocker / "presets")
    assert blocker.read_text(encoding="utf-8") == "not a folder"
