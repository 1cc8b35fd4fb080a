"""Other tools' sampler spellings, turned into the A1111 names sdtui knows."""

from __future__ import annotations

# ComfyUI's (and so Fooocus's, SwarmUI's) k-diffusion sampler names.
COMFY_SAMPLERS = {
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
INVOKE_SAMPLERS = {
    **COMFY_SAMPLERS,
    "euler_a": "Euler a",
    "kdpm_2": "DPM2",
    "kdpm_2_a": "DPM2 a",
    "pndm": "PNDM",
    "unipc": "UniPC",
    "k_lms": "LMS",
    "k_euler": "Euler",
    "k_euler_a": "Euler a",
    "k_euler_ancestral": "Euler a",
    "k_heun": "Heun",
    "k_dpm_2": "DPM2",
    "k_dpm_2_a": "DPM2 a",
    "k_dpm_2_ancestral": "DPM2 a",
    "k_dpmpp_2m": "DPM++ 2M",
    "k_dpmpp_sde": "DPM++ SDE",
    "k_dpmpp_2m_sde": "DPM++ 2M SDE",
    "plms": "PNDM",
}


def comfy_sampler(sampler: str, scheduler: str = "") -> str:
    """`dpmpp_2m_sde_gpu` + `karras` -> `DPM++ 2M SDE Karras` (unknown names kept)."""
    base = sampler[:-4] if sampler.endswith("_gpu") else sampler
    base = base[7:] if base.startswith("sample_") else base  # early ComfyUI names
    name = COMFY_SAMPLERS.get(base, sampler)
    if scheduler == "karras":
        name += " Karras"
    elif scheduler and scheduler not in ("normal", "simple"):
        name += f" {scheduler}"
    return name


def invoke_sampler(name: str) -> str:
    """InvokeAI's `dpmpp_2m_k` (the `_k` means Karras sigmas) -> `DPM++ 2M Karras`."""
    karras = name.endswith("_k")
    base = name[:-2] if karras else name
    known = INVOKE_SAMPLERS.get(base, base)
    return f"{known} Karras" if karras else known
