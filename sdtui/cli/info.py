"""`sdtui info IMAGE`: the settings stored in an image (ours, AUTOMATIC1111, ComfyUI, InvokeAI)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from sdtui.display import json_for_terminal, path_text, printable
from sdtui.errors import ValidationError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", metavar="IMAGE", help="a PNG (or JPEG/WebP) file")
    parser.add_argument("--json", action="store_true", help="print the settings as JSON")


def _lines(data: dict[str, Any]) -> list[str]:
    labels = [
        ("prompt", "Prompt"),
        ("negative_prompt", "Negative prompt"),
        ("steps", "Steps"),
        ("sampler", "Sampler"),
        ("cfg_scale", "CFG scale"),
        ("seed", "Seed"),
        ("model", "Model"),
    ]
    lines = []
    for key, label in labels:
        value = data.get(key)
        if value is None or value == "":
            continue
        if isinstance(value, float):
            value = f"{value:g}"
        text = str(value)
        if "\n" in text:  # keep multi-line prompts readable under their label
            text = text.replace("\n", "\n  ")
        lines.append(f"{label}: {printable(text)}")
        if key == "seed" and data.get("width") and data.get("height"):
            lines.append(f"Size: {data['width']}x{data['height']}")
    for lora in data.get("loras") or []:
        hashed = f", hash {lora['hash']}" if lora["hash"] else ""
        lines.append(printable(f"LoRA: {lora['name']} (weight {lora['weight']:g}{hashed})"))
    for key, value in (data.get("extras") or {}).items():
        lines.append(printable(f"{key}: {value}").replace("\n", " "))
    lines.append(f"Written by: {data.get('source', 'none')}")
    lines += [f"Note: {printable(note)}" for note in data.get("notes") or ()]
    return lines


def _print(text: str) -> None:
    """Print, and end quietly when the reader has gone (`sdtui info x.png | head`)."""
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's final flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def run(args: argparse.Namespace) -> int:
    from sdtui.addons import describe_loras
    from sdtui.gallery.metadata import read_metadata

    path = Path(args.image).expanduser()
    if not os.path.lexists(path):  # False too for a name too long to exist
        raise ValidationError("image", f"no such file: {path_text(args.image)}")
    data = read_metadata(path).to_json_dict()
    data["loras"] = describe_loras(data.get("prompt") or "", data.get("extras") or {})
    if args.json:
        # Extras sit beside the standard keys too, so `jq .Lora_hashes`-style lookups work.
        flat = {**{k: v for k, v in data["extras"].items() if k not in data}, **data}
        _print(json_for_terminal(json.dumps(flat, ensure_ascii=False)))
    else:
        if data.get("source") == "none":
            _print(f"{path_text(path)}: no generation settings stored in this image")
            return 0
        _print("\n".join(_lines(data)))
    return 0
