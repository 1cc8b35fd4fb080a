"""Scheduler names people know (AUTOMATIC1111's) and the diffusers class behind each.

Pure data, no torch: the TUI cycles through these names without loading diffusers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SchedulerSpec:
    name: str
    class_name: str
    options: dict[str, Any] = field(default_factory=dict)


_KARRAS = {"use_karras_sigmas": True}
_EXPONENTIAL = {"use_exponential_sigmas": True}
_TRAILING = {"timestep_spacing": "trailing"}

SCHEDULERS: dict[str, SchedulerSpec] = {
    spec.name: spec
    for spec in (
        SchedulerSpec("Euler", "EulerDiscreteScheduler"),
        SchedulerSpec("Euler Karras", "EulerDiscreteScheduler", _KARRAS),
        SchedulerSpec("Euler Exponential", "EulerDiscreteScheduler", _EXPONENTIAL),
        SchedulerSpec("Euler a", "EulerAncestralDiscreteScheduler"),
        SchedulerSpec("DPM++ 2M", "DPMSolverMultistepScheduler"),
        SchedulerSpec("DPM++ 2M Karras", "DPMSolverMultistepScheduler", _KARRAS),
        SchedulerSpec(
            "DPM++ 2M SDE", "DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}
        ),
        SchedulerSpec(
            "DPM++ 2M SDE Karras",
            "DPMSolverMultistepScheduler",
            {"algorithm_type": "sde-dpmsolver++", **_KARRAS},
        ),
        SchedulerSpec("DPM++ SDE", "DPMSolverSDEScheduler"),
        SchedulerSpec("DPM++ SDE Karras", "DPMSolverSDEScheduler", _KARRAS),
        SchedulerSpec("DPM2", "KDPM2DiscreteScheduler"),
        SchedulerSpec("DPM2 a", "KDPM2AncestralDiscreteScheduler"),
        SchedulerSpec("Heun", "HeunDiscreteScheduler"),
        SchedulerSpec("LMS", "LMSDiscreteScheduler"),
        SchedulerSpec("LMS Karras", "LMSDiscreteScheduler", _KARRAS),
        SchedulerSpec("DDIM", "DDIMScheduler"),
        SchedulerSpec("DDPM", "DDPMScheduler"),
        SchedulerSpec("PNDM", "PNDMScheduler"),
        SchedulerSpec("DEIS", "DEISMultistepScheduler"),
        SchedulerSpec("UniPC", "UniPCMultistepScheduler"),
        SchedulerSpec("LCM", "LCMScheduler"),
        SchedulerSpec("TCD", "TCDScheduler"),
        # Trailing spacing starts at the last timestep, as few-step models were distilled.
        SchedulerSpec("Euler trailing", "EulerDiscreteScheduler", _TRAILING),
        SchedulerSpec("Euler a trailing", "EulerAncestralDiscreteScheduler", _TRAILING),
        SchedulerSpec("DDIM trailing", "DDIMScheduler", _TRAILING),
    )
}

# Flow-matching models (SD 3, FLUX) know the same names through their own scheduler.
FLOW_SCHEDULERS: dict[str, SchedulerSpec] = {
    spec.name: spec
    for spec in (
        SchedulerSpec("Euler", "FlowMatchEulerDiscreteScheduler"),
        SchedulerSpec("Euler Karras", "FlowMatchEulerDiscreteScheduler", _KARRAS),
        SchedulerSpec("Euler Exponential", "FlowMatchEulerDiscreteScheduler", _EXPONENTIAL),
    )
}

DEFAULT_SCHEDULER = "DPM++ 2M Karras"

_BY_LOWER = {name.lower(): name for name in SCHEDULERS}
# Spellings seen in other tools' metadata and in diffusers guides.
_ALIASES = {
    "euler_a": "Euler a",
    "euler ancestral": "Euler a",
    "k_euler_a": "Euler a",
    "k_euler": "Euler",
    "dpmpp_2m": "DPM++ 2M",
    "dpmpp_2m_karras": "DPM++ 2M Karras",
    "dpmpp_sde": "DPM++ SDE",
    "dpmpp_sde_karras": "DPM++ SDE Karras",
    "dpmpp_2m_sde": "DPM++ 2M SDE",
    "dpmpp_2m_sde_karras": "DPM++ 2M SDE Karras",
    "k_lms": "LMS",
    "k_heun": "Heun",
    "k_dpm_2": "DPM2",
    "k_dpm_2_a": "DPM2 a",
    "unipc": "UniPC",
    "uni_pc": "UniPC",
    "ddim": "DDIM",
    "plms": "PNDM",
    "lcm": "LCM",
    "tcd": "TCD",
    "euler_karras": "Euler Karras",
    # Forge writes "Euler" with "Schedule type: Simple" for flow models.
    "euler simple": "Euler",
}


def canonical_scheduler(name: object) -> str:
    """The canonical spelling of a scheduler name; KeyError with a helpful message if unknown."""
    key = str(name).strip().lower()
    if key in _BY_LOWER:
        return _BY_LOWER[key]
    if key in _ALIASES:
        return _ALIASES[key]
    raise KeyError(f"unknown scheduler {str(name)!r}; choose one of: {', '.join(SCHEDULERS)}")


def scheduler_names() -> list[str]:
    return list(SCHEDULERS)


def scheduler_name_for(config: Any) -> str | None:
    """Our name for the scheduler a pipeline ships with (from its config), if it has one."""
    class_name = str(config.get("_class_name", "")) if hasattr(config, "get") else ""
    for table in (FLOW_SCHEDULERS, SCHEDULERS):
        for spec in table.values():
            if spec.class_name != class_name:
                continue
            if all(config.get(k) == v for k, v in spec.options.items()):
                return spec.name
    return None


def scheduler_spec(name: str, flow_matching: bool = False) -> SchedulerSpec:
    """The diffusers class and options for `name` on a DDPM-family or a flow-matching model."""
    name = canonical_scheduler(name)
    table = FLOW_SCHEDULERS if flow_matching else SCHEDULERS
    if name not in table:
        kind = "flow-matching" if flow_matching else "this"
        raise KeyError(f"{name} does not run on {kind} models; choose one of: {', '.join(table)}")
    return table[name]
