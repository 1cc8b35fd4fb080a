"""LoRAs from the command line: folders by flag/env/config, A1111 metadata, info, listings,
unknown names, and finding an image's files again for a remix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import lora_files
import pytest
from helpers import gallery_pngs
from PIL import Image

from sdtui.addons import AddonFolders, AddonLibrary, HashCache, restore_addons
from sdtui.cli import main
from sdtui.errors import ValidationError
from sdtui.params import GenerationRequest, request_from_parameters


@pytest.fixture(scope="module")
def made_files(tmp_path_factory: pytest.TempPathFactory, demo_model_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("made")
    lora_files.write_kohya_lora(demo_model_dir, root / "inkwash.safetensors")
    lora_files.write_embedding(root / "badhands.safetensors")
    return root


@pytest.fixture
def folders(made_files: Path, tmp_path: Path) -> AddonFolders:
    loras, embeddings = tmp_path / "loras", tmp_path / "embeddings"
    (loras / "styles").mkdir(parents=True)
    embeddings.mkdir()
    shutil.copy(made_files / "inkwash.safetensors", loras / "styles" / "inkwash.safetensors")
    shutil.copy(made_files / "badhands.safetensors", embeddings / "badhands.safetensors")
    return AddonFolders(loras, embeddings)


def _generate(folders: AddonFolders, prompt: str, *extra: str) -> int:
    return main(
        [
            "generate", prompt, "--model", "demo", "--steps", "2", "--seed", "3",
            "--lora-dir", str(folders.loras), "--embeddings-dir", str(folders.embeddings), *extra,
        ]
    )  # fmt: skip


def test_generate_records_lora_and_ti_hashes_as_a1111(
    folders: AddonFolders, gallery_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompt = "a cat <lora:inkwash:0.8>, badhands"
    assert _generate(folders, prompt) == 0
    (png,) = gallery_pngs(gallery_dir)
    with Image.open(png) as image:
        parameters = image.text["parameters"]
        record = json.loads(image.text["sdtui"])
    assert parameters.startswith(prompt + "\n")  # the prompt keeps its tag
    library = AddonLibrary(folders, HashCache(None))
    lora = library.files("lora")[0]
    embedding = library.files("embedding")[0]
    assert f'Lora hashes: "inkwash: {library.hash(lora)}"' in parameters
    assert f'TI hashes: "badhands: {library.hash(embedding)}"' in parameters
    assert json.dumps(record).count("inkwash") >= 2
    capsys.readouterr()
    assert main(["info", str(png)]) == 0
    shown = capsys.readouterr().out
    assert f"LoRA: inkwash (weight 0.8, hash {library.hash(lora)})" in shown
    assert main(["info", str(png), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["loras"] == [{"name": "inkwash", "weight": 0.8, "hash": library.hash(lora)}]


def test_an_unknown_lora_exits_2_with_the_closest_names_and_saves_nothing(
    folders: AddonFolders, gallery_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _generate(folders, "a cat <lora:inkwsh:1>") == 2
    err = capsys.readouterr().err
    assert "no lora called 'inkwsh'" in err and "closest: inkwash" in err
    assert gallery_pngs(gallery_dir) == []
    assert _generate(folders, "a cat <lora:inkwash:9>") == 2
    assert "from -5 to 5" in capsys.readouterr().err


def test_listings_read_the_folders_from_env_and_config(
    folders: AddonFolders,
    isolated_dirs: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SDTUI_LORAS", str(folders.loras))
    assert main(["loras", "--json"]) == 0
    (line,) = [json.loads(text) for text in capsys.readouterr().out.splitlines()]
    assert line["name"] == "inkwash" and line["family"] == "sd1"
    assert Path(line["path"]) == folders.loras / "styles" / "inkwash.safetensors"
    assert line["triggers"][:2] == ["1girl", "ink wash"]
    monkeypatch.delenv("SDTUI_LORAS")
    config = isolated_dirs / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'embeddings = "{folders.embeddings}"\n', encoding="utf-8")
    assert main(["embeddings"]) == 0
    assert capsys.readouterr().out.startswith("badhands  family unknown  ")


def test_remix_finds_renamed_files_by_hash_and_names_the_missing(
    folders: AddonFolders, gallery_dir: Path
) -> None:
    assert (
        _generate(folders, "a cat <lora:inkwash:0.5> badhands <lora:gone:1>", "--count", "1") == 2
    )
    request = GenerationRequest(prompt="a cat <lora:inkwash:0.5>, badhands", model="demo")
    library = AddonLibrary(folders, HashCache(None))
    recorded = library.record(request)
    text = "\n".join(
        [recorded.prompt, "Steps: 2, Seed: 3, Size: 64x64, "
         + ", ".join(f'{k}: "{v}"' for k, v in recorded.extras)]
    )  # fmt: skip
    # Here the files were renamed since; the hashes still find them.
    (folders.loras / "styles" / "inkwash.safetensors").rename(folders.loras / "ink-v2.safetensors")
    (folders.embeddings / "badhands.safetensors").rename(folders.embeddings / "hands2.safetensors")
    remixed, missing = restore_addons(request_from_parameters(text + "\n"), library)
    assert remixed.prompt == "a cat <lora:ink-v2:0.5>, hands2"
    assert missing == []
    (folders.loras / "ink-v2.safetensors").unlink()
    _, missing = restore_addons(request_from_parameters(text), library)
    assert missing == ["LoRA inkwash"]


def test_info_shows_the_loras_of_an_a1111_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL.PngImagePlugin import PngInfo

    text = (
        "masterpiece, <lora:add_detail:0.6>, a fox <lora:ink wash:-0.4>\n"
        "Negative prompt: easynegative\n"
        "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1, "
        'Size: 512x512, Model hash: 6ce0161689, Model: v1-5, Lora hashes: "add_detail: '
        '7c6bad76eb54, ink wash: 0123456789ab", TI hashes: "easynegative: c74b4e810b03", '
        "Version: v1.10.1"
    )
    info = PngInfo()
    info.add_text("parameters", text)
    path = tmp_path / "a1111.png"
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    assert main(["info", str(path)]) == 0
    shown = capsys.readouterr().out
    assert "LoRA: add_detail (weight 0.6, hash 7c6bad76eb54)" in shown
    assert "LoRA: ink wash (weight -0.4, hash 0123456789ab)" in shown


def test_folders_default_under_the_data_folder_and_flags_reach_the_app(tmp_path: Path) -> None:
    import platformdirs

    from sdtui.cli import build_parser
    from sdtui.cli.common import settings_from_args
    from sdtui.config import load_settings

    settings = load_settings(env={}, path=tmp_path / "none.toml")
    data = Path(platformdirs.user_data_dir("sdtui"))
    assert (settings.loras, settings.embeddings) == (data / "loras", data / "embeddings")
    args = build_parser().parse_args(["--lora-dir", "~/my loras", "--embeddings-dir", "/e"])
    settings = settings_from_args(args)
    assert settings.loras == Path.home() / "my loras"
    assert settings.embeddings == Path("/e")


def test_a_missing_folder_or_none_at_all_is_explained(tmp_path: Path) -> None:
    from sdtui.addons import AddonError
    from sdtui.engine.adapters import prepare_pipeline

    request = GenerationRequest(prompt="a cat <lora:ink:1>", model="demo")
    library = AddonLibrary(AddonFolders(tmp_path / "nowhere", tmp_path / "nowhere"))
    with pytest.raises(ValidationError, match="does not exist"):
        library.resolve(request)
    with pytest.raises(AddonError, match="no LoRA folder is set"):
        prepare_pipeline(object(), request, None, "sd1")
