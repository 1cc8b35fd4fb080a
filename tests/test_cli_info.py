"""`sdtui info` and `sdtui models`: settings read back from images, and the model list."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from sdtui.cli import main

A1111_TEXT = (
    "a castle on a hill, (golden hour:1.2)\n"
    "Negative prompt: blurry\n"
    "Steps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 99, "
    'Size: 768x512, Model hash: abc123, Model: dreamshaper_8, Lora hashes: "x: 1, y: 2"'
)


def a1111_png(path: Path) -> Path:
    info = PngInfo()
    info.add_text("parameters", A1111_TEXT)
    Image.new("RGB", (96, 64)).save(path, pnginfo=info)
    return path


def test_info_reads_our_own_images(demo_model_dir: Path, gallery_dir: Path, capsys):
    assert main(["generate", "a small boat", "--model", "demo", "--steps", "2",
                 "--seed", "5", "--negative", "fog", "--cfg", "4.5"]) == 0  # fmt: skip
    path = capsys.readouterr().out.strip()
    assert main(["info", path, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["prompt"] == "a small boat" and data["negative_prompt"] == "fog"
    assert (data["steps"], data["cfg_scale"], data["seed"]) == (2, 4.5, 5)
    assert (data["width"], data["height"], data["model"]) == (64, 64, "demo")
    assert data["sampler"] == "DPM++ 2M Karras" and data["source"] == "sdtui"
    assert main(["info", path]) == 0
    text = capsys.readouterr().out
    assert "Prompt: a small boat" in text and "Seed: 5" in text and "Size: 64x64" in text


def test_info_reads_other_tools_images(tmp_path: Path, capsys):
    path = a1111_png(tmp_path / "castle.png")
    assert main(["info", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["prompt"] == "a castle on a hill, (golden hour:1.2)"
    assert (data["steps"], data["seed"], data["width"], data["height"]) == (30, 99, 768, 512)
    assert data["model"] == "dreamshaper_8" and data["source"] == "a1111"
    assert data["Model hash"] == "abc123"  # extras are kept as top-level keys too
    assert main(["info", str(path)]) == 0
    text = capsys.readouterr().out
    assert "Negative prompt: blurry" in text and "Lora hashes: x: 1, y: 2" in text


def test_info_failures(tmp_path: Path, capsys):
    assert main(["info", str(tmp_path / "missing.png")]) == 2
    assert "no such file" in capsys.readouterr().err
    not_image = tmp_path / "notes.png"
    not_image.write_text("hello")
    assert main(["info", str(not_image)]) == 1
    assert "not an image" in capsys.readouterr().err
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    assert main(["info", str(plain)]) == 0
    assert "no generation settings" in capsys.readouterr().out


def test_models_lists_names_cache_state_and_moved_ids(
    demo_model_dir: Path, tmp_path: Path, capsys, monkeypatch
):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    assert main(["models", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {row["name"]: row for row in map(json.loads, lines)}
    assert len(rows) == len(lines)  # one object per line
    assert rows["demo"]["cached"] is True  # built by the fixture in the cache folder
    assert rows["sd15"]["cached"] is False
    assert rows["sd15"]["id"] == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert rows["sdxl"]["family"] == "sdxl" and rows["sdxl"]["native_size"] == [1024, 1024]
    assert "runwayml/stable-diffusion-v1-5" in rows["sd15"]["moved_from"]
    for name, family, gated in [
        ("flux-schnell", "flux", False),
        ("flux-dev", "flux", True),
        ("sd35-medium", "sd3", True),
        ("sd35-large", "sd3", True),
        ("sd35-large-turbo", "sd3", True),
        ("sdxl-turbo", "sdxl", False),
    ]:
        row = rows[name]
        assert (row["family"], row["gated"]) == (family, gated)
        assert row["id"].count("/") == 1 and row["download_gb"] > 1
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    assert "sd21-base" in text and "runwayml/stable-diffusion-v1-5 ->" in text
    assert "~34 GB" in text and "accept the licence" in text and "HF_TOKEN" in text


def test_models_sees_a_cached_hub_snapshot(tmp_path: Path, capsys, monkeypatch):
    hub = tmp_path / "hub"
    snapshot = hub / "models--stabilityai--stable-diffusion-xl-base-1.0" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "model_index.json").write_text("{}")
    refs = snapshot.parent.parent / "refs"
    refs.mkdir()
    (refs / "main").write_text("abc")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(hub))
    assert main(["models", "--json"]) == 0
    rows = {row["name"]: row for row in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows["sdxl"]["cached"] is True and rows["sd15"]["cached"] is False
