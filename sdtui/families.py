"""Model families: what each kind of diffusers model needs, one entry per family.

Pure data and duck-typed inspection, no torch: the TUI reads the defaults of
the loaded model from here, the engine asks which pipeline class a family
uses, which schedulers fit it and how to preview its latents, and the CLI
fits a request to the loaded model with the notices that explain changes.

Families: SD 1.x, SD 2.x (v-prediction at 768), SDXL, SD 3 / 3.5, FLUX.1.
Any other text-to-image pipeline runs in a plain mode (`plain_family`): its
own pipeline defaults, its own scheduler, no latent preview.

Few-step distilled models (Turbo, Lightning, Hyper, LCM, FLUX schnell) are a
`Tuning` of their family, recognised from the model id or the scheduler
config: fewer steps, little or no guidance, trailing-spacing schedulers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdtui.params import DISTILLED_CFG_KEY, SIZE_MULTIPLE, SIZE_RANGE
from sdtui.schedulers import scheduler_name_for

if TYPE_CHECKING:
    from diffusers.pipelines.pipeline_utils import DiffusionPipeline

    from sdtui.params import GenerationRequest

Matrix = tuple[tuple[float, ...], ...]
Size = tuple[int, int]

NEGATIVE_PROMPT = "negative_prompt"
CFG = "cfg"

# Shapes for a native 512 model (SD 1.x/2.x scale them to their own native size).
SD_SHAPES: tuple[Size, ...] = ((512, 512), (512, 768), (768, 512), (448, 832), (832, 448))
# SDXL's trained buckets around one megapixel.
XL_SHAPES: tuple[Size, ...] = ((1024, 1024), (832, 1216), (1216, 832), (768, 1344), (1344, 768))
# SD 3 / FLUX: about one megapixel, multiples of 64.
MP_SHAPES: tuple[Size, ...] = (
    (1024, 1024),
    (896, 1152),
    (1152, 896),
    (832, 1216),
    (1216, 832),
    (768, 1344),
    (1344, 768),
)

# Schedulers of the DDPM family (noise prediction, or v-prediction for SD 2.x 768).
DDPM_SCHEDULERS = (
    "DPM++ 2M Karras",
    "DPM++ 2M",
    "DPM++ 2M SDE",
    "DPM++ 2M SDE Karras",
    "DPM++ SDE",
    "DPM++ SDE Karras",
    "Euler",
    "Euler Karras",
    "Euler Exponential",
    "Euler a",
    "DPM2",
    "DPM2 a",
    "Heun",
    "LMS",
    "LMS Karras",
    "DDIM",
    "DDPM",
    "PNDM",
    "DEIS",
    "UniPC",
    "LCM",
    "TCD",
    "Euler trailing",
    "Euler a trailing",
    "DDIM trailing",
)
# What few-step models are made for: trailing timestep spacing, LCM, TCD.
FEW_STEP_SCHEDULERS = ("Euler a trailing", "Euler trailing", "DDIM trailing", "LCM", "TCD")
# Flow matching (SD 3, FLUX): Euler and its sigma schedules.
FLOW_SCHEDULERS = ("Euler", "Euler Karras", "Euler Exponential")

# Latent -> RGB factors (rows: latent channels; columns: R, G, B), as ComfyUI
# publishes them in comfy/latent_formats.py; they map scaled latents to about [-1, 1].
SD_LATENT_RGB: Matrix = (
    (0.3512, 0.2297, 0.3227),
    (0.3250, 0.4974, 0.2350),
    (-0.2829, 0.1762, 0.2721),
    (-0.2120, -0.2616, -0.7177),
)
SDXL_LATENT_RGB: Matrix = (
    (0.3651, 0.4232, 0.4341),
    (-0.2533, -0.0042, 0.1068),
    (0.1076, 0.1111, -0.0362),
    (-0.3165, -0.2492, -0.2188),
)
SDXL_LATENT_BIAS = (0.1084, -0.0175, -0.0011)
SD3_LATENT_RGB: Matrix = (
    (-0.0922, -0.0175, 0.0749),
    (0.0311, 0.0633, 0.0954),
    (0.1994, 0.0927, 0.0458),
    (0.0856, 0.0339, 0.0902),
    (0.0587, 0.0272, -0.0496),
    (-0.0006, 0.1104, 0.0309),
    (0.0978, 0.0306, 0.0427),
    (-0.0042, 0.1038, 0.1358),
    (-0.0194, 0.0020, 0.0669),
    (-0.0488, 0.0130, -0.0268),
    (0.0922, 0.0988, 0.0951),
    (-0.0278, 0.0524, -0.0542),
    (0.0332, 0.0456, 0.0895),
    (-0.0069, -0.0030, -0.0810),
    (-0.0596, -0.0465, -0.0293),
    (-0.1448, -0.1463, -0.1189),
)
SD3_LATENT_BIAS = (0.2394, 0.2135, 0.1925)
FLUX_LATENT_RGB: Matrix = (
    (-0.0346, 0.0244, 0.0681),
    (0.0034, 0.0210, 0.0687),
    (0.0275, -0.0668, -0.0433),
    (-0.0174, 0.0160, 0.0617),
    (0.0859, 0.0721, 0.0329),
    (0.0004, 0.0383, 0.0115),
    (0.0405, 0.0861, 0.0915),
    (-0.0236, -0.0185, -0.0259),
    (-0.0245, 0.0250, 0.1180),
    (0.1008, 0.0755, -0.0421),
    (-0.0515, 0.0201, 0.0011),
    (0.0428, -0.0012, -0.0036),
    (0.0817, 0.0765, 0.0749),
    (-0.1264, -0.0522, -0.1103),
    (-0.0280, -0.0881, -0.0499),
    (-0.1262, -0.0982, -0.0778),
)
FLUX_LATENT_BIAS = (-0.0329, -0.0718, -0.0851)
_NO_BIAS = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Family:
    """Everything sdtui needs to know about one kind of model."""

    name: str  # "sd1", "sd2", "sdxl", "sd3", "flux", or a pipeline's class name
    label: str
    txt2img: str  # diffusers pipeline class names
    img2img: str
    inpaint: str
    default_size: Size
    steps: int
    guidance: float
    scheduler: str  # "" keeps the pipeline's own scheduler
    schedulers: tuple[str, ...]
    size_presets: tuple[Size, ...] = ()
    flow_matching: bool = False
    latent_channels: int = 4
    latent_rgb: Matrix | None = SD_LATENT_RGB
    latent_bias: tuple[float, ...] = _NO_BIAS
    packed_latents: bool = False  # FLUX: (batch, tokens, channels * 2 * 2)
    size_multiple: int = SIZE_MULTIPLE
    unused: frozenset[str] = frozenset()  # inputs the family ignores
    guidance_key: str = "CFG scale"  # what A1111/Forge call the guidance in `parameters`
    taesd: str = ""  # the tiny autoencoder that decodes its latents
    plain: tuple[str, ...] = ()  # what runs without special support


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            "sd1",
            "Stable Diffusion 1.x",
            "StableDiffusionPipeline",
            "StableDiffusionImg2ImgPipeline",
            "StableDiffusionInpaintPipeline",
            (512, 512),
            25,
            7.0,
            "DPM++ 2M Karras",
            DDPM_SCHEDULERS,
            SD_SHAPES,
            taesd="madebyollin/taesd",
        ),
        Family(
            "sd2",
            "Stable Diffusion 2.x",
            "StableDiffusionPipeline",
            "StableDiffusionImg2ImgPipeline",
            "StableDiffusionInpaintPipeline",
            (768, 768),
            25,
            7.0,
            "DPM++ 2M Karras",
            DDPM_SCHEDULERS,
            SD_SHAPES,  # scaled to the model's native size
            taesd="madebyollin/taesd",
        ),
        Family(
            "sdxl",
            "Stable Diffusion XL",
            "StableDiffusionXLPipeline",
            "StableDiffusionXLImg2ImgPipeline",
            "StableDiffusionXLInpaintPipeline",
            (1024, 1024),
            25,
            6.0,
            "DPM++ 2M Karras",
            DDPM_SCHEDULERS,
            XL_SHAPES,
            latent_rgb=SDXL_LATENT_RGB,
            latent_bias=SDXL_LATENT_BIAS,
            taesd="madebyollin/taesdxl",
        ),
        Family(
            "sd3",
            "Stable Diffusion 3 / 3.5",
            "StableDiffusion3Pipeline",
            "StableDiffusion3Img2ImgPipeline",
            "StableDiffusion3InpaintPipeline",
            (1024, 1024),
            28,
            4.5,
            "Euler",
            FLOW_SCHEDULERS,
            MP_SHAPES,
            flow_matching=True,
            latent_channels=16,
            latent_rgb=SD3_LATENT_RGB,
            latent_bias=SD3_LATENT_BIAS,
            size_multiple=16,
            taesd="madebyollin/taesd3",
        ),
        Family(
            "flux",
            "FLUX.1",
            "FluxPipeline",
            "FluxImg2ImgPipeline",
            "FluxInpaintPipeline",
            (1024, 1024),
            28,
            3.5,
            "Euler",
            FLOW_SCHEDULERS,
            MP_SHAPES,
            flow_matching=True,
            latent_channels=16,
            latent_rgb=FLUX_LATENT_RGB,
            latent_bias=FLUX_LATENT_BIAS,
            packed_latents=True,
            size_multiple=16,
            # FLUX.1 dev's guidance is distilled into the model: no negative prompt, no CFG pass.
            unused=frozenset({NEGATIVE_PROMPT}),
            guidance_key=DISTILLED_CFG_KEY,
            taesd="madebyollin/taef1",
        ),
    )
}

FAMILY_NAMES = tuple(FAMILIES)


def plain_family(
    pipeline_class: str, flow_matching: bool = False, own_scheduler: str | None = None
) -> Family:
    """A pipeline diffusers offers that sdtui has no entry for: generic defaults.

    It starts with its own scheduler; others of the same kind (flow matching or
    DDPM) are offered. One sdtui has no name for stays, with no choice.
    """
    plain = ("live previews", "size presets", "prompt weighting")
    if own_scheduler is None:
        return Family(
            pipeline_class, pipeline_class, pipeline_class, "", "", (512, 512), 25, 5.0, "", (),
            latent_rgb=None, plain=("scheduler choice", *plain),
        )  # fmt: skip
    kind = FLOW_SCHEDULERS if flow_matching else DDPM_SCHEDULERS
    return Family(
        pipeline_class,
        pipeline_class,
        pipeline_class,
        "",
        "",
        (512, 512),
        25,
        5.0,
        own_scheduler,
        tuple(dict.fromkeys([own_scheduler, *kind])),
        flow_matching=flow_matching,
        latent_rgb=None,
        plain=plain,
    )


def get_family(name: str, flow_matching: bool = False, own_scheduler: str | None = "") -> Family:
    """The registry entry for `name`; an unknown name is a plain pipeline.

    `own_scheduler` "" (not known) gives a plain family the default of its kind.
    """
    if name in FAMILIES:
        return FAMILIES[name]
    if own_scheduler == "":
        own_scheduler = "Euler" if flow_matching else "DPM++ 2M Karras"
    return plain_family(name, flow_matching, own_scheduler)


# ---------------------------------------------------------------------------
# Few-step tunings
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Tuning:
    """A distilled variant of a family: fewer steps, little or no guidance."""

    name: str  # "turbo", "lightning", "hyper", "lcm", "schnell"
    steps: int
    guidance: float
    scheduler: str
    schedulers: tuple[str, ...]
    guidance_unused: bool = True  # CFG is not what the model was made for
    note: str = ""


TUNINGS: dict[str, Tuning] = {
    t.name: t
    for t in (
        Tuning("turbo", 1, 0.0, "Euler a trailing", FEW_STEP_SCHEDULERS),
        Tuning("lightning", 4, 0.0, "Euler trailing", FEW_STEP_SCHEDULERS),
        Tuning("hyper", 8, 0.0, "DDIM trailing", FEW_STEP_SCHEDULERS),
        Tuning("lcm", 4, 1.0, "LCM", ("LCM", "TCD", *FEW_STEP_SCHEDULERS[:3])),
        Tuning("schnell", 4, 0.0, "Euler", FLOW_SCHEDULERS),
    )
}
# SD 3.5 Large Turbo takes 4 steps rather than SDXL Turbo's 1.
_FLOW_TURBO = Tuning("turbo", 4, 0.0, "Euler", FLOW_SCHEDULERS)
_STEPS_IN_NAME = re.compile(r"(\d+)[-_ ]?steps?", re.IGNORECASE)
# A tuning's name as a word of the id or file name: "Hyper-SDXL" yes, "hyperrealism" no.
_TUNING_IN_NAME = re.compile(r"(?<![a-z])(schnell|lightning|hyper|turbo|lcm)(?![a-z])")


def tuning_from_name(text: str, family: str) -> Tuning | None:
    """The few-step tuning a model id or file name announces, if any."""
    lower = text.lower()
    for found in _TUNING_IN_NAME.finditer(lower):
        name = found.group(1)
        if name == "schnell" and family != "flux":
            continue
        tuning = _FLOW_TURBO if name == "turbo" and family == "sd3" else TUNINGS[name]
        match = _STEPS_IN_NAME.search(lower)
        if match and 1 <= int(match.group(1)) <= 50:
            tuning = replace(tuning, steps=int(match.group(1)))
        return tuning
    return None


def tuning_from_scheduler_config(config: Mapping[str, Any] | None) -> Tuning | None:
    """LCM and TCD schedulers ship only with distilled models."""
    name = str((config or {}).get("_class_name", ""))
    if name == "LCMScheduler":
        return TUNINGS["lcm"]
    if name == "TCDScheduler":
        return replace(TUNINGS["hyper"], scheduler="TCD")
    return None


# ---------------------------------------------------------------------------
# Detecting the family of a loaded pipeline
# ---------------------------------------------------------------------------


def _config(component: Any) -> Mapping[str, Any]:
    """A component's config as a mapping (diffusers' FrozenDict, or any attribute object)."""
    config = getattr(component, "config", None)
    if isinstance(config, Mapping):
        return config
    return dict(vars(config)) if hasattr(config, "__dict__") else {}


def family_of_pipeline(pipe: DiffusionPipeline) -> str:
    """The family name of a loaded pipeline, from its class and its UNet's config.

    A pipeline sdtui has no entry for is named by its class (plain mode).
    """
    name = type(pipe).__name__
    known = family_from_class_name(name)
    if known in ("sd3", "flux", "sdxl"):
        return known
    unet = _config(getattr(pipe, "unet", None))
    cross = unet.get("cross_attention_dim")
    if known == "sd1" and unet:
        # SD 2.x has the same pipeline class; its OpenCLIP text encoder is 1024 wide.
        widths: dict[object, str] = {1024: "sd2", 2048: "sdxl"}
        return widths.get(cross, "sd1")
    if known is None and cross in (768, 1024, 2048):
        # Another pipeline around an SD UNet (LCM, PAG, ...): the UNet's family.
        return {768: "sd1", 1024: "sd2", 2048: "sdxl"}[cross]
    return known or name


def family_from_class_name(class_name: str) -> str | None:
    """The family whose txt2img pipeline is `class_name` (None for others)."""
    for family in FAMILIES.values():
        if class_name in (family.txt2img, family.img2img, family.inpaint):
            return "sd1" if family.name == "sd2" else family.name
    return None


def read_model_index(folder: str | Path) -> dict[str, Any]:
    """A diffusers folder's model_index.json ({} when unreadable)."""
    try:
        data = json.loads((Path(folder) / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def pipeline_default_size(pipe: DiffusionPipeline) -> Size:
    """The size a pipeline makes when none is asked for: its sample size times the VAE scale."""
    scale = int(getattr(pipe, "vae_scale_factor", 8) or 8)
    for part in ("unet", "transformer"):
        sample = _config(getattr(pipe, part, None)).get("sample_size")
        if isinstance(sample, (list, tuple)) and len(sample) == 2:
            return int(sample[1]) * scale, int(sample[0]) * scale
        if isinstance(sample, int):
            if type(pipe).__name__.startswith("Flux"):
                break  # FLUX's config keeps a patch-embedding size, not the image size
            return sample * scale, sample * scale
    default = getattr(pipe, "default_sample_size", None)
    if isinstance(default, int):
        return default * scale, default * scale
    return 512, 512


def clamp_size(size: Size, multiple: int = SIZE_MULTIPLE) -> Size:
    """A size inside sdtui's limits, rounded down to a multiple the model accepts."""
    low, high = SIZE_RANGE

    def fit(value: int) -> int:
        value = min(max(int(value), low), high)
        return max(low, value - value % multiple)

    return fit(size[0]), fit(size[1])


# ---------------------------------------------------------------------------
# What the loaded model's defaults are
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelDefaults:
    """The defaults the front ends show and use for one loaded model (stdlib only)."""

    family: str
    tuning: str  # "" or the few-step tuning's name
    width: int
    height: int
    steps: int
    cfg: float
    scheduler: str  # "" keeps the pipeline's own
    schedulers: tuple[str, ...]
    size_presets: tuple[Size, ...]
    unused: frozenset[str] = field(default=frozenset())
    guidance_key: str = "CFG scale"
    plain: tuple[str, ...] = ()
    flow_matching: bool = False

    @property
    def size(self) -> Size:
        return self.width, self.height

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelDefaults:
        """The defaults again from their JSON form (`dataclasses.asdict`, lists for tuples)."""
        fields = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        for name in ("schedulers", "plain"):
            fields[name] = tuple(fields.get(name) or ())
        fields["size_presets"] = tuple(
            (int(w), int(h)) for w, h in fields.get("size_presets") or ()
        )
        fields["unused"] = frozenset(fields.get("unused") or ())
        return cls(**fields)

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "tuning": self.tuning,
            "width": self.width,
            "height": self.height,
            "steps": self.steps,
            "cfg": self.cfg,
            "scheduler": self.scheduler,
            "schedulers": list(self.schedulers),
            "size_presets": [list(size) for size in self.size_presets],
            "unused": sorted(self.unused),
            "guidance_key": self.guidance_key,
            "plain": list(self.plain),
            "flow_matching": self.flow_matching,
        }


def _presets(family: Family, native: Size) -> tuple[Size, ...]:
    shapes = family.size_presets
    if not shapes:
        return (native,)
    if shapes == SD_SHAPES:
        # SD 1.x/2.x: the 512 shapes scaled to the model's own native size.
        scale = native[0] / 512
        scaled: list[Size] = []
        for w, h in SD_SHAPES:
            size = clamp_size((round(w * scale / 8) * 8, round(h * scale / 8) * 8))
            if size not in scaled:
                scaled.append(size)
        return tuple(scaled)
    if native != shapes[0]:
        return (native, *(s for s in shapes if s != native))
    return shapes


def model_defaults(
    family_name: str,
    native: Size,
    tuning: Tuning | None = None,
    guidance_embeds: bool | None = None,
    flow_matching: bool = False,
    own_scheduler: str | None = "",
) -> ModelDefaults:
    """The defaults for a model of `family_name` whose pipeline makes `native`-sized images.

    `guidance_embeds` False marks a FLUX model without distilled guidance (schnell);
    `flow_matching` says which schedulers fit a plain pipeline.
    """
    family = get_family(family_name, flow_matching, own_scheduler)
    if family.name == "flux" and guidance_embeds is False and tuning is None:
        tuning = TUNINGS["schnell"]
    size = clamp_size(native, family.size_multiple)
    unused = set(family.unused)
    guidance_key = family.guidance_key
    steps, cfg, scheduler, schedulers = (
        family.steps,
        family.guidance,
        family.scheduler,
        family.schedulers,
    )
    if tuning is not None:
        steps, cfg = tuning.steps, tuning.guidance
        if family.schedulers:
            scheduler = tuning.scheduler
            allowed = [s for s in tuning.schedulers if s in family.schedulers]
            schedulers = tuple(dict.fromkeys([tuning.scheduler, *allowed, *family.schedulers]))
        if tuning.guidance_unused:
            unused |= {CFG, NEGATIVE_PROMPT}
        if tuning.name == "schnell":
            guidance_key = "CFG scale"
    return ModelDefaults(
        family=family.name,
        tuning=tuning.name if tuning else "",
        width=size[0],
        height=size[1],
        steps=steps,
        cfg=cfg,
        scheduler=scheduler,
        schedulers=schedulers,
        size_presets=_presets(family, size),
        unused=frozenset(unused),
        guidance_key=guidance_key,
        plain=family.plain,
        flow_matching=family.flow_matching,
    )


def defaults_of_pipeline(pipe: DiffusionPipeline, model_id: str = "") -> ModelDefaults:
    """The defaults for a loaded pipeline: family from its class/config, tuning from its id."""
    family = family_of_pipeline(pipe)
    native = pipeline_default_size(pipe)
    scheduler_config = _config(getattr(pipe, "scheduler", None))
    if family not in FAMILIES:
        flow = str(scheduler_config.get("_class_name", "")).startswith("FlowMatch")
        own = scheduler_name_for(scheduler_config)
        tuning = tuning_from_scheduler_config(scheduler_config)
        return model_defaults(family, native, tuning, flow_matching=flow, own_scheduler=own)
    tuning = tuning_from_name(model_id, family) or tuning_from_scheduler_config(scheduler_config)
    transformer = _config(getattr(pipe, "transformer", None))
    embeds = transformer.get("guidance_embeds") if family == "flux" else None
    return model_defaults(family, native, tuning, embeds if isinstance(embeds, bool) else None)


def defaults_for_entry(family: str, native: Size, model_id: str) -> ModelDefaults:
    """The defaults of a model from the short-name table, before it is loaded."""
    return model_defaults(family, native, tuning_from_name(model_id, family))


# ---------------------------------------------------------------------------
# Fitting a request to the loaded model
# ---------------------------------------------------------------------------

# Request fields that follow the model unless the user set them.
FOLLOWING_FIELDS = ("width", "height", "steps", "cfg", "scheduler")


def fit_request(
    request: GenerationRequest,
    defaults: ModelDefaults,
    set_by_user: frozenset[str] | set[str] = frozenset(),
) -> tuple[GenerationRequest, list[str]]:
    """`request` with the model's defaults for fields the user did not set, and notices.

    A value set by hand stays unless the model cannot use it (a DDPM sampler on
    a flow-matching model): then it is replaced and a notice says so. Inputs the
    model ignores are reported; FLUX's negative prompt is left out of the request
    (so the image's metadata does not claim it).
    """
    notices: list[str] = []
    changes: dict[str, Any] = {}
    values = {
        "width": defaults.width,
        "height": defaults.height,
        "steps": defaults.steps,
        "cfg": defaults.cfg,
        "scheduler": defaults.scheduler,
    }
    for name in FOLLOWING_FIELDS:
        if name not in set_by_user and values[name] != "":
            changes[name] = values[name]
    scheduler = changes.get("scheduler", request.scheduler)
    if defaults.schedulers and scheduler not in defaults.schedulers:
        notices.append(
            f"{scheduler} does not fit a {defaults.family} model; using {defaults.scheduler} "
            f"(choose from {', '.join(defaults.schedulers)})"
        )
        changes["scheduler"] = defaults.scheduler
    multiple = get_family(defaults.family).size_multiple
    for name in ("width", "height"):
        value = changes.get(name, getattr(request, name))
        if value % multiple:
            fitted = max(SIZE_RANGE[0], value - value % multiple)
            notices.append(f"{name} {value} is not a multiple of {multiple}; using {fitted}")
            changes[name] = fitted
    label = defaults.family + (f" {defaults.tuning}" if defaults.tuning else "")
    if NEGATIVE_PROMPT in defaults.unused and request.negative_prompt.strip():
        if defaults.family == "flux":
            notices.append(f"a {label} model does not use a negative prompt; it was left out")
            changes["negative_prompt"] = ""
        else:
            notices.append(
                f"a {label} model is made for guidance 0, where the negative prompt is not used"
            )
    cfg = changes.get("cfg", request.cfg)
    if CFG in defaults.unused and cfg != defaults.cfg:
        if defaults.tuning == "schnell":
            notices.append(f"FLUX schnell has no guidance; guidance {cfg:g} is not used")
            changes["cfg"] = defaults.cfg
        else:
            notices.append(
                f"a {label} model is made for guidance {defaults.cfg:g}; {cfg:g} costs a second "
                "model pass per step and may burn the image"
            )
    if defaults.guidance_key != "CFG scale":
        extras = tuple((k, v) for k, v in request.extras if k != defaults.guidance_key)
        changes["extras"] = (*extras, (defaults.guidance_key, f"{changes.get('cfg', cfg):g}"))
    return (request.replace(**changes) if changes else request), notices


def check_scheduler(defaults: ModelDefaults, scheduler: str) -> str | None:
    """Why `scheduler` cannot run on this model (None when it can)."""
    if defaults.schedulers and scheduler not in defaults.schedulers:
        return (
            f"{scheduler} does not fit a {defaults.family} model; "
            f"choose one of {', '.join(defaults.schedulers)}"
        )
    return None
