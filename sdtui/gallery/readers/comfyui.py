"""ComfyUI graphs: the API-format `prompt` chunk (node id -> class_type, inputs)
and, when only that is missing, the UI-format `workflow`, converted to the same
shape for the nodes whose widgets we know.

The settings are those of the chain that made the saved image: from the save
node we walk back to the last sampler, then along its latent input to the pass
that started from an empty latent (hires and two-pass graphs). Prompts are
followed through encoders, primitives, reroutes and string/concat nodes;
zeroed-out conditioning is no negative prompt; area and GLIGEN boxes give way
to the main prompt.

A graph is a stranger's data: it may be huge, branch wildly or loop. Every walk
here is linear in the size of the graph (a visited set per walk, a memo per
resolved input, a depth limit) and all of them share one visit budget; when it
runs out the reader keeps what it found and says so.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from sdtui.gallery.readers.base import (
    ImageMetadata,
    exact_int,
    finite_float,
    json_object,
    size_pair,
    text,
)
from sdtui.gallery.readers.samplers import comfy_sampler

Node = dict[str, Any]

SAMPLER_TYPES = frozenset(
    {"KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced"}
)
# Nodes that write or show the final image; the first found are preferred.
_OUTPUT_HINTS = ("Save", "Preview", "Image Save", "Output")
# Inputs that carry prompt text, most specific first.
_TEXT_KEYS = (
    "text",
    "t5xxl",
    "text_g",
    "prompt",
    "string",
    "value",
    "text_l",
    "clip_l",
    "populated_text",
    "wildcard_text",
)
_CONDITIONING_KEYS = ("conditioning", "conditioning_to", "cond", "conditioning_1", "positive")
_AREA_TYPES = ("ConditioningSetArea", "ConditioningSetMask", "ConditioningSetAreaPercentage")
_ZERO_TYPES = ("ConditioningZeroOut",)
_MAX_DEPTH = 120
# Hires and refiner graphs have two to four passes; more is a tangle, not a chain.
_MAX_PASSES = 8
# Visits allowed per node of the graph (each resolver kind visits a node once).
VISITS_PER_NODE = 40


class _Zeroed:
    """The text of conditioning that was zeroed out: no prompt at all."""


ZEROED = _Zeroed()
TextResult = "tuple[str, bool] | _Zeroed | None"  # (text, came through an area node)


class ComfyGraph:
    """An API-format graph with linear-time, budgeted walks over it."""

    def __init__(self, graph: dict[str, Any], budget: int | None = None) -> None:
        self.nodes: dict[str, Node] = {}
        for key, value in graph.items():
            if isinstance(value, dict):
                inputs = value.get("inputs")
                self.nodes[str(key)] = {
                    "class_type": text(value.get("class_type")),
                    "inputs": inputs if isinstance(inputs, dict) else {},
                }
        self.budget = budget if budget is not None else VISITS_PER_NODE * len(self.nodes) + 200
        self.visits = 0
        self.exhausted = False
        self._memo: dict[tuple[str, str], Any] = {}
        self._active: set[tuple[str, str]] = set()
        self._depth = 0

    # -- basics --------------------------------------------------------------

    def link_id(self, value: Any) -> str | None:
        """The node a `[node_id, slot]` input points at, if it exists."""
        if isinstance(value, list) and len(value) == 2 and isinstance(value[1], int):
            node_id = str(value[0])
            if node_id in self.nodes:
                return node_id
        return None

    def inputs(self, node_id: str) -> dict[str, Any]:
        inputs: dict[str, Any] = self.nodes[node_id]["inputs"]  # made a dict in __init__
        return inputs

    def kind(self, node_id: str) -> str:
        kind: str = self.nodes[node_id]["class_type"]  # made a str in __init__
        return kind

    def _spend(self) -> bool:
        if self.exhausted:
            return False
        self.visits += 1
        if self.visits > self.budget:
            self.exhausted = True
            return False
        return True

    def _memoised(self, kind: str, node_id: str, compute: Callable[[str], Any]) -> Any:
        """`compute(node_id)` once per (kind, node); None on a cycle, past the depth or budget."""
        key = (kind, node_id)
        if key in self._memo:
            return self._memo[key]
        if key in self._active or self._depth >= _MAX_DEPTH or not self._spend():
            return None
        self._active.add(key)
        self._depth += 1
        try:
            result = compute(node_id)
        finally:
            self._depth -= 1
            self._active.discard(key)
        self._memo[key] = result
        return result

    def upstream(
        self, start: Any, accept: Callable[[str], bool], skip: tuple[str, ...] = ()
    ) -> str | None:
        """The nearest node above input `start` (or a list of inputs) that `accept`s,
        breadth first, each node once."""
        starts = start if isinstance(start, tuple) else (start,)
        seen: set[str] = set()
        queue: deque[str] = deque()
        for item in starts:
            first = self.link_id(item)
            if first is not None and first not in seen:
                seen.add(first)
                queue.append(first)
        while queue:
            node_id = queue.popleft()
            if not self._spend():
                return None
            if accept(node_id):
                return node_id
            for name, value in self.inputs(node_id).items():
                nxt = self.link_id(value)
                if nxt is not None and nxt not in seen and name not in skip:
                    seen.add(nxt)
                    queue.append(nxt)
        return None

    # -- values --------------------------------------------------------------

    def value(self, value: Any, keys: tuple[str, ...]) -> Any:
        """A literal input, or the first of `keys` on the node it links to (primitives,
        seed generators, KSamplerSelect, BasicScheduler, RandomNoise, CFGGuider...)."""
        node_id = self.link_id(value)
        if node_id is None:
            return None if isinstance(value, list) else value

        def compute(nid: str) -> Any:
            ins = self.inputs(nid)
            for key in keys:
                if key in ins:
                    found = self.value(ins[key], keys)
                    if found is not None:
                        return found
            return None

        return self._memoised("value:" + ",".join(keys), node_id, compute)

    # -- prompt text ---------------------------------------------------------

    def text(self, value: Any) -> Any:
        """The prompt reaching an input: (text, through an area node), ZEROED or None."""
        if isinstance(value, str):
            return (value, False)
        node_id = self.link_id(value)
        if node_id is None:
            return None
        return self._memoised("text", node_id, self._text_of_node)

    def _text_of_node(self, node_id: str) -> Any:
        kind = self.kind(node_id)
        ins = self.inputs(node_id)
        if kind in _ZERO_TYPES:
            return ZEROED
        if kind.startswith("GLIGEN"):  # the box phrase is not the prompt
            return self.text(ins.get("conditioning_to"))
        if "Concat" in kind or "Join" in kind or "Combine" in kind:
            joined = self._joined(kind, ins)
            if joined is not None:
                return joined
        lowered = {str(k).lower(): v for k, v in ins.items()}  # DF_Text_Box has `Text`
        for key in _TEXT_KEYS:
            if key in lowered:
                found = self.text(lowered[key])
                if isinstance(found, tuple) and found[0]:
                    return found
        if any(kind.startswith(a) for a in _AREA_TYPES):
            found = self.text(ins.get("conditioning"))
            return (found[0], True) if isinstance(found, tuple) else found
        for key in _CONDITIONING_KEYS:
            if key in ins:
                found = self.text(ins[key])
                if found is not None:
                    return found
        for key, item in ins.items():  # reroutes and pass-through nodes
            if key not in ("clip", "model", "vae") and self.link_id(item) is not None:
                found = self.text(item)
                if isinstance(found, tuple) and found[0]:
                    return found
        return None

    def _joined(self, kind: str, ins: dict[str, Any]) -> Any:
        """Concat/combine nodes: strings are joined; conditioning keeps the main prompt."""
        parts = [
            self.text(ins[key])
            for key in sorted(ins)
            if key not in ("delimiter", "separator", "clip", "clean_whitespace")
            and (isinstance(ins[key], str) or self.link_id(ins[key]) is not None)
        ]
        found = [p for p in parts if isinstance(p, tuple) and p[0]]
        if not found:
            return ZEROED if any(p is ZEROED for p in parts) else None
        if kind.startswith("Conditioning"):
            main = [p for p in found if not p[1]]
            if kind == "ConditioningConcat":
                return (", ".join(p[0] for p in found), False)
            return (main or found)[0]
        delimiter = ins.get("delimiter", ins.get("separator", ", "))
        return (text(delimiter).join(p[0] for p in found), False)

    def prompt_text(self, value: Any) -> str:
        found = self.text(value)
        return found[0] if isinstance(found, tuple) else ""

    # -- the sampler chain ---------------------------------------------------

    def is_sampler(self, node_id: str) -> bool:
        kind = self.kind(node_id)
        return kind in SAMPLER_TYPES or "KSampler" in kind or kind.startswith("SamplerCustom")

    def samplers(self) -> list[str]:
        def order(node_id: str) -> tuple[int, str]:
            number = exact_int(node_id)
            return (number if number is not None else 0, node_id)

        return sorted((n for n in self.nodes if self.is_sampler(n)), key=order)

    def final_sampler(self) -> str | None:
        """The sampler whose result the save (or preview) node shows."""
        outputs = [
            n
            for n in self.nodes
            if any(h in self.kind(n) for h in _OUTPUT_HINTS) and "images" in self.inputs(n)
        ]
        outputs.sort(key=lambda n: ("Save" not in self.kind(n), n))
        found = self.upstream(tuple(self.inputs(n)["images"] for n in outputs), self.is_sampler)
        if found is not None:
            return found
        samplers = self.samplers()
        if not samplers:
            return None
        # No output node: a sampler above another sampler is not the last pass.
        fed = self._all_upstream(tuple(v for s in samplers for v in self.inputs(s).values()))
        finals = [s for s in samplers if s not in fed]
        return (finals or samplers)[-1]

    def _all_upstream(self, starts: tuple[Any, ...]) -> set[str]:
        seen: set[str] = set()

        def visit(node_id: str) -> bool:
            seen.add(node_id)
            return False  # accept none: the walk visits every node above

        self.upstream(starts, visit)
        return seen

    def latent_input(self, node_id: str) -> Any:
        ins = self.inputs(node_id)
        return ins.get("latent_image", ins.get("samples", ins.get("latent")))

    def chain(self, final: str) -> list[str]:
        """The samplers of the final image's chain, first pass first."""
        passes = [final]
        seen = {final}
        while len(passes) < _MAX_PASSES:
            earlier = self.upstream(
                self.latent_input(passes[-1]),
                self.is_sampler,
                skip=("positive", "negative", "model", "guider", "conditioning"),
            )
            if earlier is None or earlier in seen:
                return passes[::-1]
            seen.add(earlier)
            passes.append(earlier)
        return passes[::-1]


def _sampler_settings(g: ComfyGraph, node_id: str) -> dict[str, Any]:
    """Seed, steps, CFG, sampler, scheduler, prompts and model input of one sampler node."""
    ins = g.inputs(node_id)
    guider = g.link_id(ins.get("guider"))
    guide = g.inputs(guider) if guider else {}
    seed_input = ins.get("seed", ins.get("noise_seed", ins.get("noise")))
    positive = ins.get("positive", guide.get("positive", guide.get("conditioning")))
    positive = positive if positive is not None else guide.get("cond1")
    negative = ins.get("negative", guide.get("negative"))
    cfg = g.value(ins.get("cfg", ins.get("guider")), ("cfg", "value", "float"))
    steps = g.value(ins.get("steps", ins.get("sigmas")), ("steps", "value", "int"))
    sampler = g.value(ins.get("sampler_name", ins.get("sampler")), ("sampler_name", "value"))
    scheduler = g.value(ins.get("scheduler", ins.get("sigmas")), ("scheduler", "value"))
    denoise = g.value(ins.get("denoise", ins.get("sigmas")), ("denoise", "value"))
    return {
        "seed": exact_int(g.value(seed_input, ("seed", "noise_seed", "value", "int", "number"))),
        "steps": exact_int(steps),
        "cfg": finite_float(cfg),
        "sampler": text(sampler),
        "scheduler": text(scheduler),
        "denoise": finite_float(denoise),
        "positive": positive,
        "negative": negative,
        "model": ins.get("model", guide.get("model")),
    }


def _model_name(g: ComfyGraph, model_input: Any) -> str | None:
    def is_loader(node_id: str) -> bool:
        ins = g.inputs(node_id)
        return isinstance(ins.get("ckpt_name") or ins.get("unet_name"), str)

    found = g.upstream(model_input, is_loader)
    if found is None:  # not linked as we expect: any checkpoint loader in the graph
        found = next((n for n in g.nodes if is_loader(n)), None)
    if found is None:
        return None
    ins = g.inputs(found)
    return ins.get("ckpt_name") or ins.get("unet_name")


def _latent_size(g: ComfyGraph, latent_input: Any) -> tuple[int | None, int | None]:
    def is_empty_latent(node_id: str) -> bool:
        ins = g.inputs(node_id)
        sized = ("width" in ins and "height" in ins) or isinstance(ins.get("dimensions"), str)
        return "Latent" in g.kind(node_id) and sized

    found = g.upstream(latent_input, is_empty_latent, skip=("pixels", "image"))
    if found is None:
        return None, None
    ins = g.inputs(found)
    if "width" not in ins:  # rgthree's "1024 x 1024  (square)"
        return size_pair(ins["dimensions"].split("(")[0].replace(" ", ""))
    return (
        exact_int(g.value(ins["width"], ("width", "value", "int"))),
        exact_int(g.value(ins["height"], ("height", "value", "int"))),
    )


def _flux_guidance(g: ComfyGraph, positive: Any) -> float | None:
    found = g.upstream(positive, lambda n: g.kind(n) == "FluxGuidance")
    if found is None:
        return None
    return finite_float(g.value(g.inputs(found).get("guidance"), ("guidance", "value", "float")))


def read_graph(graph: dict[str, Any], budget: int | None = None) -> ImageMetadata | None:
    """The settings of an API-format graph; None when it has no nodes at all."""
    return read_parsed(ComfyGraph(graph, budget))


def read_parsed(g: ComfyGraph) -> ImageMetadata | None:
    """The settings of a graph (its `visits` then say how much walking it took)."""
    if not g.nodes:
        return None
    final = g.final_sampler()
    if final is None:
        return _partial(g, "ComfyUI graph without a sampler this reader knows")
    passes = g.chain(final)
    base = _sampler_settings(g, passes[0])
    notes: list[str] = []
    extras: dict[str, str] = {}
    if base["scheduler"]:
        extras["Schedule type"] = base["scheduler"]
    if base["denoise"] is not None and base["denoise"] != 1.0:
        extras["Denoising strength"] = f"{base['denoise']:g}"
    cfg = base["cfg"]
    guidance = _flux_guidance(g, base["positive"])
    if guidance is not None:
        extras["Guidance"] = f"{guidance:g}"
        if cfg is None or g.kind(passes[0]) == "SamplerCustomAdvanced" and cfg == 1.0:
            cfg = guidance  # Flux: the distilled guidance is diffusers' guidance_scale
    if len(passes) > 1:
        last = _sampler_settings(g, passes[-1])
        if last["steps"] is not None:
            extras["Hires steps"] = str(last["steps"])
        if last["denoise"] is not None:
            extras["Denoising strength"] = f"{last['denoise']:g}"
        notes.append(
            f"{len(passes)} sampler passes make the saved image; "
            "the settings shown are those of its first pass"
        )
    elif len(g.samplers()) > 1:
        notes.append("several samplers in the graph; the settings shown are the saved image's")
    width, height = _latent_size(g, g.latent_input(passes[0]))
    positive = g.prompt_text(base["positive"])
    if not positive:
        notes.append("the prompt could not be followed through this graph")
    if g.exhausted:
        notes.append("the graph is too large or tangled to follow completely")
    return ImageMetadata(
        source="comfyui",
        prompt=positive,
        negative_prompt=g.prompt_text(base["negative"]),
        steps=base["steps"],
        sampler=comfy_sampler(base["sampler"], base["scheduler"]) if base["sampler"] else None,
        cfg_scale=cfg,
        seed=base["seed"],
        width=width,
        height=height,
        model=_model_name(g, base["model"]),
        extras=extras,
        notes=tuple(notes),
    )


def _partial(g: ComfyGraph, why: str) -> ImageMetadata:
    """What a graph we do not understand still tells: a prompt, a model, a size."""
    prompt = ""
    width = height = None
    for node_id in g.nodes:
        if not g._spend():
            break
        kind = g.kind(node_id)
        ins = g.inputs(node_id)
        if not prompt and "TextEncode" in kind:
            prompt = g.prompt_text(ins.get("text", ins.get("text_g", ins.get("t5xxl"))))
        if width is None and "Latent" in kind and "width" in ins:
            width, height = exact_int(ins.get("width")), exact_int(ins.get("height"))
    return ImageMetadata(
        source="comfyui",
        prompt=prompt,
        width=width,
        height=height,
        model=_model_name(g, None),
        notes=(why + "; showing what could be found",),
    )


# ---------------------------------------------------------------------------
# UI-format workflow -> API graph
# ---------------------------------------------------------------------------

# Widget order of the nodes we convert; None marks the "control after generate" widget.
_WIDGETS: dict[str, tuple[str | None, ...]] = {
    "KSampler": ("seed", None, "steps", "cfg", "sampler_name", "scheduler", "denoise"),
    "KSamplerAdvanced": (
        "add_noise",
        "noise_seed",
        None,
        "steps",
        "cfg",
        "sampler_name",
        "scheduler",
        "start_at_step",
        "end_at_step",
        "return_with_leftover_noise",
    ),
    "SamplerCustom": ("add_noise", "noise_seed", None, "cfg"),
    "RandomNoise": ("noise_seed", None),
    "KSamplerSelect": ("sampler_name",),
    "BasicScheduler": ("scheduler", "steps", "denoise"),
    "CFGGuider": ("cfg",),
    "FluxGuidance": ("guidance",),
    "CLIPTextEncode": ("text",),
    "EmptyLatentImage": ("width", "height", "batch_size"),
    "EmptySD3LatentImage": ("width", "height", "batch_size"),
    "CheckpointLoaderSimple": ("ckpt_name",),
    "UNETLoader": ("unet_name", "weight_dtype"),
}


def _is_id(value: Any) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def workflow_to_graph(workflow: dict[str, Any]) -> dict[str, Any] | None:
    """The API-format graph of a UI workflow, for the nodes whose widgets we know."""
    nodes = workflow.get("nodes")
    if not isinstance(nodes, list):
        return None
    sources: dict[int | str, list[Any]] = {}
    links = workflow.get("links")
    for link in links if isinstance(links, list) else []:
        if isinstance(link, list) and len(link) >= 3:
            link_id, origin, slot = link[0], link[1], link[2]
        elif isinstance(link, dict):
            link_id, origin, slot = link.get("id"), link.get("origin_id"), link.get("origin_slot")
        else:
            continue
        if _is_id(link_id) and _is_id(origin):
            sources[link_id] = [str(origin), slot if isinstance(slot, int) else 0]
    graph: dict[str, Any] = {}
    for node in nodes:
        if not isinstance(node, dict) or node.get("mode") in (2, 4):  # muted or bypassed
            continue
        kind = text(node.get("type"))
        widgets = node.get("widgets_values")
        inputs: dict[str, Any] = {}
        if isinstance(widgets, list):
            names = _WIDGETS.get(kind)
            if names is None and widgets:
                names = ("text" if isinstance(widgets[0], str) else "value",)
            for name, value in zip(names or (), widgets, strict=False):
                if name is not None:
                    inputs[name] = value
        slots = node.get("inputs")
        for slot in slots if isinstance(slots, list) else []:
            if isinstance(slot, dict) and isinstance(slot.get("name"), str):
                link = slot.get("link")
                if _is_id(link) and link in sources:
                    inputs[slot["name"]] = sources[link]
        graph[str(node.get("id"))] = {"class_type": kind, "inputs": inputs}
    return graph


def read(prompt_text: str, workflow_text: str) -> ImageMetadata | None:
    """ComfyUI settings from the `prompt` graph, else from the `workflow` (parsed only then)."""
    prompt = json_object(prompt_text) if prompt_text else None
    if prompt:
        meta = read_graph(prompt)
        if meta is not None:
            return meta
    workflow = json_object(workflow_text) if workflow_text else None
    if workflow:
        graph = workflow_to_graph(workflow)
        if graph:
            meta = read_graph(graph)
            if meta is not None:
                return meta.with_changes(notes=(*meta.notes, "read from the editor workflow"))
    return None
