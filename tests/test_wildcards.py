"""Wildcards: seeded picks, files from the config folder, every combination, recorded in extras."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdtui.config import config_dir
from sdtui.errors import ValidationError
from sdtui.params import GenerationRequest, format_parameters, request_from_parameters
from sdtui.prompts.prepare import prepare_requests
from sdtui.prompts.wildcards import combinations, has_wildcards, resolve_wildcards


def write_wildcards(**files: str) -> Path:
    folder = config_dir() / "wildcards"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.txt").write_text(text, encoding="utf-8")
    return folder


def test_same_seed_same_pick_and_seeds_spread_over_choices():
    text = "a {red|green|blue|gold} {cat|dog|owl}"
    first, picks = resolve_wildcards(text, 42)
    assert resolve_wildcards(text, 42)[0] == first
    assert not has_wildcards(first)
    assert [p.source for p in picks] == ["{red|green|blue|gold}", "{cat|dog|owl}"]
    assert first == f"a {picks[0].value} {picks[1].value}"
    made = {resolve_wildcards(text, seed)[0] for seed in range(40)}
    assert len(made) > 4


def test_braces_without_choices_are_plain_text():
    assert resolve_wildcards("a {single} word", 1) == ("a {single} word", [])


def test_file_wildcards_draw_lines_and_nest():
    write_wildcards(animal="# animals\ncat\n\n{small|big} dog\n", colour="red\nblue\n")
    picks = {resolve_wildcards("__colour__ __animal__", seed)[0] for seed in range(60)}
    assert picks == {f"{c} {a}" for c in ("red", "blue") for a in ("cat", "small dog", "big dog")}


def test_unknown_wildcard_file_is_named():
    with pytest.raises(ValidationError) as info:
        resolve_wildcards("a __nosuch__ thing", 1)
    assert "__nosuch__" in str(info.value) and "nosuch.txt" in str(info.value)


def test_file_that_includes_itself_is_refused():
    write_wildcards(loop="__loop__ again\n")
    with pytest.raises(ValidationError, match="nest too deeply"):
        resolve_wildcards("__loop__", 1)


def test_combinations_list_every_choice_once():
    write_wildcards(size="small\nlarge\n")
    made = combinations("a __size__ {red|green|blue} {cat|cat}")
    assert len(made) == 6
    assert made[0][0] == "a small red cat"
    assert {p for p, _ in made} == {
        f"a {s} {c} cat" for s in ("small", "large") for c in ("red", "green", "blue")
    }


def test_batch_picks_per_image_seed_and_records_the_template():
    request = GenerationRequest("a {red|green|blue} cat", seed=100, count=4, model="demo")
    made = prepare_requests(request)
    assert [r.seed for r in made] == [100, 101, 102, 103]
    assert all(r.count == 1 for r in made)
    for r in made:
        extras = dict(r.extras)
        assert extras["Wildcard prompt"] == "a {red|green|blue} cat"
        assert r.prompt == resolve_wildcards("a {red|green|blue} cat", r.seed)[0]
        assert extras["Wildcard choices"] == f"{{red|green|blue}}={r.prompt.split()[1]}"


def test_remix_from_metadata_reproduces_the_prompt():
    made = prepare_requests(GenerationRequest("a {red|blue} cat", seed=7, model="demo"))[0]
    again = request_from_parameters(format_parameters(made))
    assert again.prompt == made.prompt
    assert prepare_requests(again) == [again]  # nothing left to resolve


def test_combinations_mode_queues_every_combination_with_one_seed():
    request = GenerationRequest("{a|b|c} {x|y}", negative_prompt="{blur|noise}", seed=5)
    made = prepare_requests(request, combinations=True)
    assert len(made) == 12
    assert {r.seed for r in made} == {5}
    assert len({(r.prompt, r.negative_prompt) for r in made}) == 12
    assert dict(made[0].extras)["Wildcard negative prompt"] == "{blur|noise}"


def test_random_seed_is_fixed_before_picking():
    made = prepare_requests(GenerationRequest("{a|b} cat", count=2))
    assert made[0].seed is not None and made[1].seed == (made[0].seed + 1) % 2**32


def test_prepare_refuses_malformed_weights_after_resolving():
    with pytest.raises(ValidationError, match="never closed"):
        prepare_requests(GenerationRequest("{(red|(blue} cat", seed=1))
