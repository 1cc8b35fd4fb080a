"""`sdtui gallery list|show|rebuild|import` as a person runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from sdtui.cli import main
from sdtui.gallery import Gallery
from sdtui.params import GenerationRequest
from sdtui.results import GeneratedImage, GenerationResult

A1111_TEXT = (
    "a snowy mountain village at night\n"
    "Negative prompt: daylight\n"
    "Steps: 24, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 5.5, Seed: 31337, "
    "Size: 64x64, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly"
)


def save(gallery: Gallery, prompt: str, seed: int, model: str = "demo"):
    request = GenerationRequest(prompt=prompt, model=model, width=64, height=64, seed=seed)
    generated = GeneratedImage(Image.new("RGB", (64, 64)), seed, 0, request)
    return gallery.save(generated, GenerationResult(request, [generated], model, "cpu", "fp32"))


def write_png(path: Path, texts: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngInfo()
    for key, value in texts.items():
        info.add_text(key, value)
    Image.new("RGB", (64, 64)).save(path, pnginfo=info)
    return path


@pytest.fixture
def filled(gallery_dir: Path):
    with Gallery(gallery_dir) as gallery:
        cat = save(gallery, "a cat on a windowsill", 1)
        dog = save(gallery, "a dog in the park", 2, model="sd15")
        gallery.set_favorite(dog.id, True)
    return cat, dog


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_list_json_and_filters(filled, capsys) -> None:
    cat, dog = filled
    assert main(["gallery", "list", "--json"]) == 0
    rows = json_lines(capsys.readouterr().out)
    assert [r["id"] for r in rows] == [dog.id, cat.id]
    assert rows[1]["prompt"] == "a cat on a windowsill" and rows[1]["seed"] == 1

    assert main(["gallery", "list", "--search", "cat", "--json"]) == 0
    assert [r["id"] for r in json_lines(capsys.readouterr().out)] == [cat.id]
    assert main(["gallery", "list", "--favorites", "--json"]) == 0
    assert [r["id"] for r in json_lines(capsys.readouterr().out)] == [dog.id]
    assert main(["gallery", "list", "--model", "sd15", "--json"]) == 0
    assert [r["model"] for r in json_lines(capsys.readouterr().out)] == ["sd15"]
    assert main(["gallery", "list", "--limit", "1", "--json"]) == 0
    assert len(json_lines(capsys.readouterr().out)) == 1


def test_list_table(filled, capsys) -> None:
    assert main(["gallery", "list"]) == 0
    out = capsys.readouterr().out
    assert "a cat on a windowsill" in out and "a dog in the park" in out
    assert main(["gallery", "list", "--search", "giraffe"]) == 0
    assert "no images match" in capsys.readouterr().out


def test_list_notices_files_added_by_hand(filled, gallery_dir: Path, capsys) -> None:
    write_png(gallery_dir / "forge" / "00001.png", {"parameters": A1111_TEXT})
    assert main(["gallery", "list", "--search", "village", "--json"]) == 0
    (row,) = json_lines(capsys.readouterr().out)
    assert row["source"] == "a1111" and row["seed"] == 31337
    assert row["sampler"] == "DPM++ 2M Karras"


def test_show_by_id_and_path(filled, capsys, tmp_path: Path) -> None:
    cat, _ = filled
    assert main(["gallery", "show", str(cat.id), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["id"] == cat.id and data["prompt"] == "a cat on a windowsill"
    assert data["source"] == "sdtui" and data["path"] == str(cat.path)

    assert main(["gallery", "show", str(cat.path)]) == 0
    out = capsys.readouterr().out
    assert f"Id: {cat.id}" in out and "Prompt: a cat on a windowsill" in out and "Seed: 1" in out

    outside = write_png(tmp_path / "elsewhere.png", {"parameters": A1111_TEXT})
    assert main(["gallery", "show", str(outside), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "id" not in data and data["model"] == "v1-5-pruned-emaonly"


def test_show_escapes_terminal_control_sequences(gallery_dir: Path, capsys) -> None:
    Gallery(gallery_dir).close()
    evil = write_png(gallery_dir / "evil.png", {"parameters": "\x1b]0;pwned\x07a red \x1b[2Jcar"})
    assert main(["gallery", "show", str(evil)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "car" in out


def test_bad_input_exit_codes(filled, capsys, tmp_path: Path) -> None:
    assert main(["gallery", "show", "999999"]) == 2
    assert "no image with id 999999" in capsys.readouterr().err
    assert main(["gallery", "show", str(tmp_path / "nope.png")]) == 2
    assert main(["gallery", "list", "--limit", "0"]) == 2
    assert main(["gallery", "list", "--gallery", str(tmp_path / "typo")]) == 2
    assert not (tmp_path / "typo").exists()  # bad input changes nothing
    assert main(["gallery", "list", "--limit", "many"]) == 2
    not_image = tmp_path / "notes.png"
    not_image.write_text("hello")
    assert main(["gallery", "show", str(not_image)]) == 1  # a file we cannot read
    assert "not an image" in capsys.readouterr().err


def test_rebuild(filled, gallery_dir: Path, capsys) -> None:
    (gallery_dir / ".sdtui" / "index.sqlite3").unlink()
    for extra in ("-wal", "-shm"):
        (gallery_dir / ".sdtui" / f"index.sqlite3{extra}").unlink(missing_ok=True)
    assert main(["gallery", "rebuild"]) == 0
    assert "indexed 2 images" in capsys.readouterr().out
    assert main(["gallery", "list", "--favorites", "--json"]) == 0
    assert [r["prompt"] for r in json_lines(capsys.readouterr().out)] == ["a dog in the park"]


def test_import(tmp_path: Path, gallery_dir: Path, capsys) -> None:
    source = write_png(tmp_path / "dl" / "village.png", {"parameters": A1111_TEXT})
    target = tmp_path / "new-gallery"
    assert main(["gallery", "import", str(source), "--gallery", str(target), "--json"]) == 0
    (row,) = json_lines(capsys.readouterr().out)
    assert Path(row["path"]).parent == target / "imported"
    assert Path(row["path"]).read_bytes() == source.read_bytes()
    assert row["prompt"] == "a snowy mountain village at night"

    broken = tmp_path / "dl" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    assert main(["gallery", "import", str(broken), "--gallery", str(target)]) == 2
    assert "skipped" in capsys.readouterr().err
    assert main(["gallery", "list", "--gallery", str(target), "--json"]) == 0
    assert len(json_lines(capsys.readouterr().out)) == 1
