"""Prompt weighting: A1111 syntax parsed strictly, encoded through compel, long prompts chunked."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sdtui.errors import ValidationError
from sdtui.prompts.syntax import check_prompt_syntax, highlight, parse_weighted
from sdtui.prompts.weighting import encode_prompt_kwargs, token_count


@pytest.fixture(scope="module")
def pipe(demo_model_dir):
    import torch
    from diffusers import StableDiffusionPipeline

    torch.set_num_threads(1)
    pipe = StableDiffusionPipeline.from_pretrained(demo_model_dir)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def weights(prompt: str) -> list[tuple[str, float]]:
    return [(f.text, round(f.weight, 4)) for f in parse_weighted(prompt).fragments]


def test_a1111_weights_nest_and_multiply():
    assert weights("a (cat:1.5) dog") == [("a ", 1.0), ("cat", 1.5), (" dog", 1.0)]
    assert weights("((big)) [small]") == [("big", 1.21), (" ", 1.0), ("small", 0.9091)]
    assert weights("(a (b:0.5) c)") == [("a ", 1.1), ("b", 0.55), (" c", 1.1)]
    assert weights(r"a \(literal\) bracket") == [("a (literal) bracket", 1.0)]
    assert weights("style: cinematic, (a:b c:1.2)") == [("style: cinematic, ", 1.0), ("a:b c", 1.2)]


@pytest.mark.parametrize(
    ("prompt", "words"),
    [
        ("a (cat:abc)", "'abc' is not a number"),
        ("a (cat:)", "weight is missing"),
        ("a (cat", "'(' is never closed"),
        ("a cat)", "')' has no '('"),
        ("smile :)", "')' has no '('"),
        ("a (cat]", "']' closes the '('"),
        ("[a:b:0.5]", "prompt editing"),
        ("(cat:-1)", "must be from 0"),
    ],
)
def test_malformed_weighting_is_refused_with_its_place(prompt, words):
    with pytest.raises(ValidationError) as info:
        parse_weighted(prompt)
    assert info.value.field == "prompt"
    assert words in str(info.value)
    assert "column" in str(info.value)


def test_negative_prompt_errors_name_the_negative_prompt():
    with pytest.raises(ValidationError, match="negative prompt"):
        check_prompt_syntax("fine", "blurry (ugly")


def test_highlight_marks_weights_wildcards_and_errors_without_raising():
    text = "a (cat:1.5) {red|blue} __animal__ [dim] (open"
    kinds = {(text[s.start : s.end], s.kind) for s in highlight(text)}
    assert ("cat", "emphasis") in kinds
    assert (":1.5", "weight") in kinds
    assert ("{red|blue}", "wildcard") in kinds
    assert ("__animal__", "wildcard") in kinds
    assert ("dim", "deemphasis") in kinds
    assert ("(", "error") in kinds


def test_plain_prompt_takes_the_plain_path(pipe):
    assert encode_prompt_kwargs(pipe, "a cat on a mat", "blurry") is None


def test_weight_changes_the_embeddings(pipe):
    import torch

    strong = encode_prompt_kwargs(pipe, "a (cat:1.5)", "")
    neutral = encode_prompt_kwargs(pipe, "a (cat:1.0)", "")
    assert strong is not None and neutral is not None
    assert strong["prompt_embeds"].shape == (1, 77, 32)
    assert not torch.allclose(strong["prompt_embeds"], neutral["prompt_embeds"])
    # With weight 1 the words encode as diffusers itself encodes them.
    plain = pipe.encode_prompt("a cat", "cpu", 1, False)[0]
    torch.testing.assert_close(neutral["prompt_embeds"], plain)


def test_weighted_prompt_generates_a_different_image(pipe):
    import numpy as np
    import torch

    def make(**kwargs):
        generator = torch.Generator().manual_seed(3)
        return np.asarray(
            pipe(num_inference_steps=2, height=64, width=64, generator=generator, **kwargs).images[
                0
            ]
        )

    weighted = make(**encode_prompt_kwargs(pipe, "a (cat:1.6) and a dog", ""))
    plain = make(prompt="a cat and a dog")
    assert weighted.shape == (64, 64, 3)
    assert not np.array_equal(weighted, plain)


def test_long_prompt_is_chunked_not_truncated(pipe):
    import torch

    long = "the cat and the dog " * 30
    count, limit = token_count(pipe, long)
    assert limit == 75 and count > 150
    a = encode_prompt_kwargs(pipe, long + "in the rain", "")
    b = encode_prompt_kwargs(pipe, long + "in the snow", "")
    assert a is not None and a["prompt_embeds"].shape[1] > 77
    assert a["prompt_embeds"].shape == a["negative_prompt_embeds"].shape
    # The words after the first window still reach the model.
    assert not torch.allclose(a["prompt_embeds"][:, -77:], b["prompt_embeds"][:, -77:])


def test_long_negative_prompt_alone_is_chunked(pipe):
    out = encode_prompt_kwargs(pipe, "a cat", "blurry and ugly " * 40)
    assert out is not None
    assert out["prompt_embeds"].shape == out["negative_prompt_embeds"].shape
    assert out["negative_prompt_embeds"].shape[1] > 77


def test_encoding_refuses_malformed_prompt(pipe):
    with pytest.raises(ValidationError, match="not a number"):
        encode_prompt_kwargs(pipe, "(cat:big)", "")


def test_token_count_ignores_brackets_and_estimates_by_family(pipe):
    assert token_count(pipe, "((cat))")[0] == token_count(pipe, "cat")[0]
    assert token_count("sd1", "a red cat, (smiling:1.2)") == (5, 75)
    assert token_count("sdxl", "")[0] == 0


def test_sdxl_pair_of_encoders_concatenates_and_pools(tmp_path):
    import torch
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTextModelWithProjection,
        CLIPTokenizer,
    )

    torch.manual_seed(0)
    from sdtui.engine.demo import write_tokenizer_files

    folder = tmp_path / "tokenizer"
    write_tokenizer_files(folder)  # the demo model's byte-level vocabulary
    tokenizer = CLIPTokenizer(
        str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77
    )
    vocab = len(tokenizer)

    def config(hidden):
        return CLIPTextConfig(
            vocab_size=vocab,
            hidden_size=hidden,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            projection_dim=16,
            eos_token_id=tokenizer.eos_token_id,
        )

    class Pipe:
        pass

    pipe = Pipe()
    pipe.tokenizer = pipe.tokenizer_2 = tokenizer
    pipe.text_encoder = CLIPTextModel(config(32)).eval()
    pipe.text_encoder_2 = CLIPTextModelWithProjection(config(48)).eval()
    pipe.config = type("Config", (), {"force_zeros_for_empty_prompt": True})()

    out = encode_prompt_kwargs(pipe, "a (cat:1.3)", "")
    assert out["prompt_embeds"].shape == (1, 77, 80)
    assert out["pooled_prompt_embeds"].shape == (1, 16)
    assert torch.count_nonzero(out["negative_prompt_embeds"]) == 0
    long = encode_prompt_kwargs(pipe, "the cat and the dog " * 30, "blurry")
    assert long["prompt_embeds"].shape[1] > 77
    assert long["prompt_embeds"].shape == long["negative_prompt_embeds"].shape
    assert torch.count_nonzero(long["negative_pooled_prompt_embeds"]) > 0


_PROMPT_CHARS = st.text(alphabet="ab :.1()[]\\{}|_,", max_size=40)


@given(_PROMPT_CHARS)
def test_any_text_parses_or_is_refused_clearly_and_highlight_never_raises(text):
    try:
        parsed = parse_weighted(text)
    except ValidationError as exc:
        assert exc.field == "prompt" and "column" in str(exc)
    else:
        assert all(f.weight >= 0 for f in parsed.fragments)
        assert all(0 <= f.start <= f.end <= len(text) for f in parsed.fragments)
    for span in highlight(text):
        assert 0 <= span.start < span.end <= len(text)


@given(st.text(alphabet=st.characters(blacklist_characters="()[]\\"), max_size=60))
def test_text_without_brackets_is_plain(text):
    parsed = parse_weighted(text)
    assert not parsed.has_syntax and not parsed.is_weighted
    assert parsed.plain_text == text


@given(st.lists(st.sampled_from(["(", "[", "x"]), max_size=12))
def test_balanced_brackets_weigh_by_depth(opens):
    text = (
        "".join(opens)
        + "w"
        + "".join(")" if o == "(" else "]" for o in reversed(opens) if o != "x")
    )
    parsed = parse_weighted(text)
    ups, downs = opens.count("("), opens.count("[")
    word = [f for f in parsed.fragments if f.text.endswith("w")][0]
    assert word.weight == pytest.approx(1.1**ups / 1.1**downs)
