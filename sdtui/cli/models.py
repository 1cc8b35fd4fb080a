"""`sdtui models`: the short model names, what they point to, and whether they are cached."""

from __future__ import annotations

import argparse
import json
from typing import Any

from sdtui.models import DEMO_SOURCE, GATED_HINT, MODELS, MOVED_IDS, ModelEntry


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object per model")


def is_cached(entry: ModelEntry) -> bool:
    """True when the model loads without a download (the demo: once it has been built)."""
    if entry.source == DEMO_SOURCE:
        from sdtui.config import cache_dir

        return (cache_dir() / "demo-model" / "model_index.json").is_file()
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(entry.source, "model_index.json")
    except Exception:  # a broken cache folder reads as "not cached"
        return False
    return isinstance(found, str)


def model_rows() -> list[dict[str, Any]]:
    return [
        {
            "name": entry.name,
            "id": entry.source,
            "source": "built locally" if entry.source == DEMO_SOURCE else entry.source,
            "family": entry.family,
            "gated": entry.gated,
            "download_gb": entry.download_gb,
            "licence": entry.licence,
            "native_size": list(entry.native_size),
            "description": entry.description,
            "cached": is_cached(entry),
            # Old ids that now load this model.
            "moved_from": [old for old, new in MOVED_IDS.items() if new == entry.source],
        }
        for entry in MODELS.values()
    ]


def _download(row: dict[str, Any]) -> str:
    if row["cached"]:
        return "cached"
    return f"~{row['download_gb']:g} GB" if row["download_gb"] else "-"


def run(args: argparse.Namespace) -> int:
    rows = model_rows()
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    name_width = max(len(r["name"]) for r in rows)
    source_width = max(len(r["source"]) for r in rows)
    header = (
        f"{'NAME':<{name_width}}  {'SOURCE':<{source_width}}  FAMILY  SIZE       DOWNLOAD  GATED"
    )
    print(header)
    for r in rows:
        size = "x".join(map(str, r["native_size"]))
        print(
            f"{r['name']:<{name_width}}  {r['source']:<{source_width}}  {r['family']:<6}  "
            f"{size:<9}  {_download(r):<8}  {'yes' if r['gated'] else 'no'}"
        )
    if any(r["gated"] for r in rows):
        print(f"\nGated models: {GATED_HINT}.")
    print("\nMoved hub ids (loaded under their new id):")
    for old, new in MOVED_IDS.items():
        print(f"  {old} -> {new}")
    print("\nAny hub id (owner/name), diffusers folder or .safetensors file also works.")
    return 0
