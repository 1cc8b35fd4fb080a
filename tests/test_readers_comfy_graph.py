"""ComfyUI graphs from strangers: cycles, wide fan-out and depth are walked in
linear time under a visit budget, and the settings of ordinary graphs stay right."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdtui.gallery.metadata import read_metadata
from sdtui.gallery.readers.comfyui import VISITS_PER_NODE, ComfyGraph, read_parsed


def write_png(path: Path, texts: dict[str, str]) -> Path:
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in texts.items():
        info.add_text(key, value)
    Image.new("RGB", (64, 64)).save(path, pnginfo=info)
    return path


def _edges(graph: dict) -> int:
    return sum(
        1
        for node in graph.values()
        for value in node["inputs"].values()
        if isinstance(value, list) and len(value) == 2
    )


def _walk(graph: dict) -> tuple[ComfyGraph, object]:
    g = ComfyGraph(graph)
    return g, read_parsed(g)


def _sampler(positive: list, negative: list, latent: list | None = None) -> dict:
    inputs = {
        "seed": 7,
        "steps": 20,
        "cfg": 6.5,
        "sampler_name": "euler",
        "scheduler": "normal",
        "denoise": 1.0,
        "positive": positive,
        "negative": negative,
    }
    if latent is not None:
        inputs["latent_image"] = latent
    return {"class_type": "KSampler", "inputs": inputs}


def fan_out_graph(levels: int, width: int) -> dict:
    """Each level's node links `width` times to the next: 6**12 paths for the naive walk."""
    keys = ("text", "conditioning", "conditioning_to", "conditioning_1", "positive", "value")
    graph: dict = {"s": _sampler(["n0", 0], ["n0", 0])}
    for level in range(levels):
        graph[f"n{level}"] = {
            "class_type": "Reroute",
            "inputs": {key: [f"n{level + 1}", 0] for key in keys[:width]},
        }
    graph[f"n{levels}"] = {"class_type": "CLIPTextEncode", "inputs": {"text": "leaf prompt"}}
    return graph


_LOOP_KEYS = ("conditioning_1", "conditioning_2", "conditioning", "conditioning_to", "text")
_LOOP_TARGETS = (["6", 0], ["7", 0], ["8", 0], ["6", 0], ["7", 0])


def cyclic_graph() -> dict:
    """The shape of the 801-byte file that took 16 s: prompts that loop back on themselves."""
    return {
        "3": _sampler(["6", 0], ["7", 0], ["5", 0]),
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 768}},
        # Three nodes whose every input points back into the three: loops and fan-out.
        **{
            node: {"class_type": kind, "inputs": dict(zip(_LOOP_KEYS, _LOOP_TARGETS, strict=True))}
            for node, kind in (("6", "ConditioningCombine"), ("7", "Reroute"), ("8", "Note"))
        },
        "9": {"class_type": "SaveImage", "inputs": {"images": ["10", 0]}},
        "10": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["10", 0]}},
    }


def test_twelve_level_fan_out_reads_the_leaf_prompt_in_linear_visits(tmp_path: Path) -> None:
    graph = fan_out_graph(levels=12, width=6)
    g, meta = _walk(graph)
    assert meta is not None and meta.prompt == "leaf prompt"
    assert not g.exhausted
    assert g.visits <= VISITS_PER_NODE * len(graph)
    # Through the file too, as `info`, `import` and `list` read it.
    png = write_png(tmp_path / "fan.png", {"prompt": json.dumps(graph)})
    assert read_metadata(png).prompt == "leaf prompt"


def test_cyclic_graph_ends_and_keeps_what_it_can(tmp_path: Path) -> None:
    graph = cyclic_graph()
    g, meta = _walk(graph)
    assert meta is not None and meta.source == "comfyui"
    assert (meta.seed, meta.steps, meta.width, meta.height) == (7, 20, 512, 768)
    assert meta.prompt == ""  # the loop holds no text
    assert "could not be followed" in " ".join(meta.notes)
    assert g.visits <= VISITS_PER_NODE * len(graph)
    png = write_png(tmp_path / "cycle.png", {"prompt": json.dumps(graph)})
    assert read_metadata(png).seed == 7


def test_a_budget_that_runs_out_is_reported_not_hung() -> None:
    graph = fan_out_graph(levels=30, width=3)
    g = ComfyGraph(graph, budget=10)
    meta = read_parsed(g)
    assert g.exhausted and g.visits <= 11
    assert meta is not None and "too large" in " ".join(meta.notes)


_KINDS = (
    "KSampler",
    "KSamplerAdvanced",
    "SamplerCustomAdvanced",
    "CFGGuider",
    "RandomNoise",
    "BasicScheduler",
    "KSamplerSelect",
    "CLIPTextEncode",
    "ConditioningCombine",
    "ConditioningConcat",
    "ConditioningZeroOut",
    "ConditioningSetArea",
    "GLIGENTextBoxApply",
    "StringConcatenate",
    "PrimitiveString",
    "Reroute",
    "VAEDecode",
    "SaveImage",
    "EmptyLatentImage",
    "LatentUpscale",
    "CheckpointLoaderSimple",
    "FluxGuidance",
)
_INPUTS = (
    "positive", "negative", "latent_image", "samples", "images", "model", "text", "text_g",
    "conditioning", "conditioning_1", "conditioning_2", "conditioning_to", "guider", "sigmas",
    "sampler", "noise", "seed", "steps", "cfg", "string_a", "string_b", "value", "width",
    "height", "ckpt_name",
)  # fmt: skip


@st.composite
def random_graphs(draw: st.DrawFn) -> dict:
    size = draw(st.integers(1, 40))
    ids = [str(i) for i in range(size)]
    graph = {}
    for node_id in ids:
        names = draw(st.lists(st.sampled_from(_INPUTS), max_size=6, unique=True))
        inputs = {}
        for name in names:
            # Links to any node (itself included: cycles), or a literal.
            inputs[name] = draw(
                st.one_of(
                    st.sampled_from(ids).map(lambda target: [target, 0]),
                    st.integers(-(2**64), 2**64),
                    st.text(max_size=8),
                )
            )
        graph[node_id] = {"class_type": draw(st.sampled_from(_KINDS)), "inputs": inputs}
    return graph


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graphs())
def test_random_graphs_are_walked_within_a_linear_bound(graph: dict) -> None:
    g, meta = _walk(graph)
    assert meta is not None and meta.source == "comfyui"
    # Every resolver visits a node at most once: the walk is linear in the graph.
    assert g.visits <= 30 * len(graph) + 2 * _edges(graph) + 20
    assert not g.exhausted


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 12), st.integers(1, 6))
def test_fan_out_of_any_depth_and_width_stays_linear(levels: int, width: int) -> None:
    graph = fan_out_graph(levels, width)
    g, meta = _walk(graph)
    assert meta is not None and meta.prompt == "leaf prompt"
    assert g.visits <= 30 * len(graph) + 20


def test_gallery_commands_finish_on_hostile_graphs(
    gallery_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from sdtui.cli import main

    gallery_dir.mkdir(parents=True, exist_ok=True)
    write_png(gallery_dir / "fan.png", {"prompt": json.dumps(fan_out_graph(12, 6))})
    write_png(gallery_dir / "cycle.png", {"prompt": json.dumps(cyclic_graph())})
    outside = write_png(tmp_path / "fan-again.png", {"prompt": json.dumps(fan_out_graph(14, 5))})
    assert main(["gallery", "list", "--json"]) == 0  # indexes the two files first
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    assert sorted(e["prompt"] for e in listed) == ["", "leaf prompt"]
    assert main(["gallery", "rebuild"]) == 0
    assert main(["gallery", "import", str(outside)]) == 0
    assert main(["info", str(gallery_dir / "cycle.png")]) == 0
