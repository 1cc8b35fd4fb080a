"""LoRAs and textual-inversion embeddings on a loaded pipeline, through diffusers' adapter
API (peft).

Each LoRA file is loaded once as its own adapter and stays on the pipeline
between images; a request sets the weights of the ones its prompt names
(`set_adapters`), and adapters no longer named are deleted, so switching LoRAs
never reloads the base model. With none left the LoRA layers are taken out
altogether (`unload_lora_weights`), and the base model gives its own pixels
again. Embeddings are added to the tokenizer for as long as a prompt uses them.
What is loaded is remembered on the pipeline object itself, so it follows the
pipeline when the engine parks it and brings it back.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdtui.addons import (
    AddonError,
    AddonFile,
    AddonLibrary,
    AddonUse,
    embedding_family,
    embedding_pattern,
    family_name,
    lora_family,
    read_safetensors_header,
)
from sdtui.errors import UnsafeCheckpointError
from sdtui.params import GenerationRequest
from sdtui.prompts.loras import strip_lora_tags

if TYPE_CHECKING:
    from diffusers.pipelines.pipeline_utils import DiffusionPipeline
    from transformers.modeling_utils import PreTrainedModel

_STATE = "_sdtui_addons"


@dataclass
class _Loaded:
    """What one pipeline carries: adapter name -> file stamp, token -> file stamp."""

    loras: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    embeddings: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    vectors: dict[str, int] = field(default_factory=dict)  # embedding token -> vector count
    fused: bool = False


def _state(pipe: DiffusionPipeline) -> _Loaded:
    state = getattr(pipe, _STATE, None)
    if state is None:
        state = _Loaded()
        setattr(pipe, _STATE, state)
    return state


def _stamp(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def adapter_name(item: AddonFile) -> str:
    """A peft adapter name for a file (module keys allow no dots)."""
    return "lora_" + re.sub(r"[^0-9A-Za-z_]", "_", item.name)


def _load_tensors(item: AddonFile, allow_pickle: bool) -> dict[str, Any]:
    """The file's tensors on the CPU; pickle files only with the opt-in."""
    if item.is_pickle:
        if not allow_pickle:
            raise UnsafeCheckpointError(
                f"{item.path.name} is a pickle file, which can run code when loaded",
                "use a .safetensors copy, or pass --allow-pickle if you trust it",
            )
        import torch

        try:
            data = torch.load(item.path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise AddonError(f"{item.path.name} could not be read: {_first_line(exc)}") from None
        return data if isinstance(data, dict) else {"": data}
    read_safetensors_header(item.path)  # a clear message for a damaged file
    from safetensors.torch import load_file

    try:
        return load_file(str(item.path), device="cpu")
    except Exception as exc:
        raise AddonError(f"{item.path.name} is damaged: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _check_family(item: AddonFile, family: str, told: str) -> None:
    model = "sd1" if family == "demo" else family
    if told and model and told != model:
        raise AddonError(
            f"{item.kind} {item.name!r} is made for {family_name(told)}; "
            f"the loaded model is {family_name(model)}"
        )


def _file_family(item: AddonFile, tensors: dict[str, Any]) -> str:
    if item.family:
        return item.family
    header = {k: {"shape": list(getattr(v, "shape", []))} for k, v in tensors.items()}
    return lora_family(header) if item.kind == "lora" else embedding_family(header)


# -- LoRAs -------------------------------------------------------------------


def _load_lora(
    pipe: DiffusionPipeline, item: AddonFile, name: str, family: str, allow_pickle: bool
) -> None:
    if not hasattr(pipe, "load_lora_weights"):
        raise AddonError(f"{type(pipe).__name__} models take no LoRAs")
    tensors = _load_tensors(item, allow_pickle)
    _check_family(item, family, _file_family(item, tensors))
    try:
        pipe.load_lora_weights(tensors, adapter_name=name)
    except Exception as exc:
        # A half-loaded adapter would break the next request; take it out again.
        _delete(pipe, [name])
        raise AddonError(
            f"LoRA {item.name!r} does not fit this model: {_first_line(exc)}"
        ) from None
    if not _has_adapter(pipe, name):
        raise AddonError(f"LoRA {item.name!r} has no layers this model has")


def _adapters_on(pipe: DiffusionPipeline) -> set[str]:
    try:
        listed = pipe.get_list_adapters()
    except Exception:
        return set()
    return {name for names in listed.values() for name in names}


def _has_adapter(pipe: DiffusionPipeline, name: str) -> bool:
    return name in _adapters_on(pipe)


def _delete(pipe: DiffusionPipeline, names: list[str]) -> None:
    names = [n for n in names if n in _adapters_on(pipe)]
    if names:
        pipe.delete_adapters(names)


def apply_loras(
    pipe: DiffusionPipeline,
    loras: list[tuple[AddonFile, float]],
    family: str,
    allow_pickle: bool = False,
) -> list[str]:
    """Make exactly `loras` (file, weight) active on `pipe`; returns the adapter names."""
    state = _state(pipe)
    wanted: dict[str, tuple[AddonFile, float, tuple[str, int, int]]] = {}
    for item, weight in loras:
        wanted[adapter_name(item)] = (item, weight, _stamp(item.path))
    if state.fused:
        pipe.unfuse_lora()
        state.fused = False
    # Out first: adapters no longer named, and files changed on disk since loading.
    stale = [
        name
        for name, stamp in state.loras.items()
        if name not in wanted or wanted[name][2] != stamp
    ]
    if stale and len(stale) == len(state.loras) and not wanted:
        pipe.unload_lora_weights()  # the base layers back exactly as they were
        state.loras.clear()
        return []
    _delete(pipe, stale)
    for name in stale:
        state.loras.pop(name, None)
    for name, (item, _weight, stamp) in wanted.items():
        if name not in state.loras:
            _load_lora(pipe, item, name, family, allow_pickle)
            state.loras[name] = stamp
    if wanted:
        names = list(wanted)
        pipe.set_adapters(names, adapter_weights=[wanted[n][1] for n in names])
    return list(wanted)


def fuse_loras(pipe: DiffusionPipeline) -> bool:
    """Fold the active LoRAs into the base weights (faster steps; undone on the next change)."""
    state = _state(pipe)
    if not state.loras or state.fused:
        return False
    pipe.fuse_lora(adapter_names=list(state.loras))
    state.fused = True
    return True


# -- embeddings --------------------------------------------------------------


def _vectors(item: AddonFile, tensors: dict[str, Any]) -> dict[str, Any]:
    """encoder ("clip_l", "clip_g" or "text") -> the embedding's vectors."""
    if "clip_l" in tensors or "clip_g" in tensors:
        return {k: tensors[k] for k in ("clip_l", "clip_g") if k in tensors}
    if "emb_params" in tensors:
        return {"text": tensors["emb_params"]}
    if isinstance(tensors.get("string_to_param"), dict):
        return {"text": tensors["string_to_param"].get("*")}
    values = [v for v in tensors.values() if hasattr(v, "shape")]
    if len(values) == 1:
        return {"text": values[0]}
    raise AddonError(f"embedding {item.name!r} is not a textual-inversion file")


def _encoder_width(encoder: PreTrainedModel) -> int:
    # An embedding layer's weight is a tensor (torch types module attributes loosely).
    return int(encoder.get_input_embeddings().weight.shape[-1])  # type: ignore[index]


def _load_embedding(
    pipe: DiffusionPipeline, item: AddonFile, family: str, allow_pickle: bool
) -> int:
    if not hasattr(pipe, "load_textual_inversion"):
        raise AddonError(f"{type(pipe).__name__} models take no textual-inversion embeddings")
    tensors = _load_tensors(item, allow_pickle)
    vectors = _vectors(item, tensors)
    _check_family(item, family, _file_family(item, tensors))
    sdxl = getattr(pipe, "text_encoder_2", None) is not None
    if sdxl and "clip_g" not in vectors:
        told = embedding_family_of(vectors)
        made = f"is made for {family_name(told)}: it has" if told else "has"
        raise AddonError(
            f"embedding {item.name!r} {made} vectors for one text encoder; "
            "SDXL needs clip_l and clip_g"
        )
    if not sdxl and "text" not in vectors and "clip_l" in vectors:
        raise AddonError(
            f"embedding {item.name!r} is made for SDXL; the loaded model is {family_name(family)}"
        )
    pairs = [("clip_l" if sdxl else "text", pipe.text_encoder, pipe.tokenizer)]
    if sdxl:
        pairs.append(("clip_g", pipe.text_encoder_2, pipe.tokenizer_2))
    count = 0
    for key, encoder, tokenizer in pairs:
        tensor = vectors.get(key)
        if tensor is None:
            raise AddonError(f"embedding {item.name!r} has no vectors for {key}")
        tensor = tensor.reshape(-1, tensor.shape[-1]) if tensor.dim() > 1 else tensor[None]
        if tensor.shape[-1] != _encoder_width(encoder):
            told = embedding_family_of(vectors)
            raise AddonError(
                f"embedding {item.name!r} is made for {family_name(told)} "
                f"(vectors of {tensor.shape[-1]}); the loaded model is {family_name(family)} "
                f"({_encoder_width(encoder)})"
            )
        try:
            pipe.load_textual_inversion(
                tensor,
                token=vector_tokens(item.name, tensor.shape[0]),
                text_encoder=encoder,
                tokenizer=tokenizer,
            )
        except ValueError as exc:
            raise AddonError(
                f"embedding {item.name!r} cannot be added: {_first_line(exc)}",
                "rename the file to a word the tokenizer does not know",
            ) from None
        count = int(tensor.shape[0])
    return count


def vector_tokens(name: str, count: int) -> list[str]:
    """One token per vector: `name`, `name#1`, ... The prompt text is expanded to all of
    them before encoding (`expand_embeddings`), so the weighted-prompt path (compel) and
    diffusers' own path both see every vector; diffusers' `name_1` naming would be
    expanded by the pipeline alone."""
    return [name] + [f"{name}#{i}" for i in range(1, count)]


def expand_embeddings(text: str, counts: dict[str, int]) -> str:
    """`text` with each multi-vector embedding's name followed by its other tokens."""
    for name, count in counts.items():
        if count > 1 and text:
            tokens = " ".join(vector_tokens(name, count))
            text = embedding_pattern(name).sub(_constant(tokens), text)
    return text


def _constant(text: str) -> Callable[[re.Match[str]], str]:
    """A `re.sub` replacement that inserts `text` as it is (no backslash escapes)."""
    return lambda _match: text


def embedding_family_of(vectors: dict[str, Any]) -> str:
    header = {k: {"shape": list(v.shape)} for k, v in vectors.items() if hasattr(v, "shape")}
    if "text" in header:
        header = {"emb_params": header["text"]}
    return embedding_family(header)


def _unload_embedding(pipe: DiffusionPipeline, token: str) -> None:
    pairs = [(pipe.tokenizer, pipe.text_encoder)]
    if getattr(pipe, "text_encoder_2", None) is not None:
        pairs.append((pipe.tokenizer_2, pipe.text_encoder_2))
    for tokenizer, encoder in pairs:
        tokens = [t for t in tokenizer.get_added_vocab() if t == token or t.startswith(token + "#")]
        if tokens:
            pipe.unload_textual_inversion(tokens, tokenizer=tokenizer, text_encoder=encoder)


def apply_embeddings(
    pipe: DiffusionPipeline, embeddings: list[AddonFile], family: str, allow_pickle: bool = False
) -> None:
    """Make exactly `embeddings` known to the tokenizer(s); others are taken out again,
    so a prompt without them is tokenized as before."""
    state = _state(pipe)
    wanted = {item.name: (item, _stamp(item.path)) for item in embeddings}
    for token, stamp in list(state.embeddings.items()):
        if token not in wanted or wanted[token][1] != stamp:
            _unload_embedding(pipe, token)
            del state.embeddings[token]
            state.vectors.pop(token, None)
    for token, (item, stamp) in wanted.items():
        if token not in state.embeddings:
            try:
                count = _load_embedding(pipe, item, family, allow_pickle)
            except BaseException:
                _unload_embedding(pipe, token)  # one encoder may have taken it already
                raise
            state.embeddings[token] = stamp
            state.vectors[token] = count


# -- one request ---------------------------------------------------------------


def prepare_pipeline(
    pipe: DiffusionPipeline,
    request: GenerationRequest,
    library: AddonLibrary | None,
    family: str,
    allow_pickle: bool = False,
) -> tuple[GenerationRequest, str, str]:
    """Put the request's LoRAs and embeddings on `pipe`. Returns the request with their
    `Lora hashes`/`TI hashes` in its extras (hashed here, on the engine's thread: a
    large file takes a moment the first time), and the prompt and negative prompt as
    the text encoder should see them: the `<lora:...>` tags taken out, each
    multi-vector embedding's name followed by its other tokens."""
    use = library.resolve(request) if library is not None else AddonUse()
    if library is not None and (use.loras or use.embeddings):
        request = library.record(request, use)
    if library is None and "<" in request.prompt:
        from sdtui.prompts.loras import find_lora_tags

        if find_lora_tags(request.prompt):
            raise AddonError("this prompt names LoRAs, but no LoRA folder is set")
    if use.loras or _state(pipe).loras:
        apply_loras(pipe, list(use.loras), family, allow_pickle)
    if use.embeddings or _state(pipe).embeddings:
        apply_embeddings(pipe, list(use.embeddings), family, allow_pickle)
    counts = _state(pipe).vectors
    return (
        request,
        expand_embeddings(strip_lora_tags(request.prompt), counts),
        expand_embeddings(strip_lora_tags(request.negative_prompt), counts),
    )


def loaded_adapters(pipe: DiffusionPipeline) -> tuple[list[str], list[str]]:
    """(LoRA adapter names, embedding tokens) on `pipe`, for tests and the status line."""
    state = _state(pipe)
    return list(state.loras), list(state.embeddings)
