"""Property-based checks: the parameters reader and request validation never fail
with anything but a clear ValidationError, whatever text or values they get."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdtui.errors import ValidationError
from sdtui.params import (
    GenerationRequest,
    format_parameters,
    parse_parameters,
    request_from_parameters,
)

# Text that looks like parameters: keys, colons, commas, quotes, newlines.
parameter_like = st.lists(
    st.one_of(
        st.text(max_size=30),
        st.sampled_from(
            [
                "Steps: ",
                "Sampler: ",
                "Seed: ",
                "Size: ",
                "x",
                ", ",
                '"',
                "\\",
                ":",
                "\n",
                "Negative prompt: ",
                "CFG scale: ",
                "Schedule type: Karras",
                "Model: ",
            ]
        ),
        st.integers(-(2**40), 2**40).map(str),
    ),
    max_size=40,
).map("".join)

any_value = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20)
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(parameter_like)
def test_parse_parameters_never_raises(text):
    parsed = parse_parameters(text)
    assert isinstance(parsed.prompt, str) and isinstance(parsed.settings, dict)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(parameter_like)
def test_request_from_parameters_only_raises_validation_errors(text):
    try:
        req = request_from_parameters(text)
    except ValidationError as exc:
        assert exc.field and str(exc)
    else:
        assert isinstance(req, GenerationRequest)


@settings(max_examples=400)
@given(
    prompt=any_value,
    steps=any_value,
    cfg=any_value,
    seed=any_value,
    width=any_value,
    height=any_value,
    count=any_value,
    scheduler=any_value,
)
def test_request_validation_only_raises_validation_errors(
    prompt, steps, cfg, seed, width, height, count, scheduler
):
    try:
        GenerationRequest(
            prompt=prompt,
            steps=steps,
            cfg=cfg,
            seed=seed,
            width=width,
            height=height,
            count=count,
            scheduler=scheduler,
        )
    except ValidationError as exc:
        assert exc.field in str(exc)


printable_prompt = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\r"), min_size=1
).filter(lambda s: s.strip() and not s.lstrip().startswith("Negative prompt:"))


@settings(max_examples=300)
@given(
    prompt=printable_prompt,
    steps=st.integers(1, 150),
    cfg=st.floats(0, 30).map(lambda f: round(f, 2)),
    seed=st.integers(0, 2**32 - 1),
    size=st.tuples(st.integers(8, 256), st.integers(8, 256)),
)
def test_written_parameters_read_back_the_same(prompt, steps, cfg, seed, size):
    req = GenerationRequest(
        prompt, steps=steps, cfg=cfg, seed=seed, width=size[0] * 8, height=size[1] * 8
    )
    again = request_from_parameters(format_parameters(req))
    assert (again.steps, again.cfg, again.seed, again.width, again.height) == (
        req.steps,
        req.cfg,
        req.seed,
        req.width,
        req.height,
    )
    assert again.prompt == req.prompt.strip()
