"""Prompt expansion with a tiny random GPT-2 saved to disk and loaded through the real code."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest

from sdtui.errors import ModelNotFoundError, ModelOfflineError, ValidationError
from sdtui.params import GenerationRequest
from sdtui.prompts.expand import (
    ExpandSettings,
    PromptExpander,
    clean_candidate,
    expand_prompt,
)


def build_tiny_gpt2(folder: Path) -> Path:
    """A GPT-2 with random weights and a byte-level BPE vocabulary that encodes any text."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2Tokenizer

    from sdtui.engine.demo import _bytes_to_unicode

    torch.manual_seed(0)
    raw = folder / "raw"
    raw.mkdir(parents=True)
    merges = ["Ġ c", "Ġc a", "a t", "Ġ t", "h e", "Ġt he"]
    tokens = list(_bytes_to_unicode().values()) + [m.replace(" ", "") for m in merges]
    tokens.append("<|endoftext|>")
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(tokens))}
    (raw / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (raw / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", "utf-8")
    tokenizer = GPT2Tokenizer(str(raw / "vocab.json"), str(raw / "merges.txt"))
    end = vocab["<|endoftext|>"]
    config = GPT2Config(
        vocab_size=len(vocab),
        n_positions=128,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=end,
        eos_token_id=end,
    )
    model_dir = folder / "tiny-gpt2"
    tokenizer.save_pretrained(model_dir)
    GPT2LMHeadModel(config).save_pretrained(model_dir)
    return model_dir


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory) -> Path:
    import torch

    torch.set_num_threads(1)
    return build_tiny_gpt2(tmp_path_factory.mktemp("expander"))


@pytest.fixture(scope="module")
def expander(tiny_gpt2) -> PromptExpander:
    expander = PromptExpander(str(tiny_gpt2))
    expander.load()
    return expander


def test_same_prompt_and_seed_give_the_same_candidates(expander):
    first = expander.expand("a cat", count=4, seed=7, max_new_tokens=20)
    again = expander.expand("a cat", count=4, seed=7, max_new_tokens=20)
    other = expander.expand("a cat", count=4, seed=8, max_new_tokens=20)
    assert first.candidates == again.candidates
    assert first.candidates != other.candidates
    assert 1 <= len(first.candidates) <= 4
    assert first.seed == 7 and first.prompt == "a cat"


def test_candidates_continue_the_prompt_and_are_valid_prompts(expander):
    result = expander.expand("a cat", count=6, seed=1, max_new_tokens=30)
    assert len(result.candidates) >= 2
    for text in result.candidates:
        assert text.startswith("a cat") and len(text) > len("a cat")
        assert "\n" not in text
        assert not any(unicodedata.category(ch) == "Cc" for ch in text)
        GenerationRequest(text)  # accepted as a prompt


def test_length_setting_bounds_the_new_text(expander):
    short = expander.expand("a cat", count=3, seed=2, max_new_tokens=2)
    long = expander.expand("a cat", count=3, seed=2, max_new_tokens=40)
    # Byte-level tokens: two new tokens add at most a few characters.
    assert max(len(t) for t in short.candidates) <= len("a cat") + 2 * 8
    assert max(len(t) for t in long.candidates) > max(len(t) for t in short.candidates)


def test_expansion_leaves_global_random_state_alone(expander):
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    expander.expand("a cat", count=2, seed=5, max_new_tokens=5)
    assert torch.equal(torch.rand(3), expected)


def test_random_seed_is_reported_so_it_can_be_repeated(expander):
    result = expander.expand("the cat", count=2, max_new_tokens=8)
    again = expander.expand("the cat", count=2, seed=result.seed, max_new_tokens=8)
    assert again.candidates == result.candidates


def test_expand_prompt_uses_config_section(tiny_gpt2):
    settings = ExpandSettings.from_section(
        {"expander": str(tiny_gpt2), "expand_count": 3, "expand_max_new_tokens": 10}
    )
    result = expand_prompt("a cat", settings, seed=3)
    assert result.model == str(tiny_gpt2)
    assert 1 <= len(result.candidates) <= 3
    assert expand_prompt("a cat", settings, seed=3, count=2).candidates == (
        PromptExpander(str(tiny_gpt2)).expand("a cat", 2, 3, 10).candidates
    )


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ({"expand_count": 0}, "count"),
        ({"expand_count": "four"}, "count"),
        ({"expand_max_new_tokens": 10_000}, "max_new_tokens"),
        ({"expand_temperature": 0}, "temperature"),
        ({"expander": ""}, "expander"),
        ({"expander_device": "gpu"}, "expander_device"),
    ],
)
def test_bad_expansion_settings_are_refused(section, field):
    with pytest.raises(ValidationError, match=field):
        ExpandSettings.from_section(section)


def test_empty_prompt_and_bad_count_are_refused(expander):
    with pytest.raises(ValidationError, match="empty"):
        expander.expand("   ")
    with pytest.raises(ValidationError, match="count"):
        expander.expand("a cat", count=99)


def test_prompt_too_long_for_the_model_window_is_refused(expander):
    with pytest.raises(ValidationError, match="limit of 128"):
        expander.expand("cat " * 60, max_new_tokens=60, seed=1)


def test_hub_model_not_cached_while_offline_says_so():
    # conftest sets HF_HUB_OFFLINE=1; this id is not in the cache.
    with pytest.raises(ModelOfflineError) as info:
        PromptExpander("Gustavosta/MagicPrompt-Stable-Diffusion").load()
    assert "MagicPrompt" in str(info.value) and "local folder" in info.value.hint


def test_missing_or_wrong_folder_is_not_found(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no expander model folder"):
        PromptExpander(str(tmp_path / "nowhere")).load()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="not a causal language model"):
        PromptExpander(str(tmp_path / "empty")).load()


def test_clean_candidate_keeps_one_tidy_line():
    assert clean_candidate("a cat,  sitting\x00 on\tmat,\nsecond line") == "a cat, sitting on mat"
    assert clean_candidate("\x1b[31m red \ufffd, ") == "[31m red"


def test_cli_expand_json_is_seeded(tiny_gpt2, capsys):
    from sdtui.cli import main

    argv = ["expand", "a cat", "--model", str(tiny_gpt2), "--count", "3", "--seed", "11"]
    assert main([*argv, "--max-new-tokens", "12", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main([*argv, "--max-new-tokens", "12", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == first
    assert first["seed"] == 11 and first["prompt"] == "a cat"
    assert 1 <= len(first["candidates"]) <= 3
    assert main([*argv, "--max-new-tokens", "12"]) == 0
    out = capsys.readouterr()
    assert out.out.splitlines()[0] == f"1. {first['candidates'][0]}"
    assert "--seed 11" in out.err


def test_cli_expand_reads_model_from_config(tiny_gpt2, capsys):
    from sdtui.cli import main
    from sdtui.config import config_path

    config_path().parent.mkdir(parents=True, exist_ok=True)
    config_path().write_text(
        f'[prompts]\nexpander = "{tiny_gpt2}"\nexpand_count = 2\n', encoding="utf-8"
    )
    assert main(["expand", "a cat", "--seed", "1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"] == str(tiny_gpt2) and 1 <= len(data["candidates"]) <= 2


def test_cli_expand_offline_fails_clearly(capsys):
    from sdtui.cli import main

    assert main(["expand", "a cat"]) == 1
    assert "not downloaded" in capsys.readouterr().err
