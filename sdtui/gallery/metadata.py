"""Settings stored in image files: ours, AUTOMATIC1111/Forge, ComfyUI and InvokeAI.

We write two PNG text chunks: `parameters` (the A1111 text that other tools'
PNG-info readers show) and `sdtui` (JSON with the whole request, lossless).
Reading never trusts the file: any image, malformed or hostile, gives either
an `ImageMetadata` or an `ImageReadError` with a one-line reason.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdtui import __version__
from sdtui.errors import SdtuiError, ValidationError
from sdtui.params import GenerationRequest, format_parameters, parse_parameters
from sdtui.regular_files import NotRegularFileError, open_regular
from sdtui.schedulers import DEFAULT_SCHEDULER, canonical_scheduler

if TYPE_CHECKING:
    from PIL.PngImagePlugin import PngInfo

    from sdtui.results import GeneratedImage, GenerationResult

log = logging.getLogger(__name__)

SDTUI_CHUNK = "sdtui"
PARAMETERS_CHUNK = "parameters"
FORMAT_VERSION = 1
# Text chunks longer than this are ignored: a ComfyUI workflow is a few hundred
# kilobytes at most, and parsing megabytes of JSON from a stranger's file is a
# cheap way to stall the gallery.
MAX_TEXT_CHARS = 2_000_000
SOURCES = ("sdtui", "a1111", "comfyui", "invokeai", "none")
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


class ImageReadError(SdtuiError):
    """A file is not an image we can read (not an image, truncated, too large)."""


@dataclass(frozen=True)
class ImageMetadata:
    """What an image file says about how it was made; fields are None when unknown."""

    source: str = "none"
    prompt: str = ""
    negative_prompt: str = ""
    steps: int | None = None
    sampler: str | None = None
    cfg_scale: float | None = None
    seed: int | None = None
    width: int | None = None
    height: int | None = None
    model: str | None = None
    extras: dict[str, str] = field(default_factory=dict)
    # Ours only: the exact request and the generation record (device, timings, ...).
    request_dict: dict[str, Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def request(self) -> GenerationRequest:
        """A request that makes this image again (or as close as our settings allow).

        A sampler we do not know is kept in `extras` and the default is used.
        Raises ValidationError when the file holds no prompt or out-of-range values.
        """
        if self.request_dict is not None:
            try:
                return GenerationRequest.from_dict(self.request_dict)
            except TypeError as exc:  # a hand-edited record missing a field
                raise ValidationError("image", f"holds an incomplete request ({exc})") from None
        if not self.prompt.strip():
            raise ValidationError("image", "holds no prompt to make it again")
        extras = dict(self.extras)
        fields: dict[str, Any] = {"prompt": self.prompt, "negative_prompt": self.negative_prompt}
        if self.sampler:
            try:
                fields["scheduler"] = canonical_scheduler(self.sampler)
            except KeyError:
                extras.setdefault("Sampler", self.sampler)
                fields["scheduler"] = DEFAULT_SCHEDULER
        for name, value in (
            ("steps", self.steps),
            ("cfg", self.cfg_scale),
            ("seed", self.seed),
            ("width", self.width),
            ("height", self.height),
            ("model", self.model),
        ):
            if value is not None:
                fields[name] = value
        fields["extras"] = tuple(extras.items())
        return GenerationRequest(**fields)

    def to_json_dict(self) -> dict[str, Any]:
        """The settings as plain JSON values (what `--json` prints)."""
        return {
            "prompt": self.prompt,
            "negative_prompt": self.negative_prompt,
            "steps": self.steps,
            "sampler": self.sampler,
            "cfg_scale": self.cfg_scale,
            "seed": self.seed,
            "width": self.width,
            "height": self.height,
            "model": self.model,
            "extras": dict(self.extras),
            "source": self.source,
        }


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------


def sdtui_record(
    generated: GeneratedImage, result: GenerationResult, created: datetime | None = None
) -> dict[str, Any]:
    """The JSON stored in our `sdtui` chunk for one image of a result."""
    created = created or datetime.now(timezone.utc)
    info = json.loads(json.dumps(result.info, default=str)) if result.info else {}
    return {
        "format": FORMAT_VERSION,
        "sdtui_version": __version__,
        "request": generated.image_request().to_dict(),
        "seed": generated.seed,
        "index": generated.index,
        "batch_count": generated.request.count,
        "model_id": result.model_id,
        "device": result.device,
        "dtype": result.dtype,
        "load_seconds": round(result.load_seconds, 3),
        "generate_seconds": round(result.generate_seconds, 3),
        "created": created.isoformat(timespec="seconds"),
        "info": info,
    }


def png_info(
    generated: GeneratedImage, result: GenerationResult, created: datetime | None = None
) -> PngInfo:
    """The text chunks of one saved image: `parameters` (A1111) and `sdtui` (JSON)."""
    from PIL.PngImagePlugin import PngInfo

    pnginfo = PngInfo()
    # add_text switches to iTXt (UTF-8) itself when the text is not Latin-1, as A1111 does.
    pnginfo.add_text(PARAMETERS_CHUNK, format_parameters(generated.request, generated.seed))
    record = json.dumps(sdtui_record(generated, result, created), ensure_ascii=False)
    pnginfo.add_itxt(SDTUI_CHUNK, record, zip=len(record) > 4096)
    return pnginfo


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------


def read_text_chunks(path: Path) -> tuple[dict[str, str], tuple[int, int], str]:
    """The text chunks, size and format of an image, without decoding its pixels."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with open_regular(path) as fh, Image.open(fh) as im:
                info = dict(im.info)
                size = im.size
                fmt = im.format or ""
                if fmt == "JPEG" or fmt == "WEBP":
                    info.update(_exif_parameters(im))
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageReadError(f"{path}: is a folder, not an image") from None
    except NotRegularFileError as exc:
        raise ImageReadError(f"{path}: {exc}") from None
    except PermissionError:
        raise ImageReadError(f"{path}: permission denied") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image file") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageReadError(
            f"{path}: image is too large to open safely", "over Pillow's MAX_IMAGE_PIXELS"
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        # Pillow reports damaged chunks and oversized text as any of these.
        raise ImageReadError(f"{path}: damaged or unreadable image ({exc})") from None
    texts: dict[str, str] = {}
    for key, value in info.items():
        if not isinstance(key, str) or not isinstance(value, str):
            continue  # gamma, dpi, icc profiles, raw exif, ...
        if len(value) > MAX_TEXT_CHARS:
            log.warning("%s: ignoring the %r text chunk (%d characters)", path, key, len(value))
            continue
        texts[key] = str(value)
    return texts, size, fmt


def _exif_parameters(im: Any) -> dict[str, str]:
    """A1111 stores `parameters` in EXIF UserComment of JPEG and WebP files."""
    try:
        comment = im.getexif().get_ifd(0x8769).get(0x9286)
    except Exception:  # noqa: BLE001 - any damaged EXIF just means "no metadata"
        return {}
    if isinstance(comment, bytes):
        if comment.startswith(b"UNICODE\0"):
            body = comment[8:]
            encoding = "utf-16-le" if body[:1] != b"\0" and body[1:2] == b"\0" else "utf-16-be"
            comment = body.decode(encoding, "replace")
        else:
            comment = comment.split(b"\0", 1)[-1].decode("utf-8", "replace")
    if isinstance(comment, str) and comment.strip():
        return {PARAMETERS_CHUNK: comment.strip("\0")}
    return {}


def png_is_complete(path: Path) -> bool:
    """True when a PNG ends with its IEND chunk (a download or copy cut short does not)."""
    try:
        with open_regular(path) as fh:
            fh.seek(0, 2)
            if fh.tell() < len(_PNG_END) + 8:
                return False
            fh.seek(-len(_PNG_END), 2)
            return fh.read() == _PNG_END
    except OSError:
        return False


def read_metadata(path: Path, require_complete: bool = False) -> ImageMetadata:
    """The settings stored in an image file, from whichever tool wrote it.

    Raises ImageReadError for files that are not readable images (and, with
    `require_complete`, for PNGs cut short). Never raises anything else.
    """
    texts, (width, height), fmt = read_text_chunks(path)
    if require_complete and fmt == "PNG" and not png_is_complete(path):
        raise ImageReadError(f"{path}: the PNG is truncated")
    try:
        meta = metadata_from_texts(texts)
    except Exception as exc:  # noqa: BLE001 - hostile metadata must never crash a reader
        log.warning("%s: unreadable metadata (%s)", path, exc)
        meta = ImageMetadata()
    # The settings' size is what makes the image again (A1111's hires fix upscales
    # after it); the pixel size only fills in when the settings hold none.
    if meta.width is None or meta.height is None:
        meta = _replace(meta, width=width, height=height)
    return meta


def metadata_from_texts(texts: dict[str, str]) -> ImageMetadata:
    """Pick the richest record present: ours, then InvokeAI, ComfyUI, A1111."""
    if SDTUI_CHUNK in texts:
        meta = _from_sdtui(texts[SDTUI_CHUNK])
        if meta is not None:
            return meta
    if "invokeai_metadata" in texts or "sd-metadata" in texts:
        meta = _from_invokeai(texts.get("invokeai_metadata") or texts.get("sd-metadata", ""))
        if meta is not None:
            return meta
    if "prompt" in texts or "workflow" in texts:
        meta = _from_comfyui(texts.get("prompt", ""), texts.get("workflow", ""))
        if meta is not None:
            return meta
    if PARAMETERS_CHUNK in texts:
        return _from_parameters(texts[PARAMETERS_CHUNK])
    return ImageMetadata()


def _replace(meta: ImageMetadata, **changes: Any) -> ImageMetadata:
    import dataclasses

    return dataclasses.replace(meta, **changes)


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _number(value: Any) -> float | None:
    """A finite-or-infinite number read from metadata, None for anything else (NaN too)."""
    if isinstance(value, bool):
        return None
    try:
        number = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return None if number != number else number


def _int(value: Any) -> int | None:
    number = _number(value)
    if number is None or abs(number) > 2**63 or not number.is_integer():
        return None
    return int(number)


def _float(value: Any) -> float | None:
    number = _number(value)
    return number if number is not None and abs(number) < 1e9 else None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _from_sdtui(text: str) -> ImageMetadata | None:
    record = _json_object(text)
    request = record.get("request") if record else None
    if not isinstance(request, dict) or not isinstance(request.get("prompt"), str):
        return None
    extras = request.get("extras")
    info = {k: v for k, v in record.items() if k != "request"}
    return ImageMetadata(
        source="sdtui",
        prompt=_text(request.get("prompt")),
        negative_prompt=_text(request.get("negative_prompt")),
        steps=_int(request.get("steps")),
        sampler=_text(request.get("scheduler")) or None,
        cfg_scale=_float(request.get("cfg")),
        seed=_int(record.get("seed", request.get("seed"))),
        width=_int(request.get("width")),
        height=_int(request.get("height")),
        model=_text(request.get("model")) or None,
        extras={str(k): str(v) for k, v in extras.items()} if isinstance(extras, dict) else {},
        request_dict=request,
        info=info,
    )


def _from_parameters(text: str) -> ImageMetadata:
    stripped = text.strip()
    if stripped.startswith("{"):
        fooocus = _json_object(stripped)
        if fooocus is not None:
            return _from_fooocus_json(fooocus)
    parsed = parse_parameters(text)
    s = dict(parsed.settings)
    sampler = s.pop("Sampler", None)
    schedule = s.get("Schedule type", "")
    if sampler and schedule and schedule.lower() not in ("automatic", "uniform"):
        if schedule.lower() not in sampler.lower():
            sampler = f"{sampler} {schedule}"
    width = height = None
    if "Size" in s:
        w, _, h = s.pop("Size").partition("x")
        width, height = _int(w), _int(h)
    return ImageMetadata(
        source="a1111",
        prompt=parsed.prompt,
        negative_prompt=parsed.negative_prompt,
        steps=_int(s.pop("Steps", None)),
        sampler=sampler,
        cfg_scale=_float(s.pop("CFG scale", None)),
        seed=_int(s.pop("Seed", None)),
        width=width,
        height=height,
        model=s.pop("Model", None),
        extras=s,
    )


def _from_fooocus_json(data: dict[str, Any]) -> ImageMetadata:
    """Fooocus's own scheme: a JSON object in the `parameters` chunk."""
    width = height = None
    resolution = _text(data.get("resolution")).strip("()[] ")
    if resolution:
        w, _, h = resolution.replace("x", ",").partition(",")
        width, height = _int(w), _int(h)
    known = {"prompt", "negative_prompt", "steps", "sampler", "guidance_scale", "seed"}
    known |= {"resolution", "base_model"}
    return ImageMetadata(
        source="a1111",
        prompt=_text(data.get("prompt")),
        negative_prompt=_text(data.get("negative_prompt")),
        steps=_int(data.get("steps")),
        sampler=_text(data.get("sampler")) or None,
        cfg_scale=_float(data.get("guidance_scale")),
        seed=_int(data.get("seed")),
        width=width,
        height=height,
        model=_text(data.get("base_model")) or None,
        extras={
            str(k): v if isinstance(v, str) else json.dumps(v)
            for k, v in data.items()
            if k not in known
        },
    )


# ComfyUI and InvokeAI sampler spellings that are not already our aliases.
_COMFY_SAMPLERS = {
    "euler": "Euler",
    "euler_ancestral": "Euler a",
    "heun": "Heun",
    "dpm_2": "DPM2",
    "dpm_2_ancestral": "DPM2 a",
    "lms": "LMS",
    "dpmpp_2m": "DPM++ 2M",
    "dpmpp_sde": "DPM++ SDE",
    "dpmpp_2m_sde": "DPM++ 2M SDE",
    "ddim": "DDIM",
    "ddpm": "DDPM",
    "uni_pc": "UniPC",
    "lcm": "LCM",
    "deis": "DEIS",
}
_INVOKE_SAMPLERS = {
    **_COMFY_SAMPLERS,
    "euler_a": "Euler a",
    "kdpm_2": "DPM2",
    "kdpm_2_a": "DPM2 a",
    "pndm": "PNDM",
    "unipc": "UniPC",
    "k_lms": "LMS",
    "k_euler": "Euler",
    "k_euler_a": "Euler a",
    "k_heun": "Heun",
    "k_dpm_2": "DPM2",
    "k_dpm_2_a": "DPM2 a",
    "plms": "PNDM",
}


def _comfy_sampler(sampler: str, scheduler: str) -> str:
    name = _COMFY_SAMPLERS.get(sampler, sampler)
    if scheduler == "karras":
        name += " Karras"
    elif scheduler and scheduler not in ("normal", "simple"):
        name += f" {scheduler}"
    return name


def _invoke_sampler(name: str) -> str:
    karras = name.endswith("_k")
    base = name[:-2] if karras else name
    known = _INVOKE_SAMPLERS.get(base, base)
    return f"{known} Karras" if karras else known


def _from_comfyui(prompt_text: str, workflow_text: str) -> ImageMetadata | None:
    graph = _json_object(prompt_text) if prompt_text else None
    if graph:
        meta = _from_comfy_api_graph(graph)
        if meta is not None:
            return meta
    workflow = _json_object(workflow_text) if workflow_text else None
    if workflow:
        return _from_comfy_workflow(workflow)
    return None


_SAMPLER_TYPES = ("KSampler", "KSamplerAdvanced", "SamplerCustom")
_TEXT_INPUTS = ("text", "text_g", "string", "value", "prompt", "populated_text")


def _from_comfy_api_graph(graph: dict[str, Any]) -> ImageMetadata | None:
    """The API-format `prompt` graph: node id -> {class_type, inputs}; links are [id, slot]."""
    nodes = {str(k): v for k, v in graph.items() if isinstance(v, dict)}

    def node(link: Any) -> dict[str, Any] | None:
        if isinstance(link, list) and link and str(link[0]) in nodes:
            return nodes[str(link[0])]
        return None

    def inputs(n: dict[str, Any] | None) -> dict[str, Any]:
        value = n.get("inputs") if n else None
        return value if isinstance(value, dict) else {}

    def text_of(link: Any, depth: int = 0) -> str:
        """The prompt text reaching an input, following links through encoders and primitives."""
        if isinstance(link, str):
            return link
        n = node(link)
        if n is None or depth > 8:
            return ""
        ins = inputs(n)
        for key in _TEXT_INPUTS:
            if key in ins:
                found = text_of(ins[key], depth + 1)
                if found:
                    return found
        for key in ("conditioning", "conditioning_to", "conditioning_1", "positive"):
            if key in ins:
                found = text_of(ins[key], depth + 1)
                if found:
                    return found
        return ""

    def value_of(value: Any, keys: tuple[str, ...], depth: int = 0) -> Any:
        """A number that may come through a primitive node (seed generators, ...)."""
        n = node(value)
        if n is None or depth > 4:
            return value
        ins = inputs(n)
        for key in keys:
            if key in ins:
                return value_of(ins[key], keys, depth + 1)
        return None

    def sort_key(node_id: str) -> tuple[int, str]:
        return (_int(node_id) or 0, node_id)

    samplers = [
        nodes[k]
        for k in sorted(nodes, key=sort_key)
        if nodes[k].get("class_type") in _SAMPLER_TYPES
    ]
    if not samplers:
        return None

    def latent_source(n: dict[str, Any]) -> dict[str, Any] | None:
        return node(inputs(n).get("latent_image"))

    # The first pass of a hires-fix graph starts from an empty latent.
    first = next(
        (s for s in samplers if "Empty" in str((latent_source(s) or {}).get("class_type", ""))),
        samplers[0],
    )
    ins = inputs(first)
    seed = _int(value_of(ins.get("seed", ins.get("noise_seed")), ("seed", "noise_seed", "value")))
    sampler_name = _text(value_of(ins.get("sampler_name"), ("sampler_name", "value")))
    scheduler = _text(value_of(ins.get("scheduler"), ("scheduler", "value")))
    latent = inputs(latent_source(first))
    model = None
    for n in nodes.values():
        ckpt = inputs(n).get("ckpt_name") or inputs(n).get("unet_name")
        if isinstance(ckpt, str):
            model = ckpt
            break
    extras: dict[str, str] = {}
    if scheduler:
        extras["Schedule type"] = scheduler
    denoise = _float(ins.get("denoise"))
    if denoise is not None and denoise != 1.0:
        extras["Denoising strength"] = f"{denoise:g}"
    return ImageMetadata(
        source="comfyui",
        prompt=text_of(ins.get("positive")),
        negative_prompt=text_of(ins.get("negative")),
        steps=_int(value_of(ins.get("steps"), ("steps", "value"))),
        sampler=_comfy_sampler(sampler_name, scheduler) if sampler_name else None,
        cfg_scale=_float(value_of(ins.get("cfg"), ("cfg", "value"))),
        seed=seed,
        width=_int(latent.get("width")),
        height=_int(latent.get("height")),
        model=model,
        extras=extras,
    )


def _from_comfy_workflow(workflow: dict[str, Any]) -> ImageMetadata | None:
    """The UI-format `workflow` (only when the `prompt` graph is missing): widget values."""
    nodes_list = workflow.get("nodes")
    if not isinstance(nodes_list, list):
        return None
    nodes = {n.get("id"): n for n in nodes_list if isinstance(n, dict)}
    links = {}
    for link in workflow.get("links") or []:
        if isinstance(link, list) and len(link) >= 4:
            links[link[0]] = link[1]  # link id -> source node id

    def widgets(n: dict[str, Any] | None) -> list[Any]:
        value = n.get("widgets_values") if n else None
        return value if isinstance(value, list) else []

    def source_of(n: dict[str, Any], input_name: str) -> dict[str, Any] | None:
        for slot in n.get("inputs") or []:
            if isinstance(slot, dict) and slot.get("name") == input_name:
                return nodes.get(links.get(slot.get("link")))
        return None

    sampler = next((n for n in nodes.values() if n.get("type") == "KSampler"), None)
    if sampler is None:
        return None
    w = widgets(sampler)  # seed, control_after_generate, steps, cfg, sampler, scheduler, denoise
    if len(w) < 6:
        return None

    def prompt_text(n: dict[str, Any] | None) -> str:
        values = widgets(n)
        return values[0] if values and isinstance(values[0], str) else ""

    latent = widgets(source_of(sampler, "latent_image"))
    ckpt = next(
        (widgets(n)[0] for n in nodes.values() if n.get("type") == "CheckpointLoaderSimple"),
        None,
    )
    return ImageMetadata(
        source="comfyui",
        prompt=prompt_text(source_of(sampler, "positive")),
        negative_prompt=prompt_text(source_of(sampler, "negative")),
        steps=_int(w[2]),
        sampler=_comfy_sampler(_text(w[4]), _text(w[5])) if _text(w[4]) else None,
        cfg_scale=_float(w[3]),
        seed=_int(w[0]),
        width=_int(latent[0]) if len(latent) >= 2 else None,
        height=_int(latent[1]) if len(latent) >= 2 else None,
        model=ckpt if isinstance(ckpt, str) else None,
        extras={"Schedule type": _text(w[5])} if _text(w[5]) else {},
    )


def _from_invokeai(text: str) -> ImageMetadata | None:
    data = _json_object(text)
    if data is None:
        return None
    if isinstance(data.get("image"), dict):  # InvokeAI 2.x `sd-metadata`
        image = data["image"]
        prompt = image.get("prompt")
        if isinstance(prompt, list):
            prompt = " ".join(_text(p.get("prompt")) for p in prompt if isinstance(p, dict))
        model = data.get("model_weights")
        data = {
            **image,
            "positive_prompt": prompt,
            "model": model,
            "scheduler": image.get("sampler"),
        }
    model = data.get("model")
    if isinstance(model, dict):
        model = model.get("name") or model.get("model_name")
    scheduler = _text(data.get("scheduler"))
    known = {"positive_prompt", "negative_prompt", "steps", "scheduler", "cfg_scale", "seed"}
    known |= {"width", "height", "model"}
    extras = {
        str(k): v if isinstance(v, str) else json.dumps(v)
        for k, v in data.items()
        if k not in known and isinstance(v, (str, int, float))
    }
    return ImageMetadata(
        source="invokeai",
        prompt=_text(data.get("positive_prompt")),
        negative_prompt=_text(data.get("negative_prompt")),
        steps=_int(data.get("steps")),
        sampler=_invoke_sampler(scheduler) if scheduler else None,
        cfg_scale=_float(data.get("cfg_scale")),
        seed=_int(data.get("seed")),
        width=_int(data.get("width")),
        height=_int(data.get("height")),
        model=model if isinstance(model, str) else None,
        extras=extras,
    )
