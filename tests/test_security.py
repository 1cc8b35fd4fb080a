"""Security: pickles need an explicit opt-in, the Hugging Face token is never written
anywhere, files are private, file names are safe, images from elsewhere are read safely."""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import shutil
import stat
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import gallery_pngs
from PIL import Image, PngImagePlugin
from rich.text import Text
from textual.geometry import Region

from sdtui.cli import main
from sdtui.config import load_settings
from sdtui.gallery import Gallery
from sdtui.logging_setup import log_path, redact, setup_logging, stop_logging
from sdtui.params import GenerationRequest
from sdtui.results import GeneratedImage, GenerationResult
from sdtui.tui.app import SdtuiApp

torch.set_num_threads(1)
TINY = ["--model", "demo", "--steps", "2", "--width", "64", "--height", "64"]
TOKEN = "hf_" + "FakeTokenForTests" + "x9Y8z7W6v5U4t3S2r1Q0"
SIZE = (120, 40)


@pytest.fixture(autouse=True)
def close_log() -> Any:
    yield
    stop_logging()


# -- pickles -------------------------------------------------------------------------


class _Payload:
    """Unpickling this runs a shell command that leaves a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (os.system, (f"touch {self.marker}",))


def write_evil_pickle(path: Path, marker: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps({"state_dict": _Payload(marker)}))
    return path


def test_a_pickle_checkpoint_is_never_unpickled_without_the_opt_in(
    tmp_path: Path, gallery_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "code-ran"
    for suffix in (".ckpt", ".pt", ".pth", ".bin"):
        evil = write_evil_pickle(tmp_path / f"model{suffix}", marker)
        assert main(["generate", "x", "--model", str(evil)]) == 2
        err = capsys.readouterr().err
        assert "pickle" in err and "--allow-pickle" in err
        assert not marker.exists()
    # Even with the opt-in, only plain tensors are read (torch's weights_only).
    assert main(["generate", "x", "--model", str(evil), "--allow-pickle"]) == 1
    assert "cannot load" in capsys.readouterr().err
    assert not marker.exists()
    assert load_settings().allow_pickle is False


@pytest.mark.parametrize("component", ["unet", "text_encoder"])
def test_safetensors_are_preferred_and_pickle_weights_in_a_folder_need_the_opt_in(
    component: str,
    demo_model_dir: Path,
    tmp_path: Path,
    gallery_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    marker = tmp_path / "code-ran"
    weights, pickle_name = {
        "unet": ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"),
        "text_encoder": ("model.safetensors", "pytorch_model.bin"),
    }[component]
    both = tmp_path / "both"
    shutil.copytree(demo_model_dir, both)
    write_evil_pickle(both / component / pickle_name, marker)
    assert main(["generate", "x", *TINY[2:], "--model", str(both)]) == 0
    assert not marker.exists() and len(gallery_pngs(gallery_dir)) == 1
    capsys.readouterr()
    only = tmp_path / "only-pickle"
    shutil.copytree(both, only)
    (only / component / weights).unlink()
    assert main(["generate", "x", *TINY[2:], "--model", str(only)]) == 2
    err = capsys.readouterr().err
    assert "pickle weights (.bin)" in err and "--allow-pickle" in err
    assert main(["generate", "x", *TINY[2:], "--model", str(only), "--allow-pickle"]) == 1
    assert not marker.exists()
    assert len(gallery_pngs(gallery_dir)) == 1


# -- the Hugging Face token ------------------------------------------------------------


def files_holding(token: str, *folders: Path) -> list[Path]:
    found = []
    for folder in folders:
        if not folder.exists():
            continue
        for path in folder.rglob("*"):
            if path.is_file() and token.encode() in path.read_bytes():
                found.append(path)
    return found


def test_redaction_of_messages_tracebacks_and_token_shaped_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_TOKEN", "my-own-secret-value")
    assert redact("Bearer my-own-secret-value") == "Bearer <token>"
    assert redact("other hf_abcdefghijklmnopqrstuvwxyz123 seen") == "other <token> seen"
    assert redact("hf_short stays") == "hf_short stays"
    path = setup_logging()
    assert path is not None
    logger = logging.getLogger("sdtui.test")
    logger.error("request with %s failed", "my-own-secret-value")
    try:
        raise ValueError(f"header Authorization: Bearer {TOKEN}")
    except ValueError:
        logger.exception("hub call failed")
    text = path.read_text()
    assert "my-own-secret-value" not in text and TOKEN not in text
    assert text.count("<token>") == 2 and "Traceback" in text


def test_the_token_is_never_written_to_images_index_logs_or_the_terminal(
    isolated_dirs: Path,
    gallery_dir: Path,
    demo_model_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from diffusers import AutoPipelineForText2Image
    from huggingface_hub.errors import GatedRepoError

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert main(["generate", "with a token set", *TINY, "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["path"] and TOKEN not in out + err

    class Response:
        status_code = 403
        headers: dict[str, str] = {}
        request = None

    def from_pretrained(location: str, **kwargs: Any) -> Any:
        assert kwargs.get("token") == TOKEN  # the hub gets it, nothing else does
        cause = GatedRepoError(f"403 for {location}, token {TOKEN}", response=Response())
        raise OSError(f"could not fetch {location} with Authorization: Bearer {TOKEN}") from cause

    monkeypatch.setattr(AutoPipelineForText2Image, "from_pretrained", from_pretrained)
    assert main(["generate", "gated", "--model", "owner/gated", "--steps", "2"]) == 1
    out, err = capsys.readouterr()
    assert "is gated" in err and TOKEN not in out + err
    # A failure that carries the token in its own text is logged with a traceback: redacted.
    from sdtui.cli import generate

    def leak(*args: Any) -> Any:
        raise RuntimeError(f"surprise, token={TOKEN}")

    monkeypatch.setattr(generate, "build_request", leak)
    assert main(["generate", "x", "--model", "demo"]) == 1
    out, err = capsys.readouterr()
    assert "surprise" in err and TOKEN not in out + err
    log_text = log_path().read_text()
    assert "surprise, token=<token>" in log_text and "is gated" in log_text
    stop_logging()
    assert files_holding(TOKEN, gallery_dir, log_path().parent, isolated_dirs / "config") == []
    assert len(gallery_pngs(gallery_dir)) == 1


async def test_the_token_is_never_shown_on_screen(
    gallery_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from diffusers import AutoPipelineForText2Image, UNet2DConditionModel

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # the hub call itself is replaced below
    real = AutoPipelineForText2Image.from_pretrained

    def from_pretrained(location: str, **kwargs: Any) -> Any:
        if location == "owner/name":
            raise RuntimeError(f"odd failure, Authorization: Bearer {TOKEN}")
        return real(location, **kwargs)

    def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"kernel failed for request signed {TOKEN}")

    monkeypatch.setattr(AutoPipelineForText2Image, "from_pretrained", from_pretrained)
    setup_logging()
    app = SdtuiApp(load_settings({"model": "owner/name"}))
    async with app.run_test(size=SIZE) as pilot:

        async def settle() -> None:
            for _ in range(1200):
                if app.last_error and not app.jobs.busy and not app.jobs.pending:
                    return
                await pilot.pause(0.05)

        await settle()
        assert "odd failure" in app.last_error and TOKEN not in app.last_error
        assert TOKEN not in app.export_screenshot()
        # A failure in the middle of a generation, with the token in its text.
        monkeypatch.setattr(UNet2DConditionModel, "forward", forward)
        app.last_error = ""
        app.prompt_editor.load_text("x")
        app.params.set_value("model", "demo")
        app.params.set_value("steps", "2")
        await pilot.press("ctrl+g")
        await settle()
        assert "kernel failed" in app.last_error and TOKEN not in app.last_error
        assert TOKEN not in app.export_screenshot()
    stop_logging()
    assert files_holding(TOKEN, log_path().parent) == []


# -- private files ------------------------------------------------------------------


def modes(folder: Path) -> dict[str, int]:
    return {
        str(p.relative_to(folder)): stat.S_IMODE(p.stat().st_mode)
        for p in [folder, *folder.rglob("*")]
    }


def test_gallery_index_log_and_config_are_private_even_with_umask_0(
    isolated_dirs: Path, demo_model_dir: Path, gallery_dir: Path
) -> None:
    code = (
        "import os, sys\n"
        "os.umask(0)\n"
        "from sdtui.cli import main\n"
        "from sdtui.tui.themes import remember_theme\n"
        "from sdtui.prompts.datafiles import write_entry\n"
        "from sdtui.config import config_dir\n"
        "remember_theme('sdtui-light')\n"
        "write_entry(config_dir() / 'presets' / 'mine.toml', 'preset', {'steps': 3}, False)\n"
        f"sys.exit(main({['generate', 'private', *TINY]!r}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    for folder in (gallery_dir, isolated_dirs / "logs", isolated_dirs / "config"):
        found = modes(folder)
        assert found, folder
        for name, mode in found.items():
            is_dir = (folder / name).is_dir()
            assert mode == (0o700 if is_dir else 0o600), (folder, name, oct(mode))
    assert (isolated_dirs / "logs" / "sdtui.log").exists()
    assert any(name.endswith(".png") for name in modes(gallery_dir))


# -- file names -------------------------------------------------------------------

NASTY_PROMPTS = [
    "../../../../etc/passwd",
    "/absolute/path/name",
    "..",
    "CON",
    "nul.txt",
    "LPT1 COM9 aux",
    "-rf --no-preserve-root",
    ".hidden dot file",
    "back\\slash\\name",
    "x" * 5000,
    "é" * 300,
    "🌍🚀👩🏽‍🚀",
    "%2e%2e%2f  $(rm -rf ~) `id` ; | & > <",
    "名前 の ない 画像 " * 40,
]


@pytest.mark.parametrize("prompt", NASTY_PROMPTS, ids=range(len(NASTY_PROMPTS)))
def test_any_prompt_gives_a_safe_file_name_inside_the_gallery(
    prompt: str, gallery_dir: Path
) -> None:
    request = GenerationRequest(prompt=prompt, model="demo", seed=3, width=64, height=64)
    generated = GeneratedImage(Image.new("RGB", (64, 64), "red"), 3, 0, request)
    with Gallery(gallery_dir) as gallery:
        for _ in range(2):  # the same name twice: the second gets its own
            entry = gallery.save(
                generated, GenerationResult(request, [generated], "demo", "cpu", "fp32")
            )
    files = gallery_pngs(gallery_dir)
    assert len(files) == 2
    for path in files:
        assert path.resolve().parent.parent == gallery_dir.resolve()
        assert re.fullmatch(r"[\w-]+\.png", path.name) and not path.name.startswith(("-", "."))
        assert len(path.name.encode()) <= 200
        assert path.stem.split("-")[0].isdigit()  # starts with the date: never a device name
    assert Image.open(entry.path).text["parameters"].startswith(prompt)


# -- images from elsewhere -------------------------------------------------------------

HOSTILE_TEXT = "a \x1b[2J\x1b]0;owned\x07 [bold]lighthouse[/bold] [link=x]y[/link] \x9b31m"


def png_with_texts(path: Path, texts: dict[str, str], size: tuple[int, int] = (16, 16)) -> Path:
    info = PngImagePlugin.PngInfo()
    for key, value in texts.items():
        info.add_itxt(key, value)
    Image.new("RGB", size, "blue").save(path, pnginfo=info)
    return path


def bomb_png(path: Path) -> Path:
    """A PNG that claims 60000x60000 pixels (10.8 GB decoded) in a few kilobytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    text = b"parameters\x00bomb\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64"
    data = zlib.compress(b"\x00" * 2_000_000)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"tEXt", text)
        + chunk(b"IDAT", data)
        + chunk(b"IEND", b"")
    )
    return path


@pytest.fixture
def hostile_images(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    settings = "Steps: 20, Sampler: Euler, CFG scale: 7, Seed: 5, Size: 64x64, Model: m"
    return {
        "escapes": png_with_texts(
            folder / "escapes.png",
            {"parameters": f"{HOSTILE_TEXT}\nNegative prompt: \x1b[31mred\n{settings}"},
        ),
        "huge": png_with_texts(
            folder / "huge.png", {"parameters": "w " * 4_000_000 + "\n" + settings}
        ),
        "malformed": png_with_texts(
            folder / "malformed.png",
            {
                "parameters": "\nSteps: many, Sampler: , CFG scale: 1e999, Seed: -5, Size: 0x0",
                "sdtui": '{"request": {"prompt": 5, "steps": "x"}, "seed": [1]',
                "prompt": "{not json",
                "workflow": "[]",
            },
        ),
        "bomb": bomb_png(folder / "bomb.png"),
        "not-png": folder / "not-a.png",
    }


def test_info_reads_hostile_images_safely(
    hostile_images: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    hostile_images["not-png"].write_bytes(b"GIF89a pretending")
    for name, path in hostile_images.items():
        code = main(["info", str(path)])
        out, err = capsys.readouterr()
        assert code in (0, 1, 2), (name, code, err)
        assert err.count("\n") <= 1 and "Traceback" not in err
        for text in (out, err):
            assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text, name
        if name == "escapes":
            assert "[bold]lighthouse[/bold] [link=x]y[/link]" in out  # markup as text
            assert "\ufffd[2J" in out
        assert main(["info", "--json", str(path)]) in (0, 1, 2)
        out, _ = capsys.readouterr()
        assert "\x1b" not in out and "\x9b" not in out
        if name == "escapes":
            assert json.loads(out)["prompt"] == HOSTILE_TEXT  # JSON keeps the exact text


def test_import_reads_or_refuses_hostile_images_without_crashing(
    hostile_images: dict[str, Path], gallery_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile_images["not-png"].write_bytes(b"GIF89a pretending")
    code = main(["gallery", "import", str(hostile_images["escapes"].parent)])
    out, err = capsys.readouterr()
    assert code in (0, 1), err
    assert "\x1b" not in out + err
    for command in (["gallery", "list"], ["gallery", "list", "--json"]):
        assert main(command) == 0
        out = capsys.readouterr().out
        assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out
    prompts = [json.loads(line)["prompt"] for line in out.splitlines()]
    assert HOSTILE_TEXT in prompts  # JSON still carries the exact text
    with Gallery(gallery_dir) as gallery:
        imported = {Path(e.path).name for e in gallery.list()}
        assert "escapes.png" in imported and "bomb.png" not in imported
        assert "not-a.png" not in imported
        entry = next(e for e in gallery.list() if e.path.name == "escapes.png")
        assert gallery.thumbnail(entry.id, 64).exists()


async def test_the_app_shows_hostile_metadata_literally_and_sends_no_escapes(
    hostile_images: dict[str, Path], gallery_dir: Path
) -> None:
    with Gallery(gallery_dir) as gallery:
        gallery.import_paths([hostile_images["escapes"]])

    class NoEngine:
        def load(self, model: str, on_status: Any = None) -> Any:
            from sdtui.errors import ModelNotFoundError

            raise ModelNotFoundError("no model in this test")

    app = SdtuiApp(load_settings({"model": "none"}), engine_factory=lambda s: NoEngine())
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(400):
            if app.history.entries:
                break
            await pilot.pause(0.05)
        await pilot.pause()
        label = app.history.get_option_at_index(0).prompt
        assert isinstance(label, Text) and "[bold]lighthouse[/bold]" in label.plain
        for widget in (app.history, app.preview.query_one("#caption")):
            width, height = widget.size
            strips = widget.render_lines(Region(0, 0, width, height))
            drawn = "".join(seg.text for strip in strips for seg in strip)
            assert "\x1b" not in drawn and "\x07" not in drawn and "\x9b" not in drawn
            assert "[bold]lighthouse" in drawn


def drawn_text(widget: Any) -> str:
    """Exactly what a widget sends to the terminal, as text."""
    width, height = widget.size
    strips = widget.render_lines(Region(0, 0, width, height))
    return "".join(seg.text for strip in strips for seg in strip)


async def test_the_gallery_browser_shows_hostile_metadata_literally(
    hostile_images: dict[str, Path], gallery_dir: Path
) -> None:
    from textual.app import App

    from sdtui.tui.gallery_detail import GalleryDetailScreen
    from sdtui.tui.gallery_screen import GalleryScreen

    gallery = Gallery(gallery_dir)
    gallery.import_paths([hostile_images["escapes"]])

    class Host(App[None]):
        def on_mount(self) -> None:
            self.push_screen(GalleryScreen(gallery))

    try:
        async with Host().run_test(size=SIZE) as pilot:
            for _ in range(400):
                screen = pilot.app.screen
                if isinstance(screen, GalleryScreen) and screen.pages is not None:
                    break
                await pilot.pause(0.05)
            await pilot.pause()
            shown = [drawn_text(screen.list), drawn_text(screen.query_one("#gallery-info"))]
            await pilot.press("enter")
            for _ in range(100):
                if isinstance(pilot.app.screen, GalleryDetailScreen):
                    break
                await pilot.pause(0.05)
            shown.append(drawn_text(pilot.app.screen.query_one("#detail-settings")))
            for text in shown:
                assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text
            assert "[bold]lighthouse" in shown[0] and "[bold]lighthouse" in shown[2]
    finally:
        gallery.close()
