"""File names that are not UTF-8 or carry escape sequences: stored exactly, shown escaped."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from sdtui.cli import main
from sdtui.display import path_text, printable
from sdtui.gallery import Gallery
from sdtui.gallery.names import from_index, to_index

A1111 = "a red fox in snow\nSteps: 5, Sampler: Euler, CFG scale: 7, Seed: 9, Size: 8x8"


def png_at(folder: Path, name: bytes, text: str = A1111) -> Path:
    """A small PNG whose file name is the exact bytes `name`."""
    info = PngInfo()
    info.add_text("parameters", text)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG", pnginfo=info)
    folder.mkdir(parents=True, exist_ok=True)
    path = os.path.join(os.fsencode(folder), name)
    with open(path, "wb") as fh:
        fh.write(buffer.getvalue())
    return Path(os.fsdecode(path))


def run(*argv: str) -> tuple[int, bytes, bytes]:
    """The CLI as a terminal would receive it: the bytes written, in UTF-8."""
    out, err = io.BytesIO(), io.BytesIO()
    out_text = io.TextIOWrapper(out, encoding="utf-8", errors="strict", write_through=True)
    err_text = io.TextIOWrapper(err, encoding="utf-8", errors="strict", write_through=True)
    with redirect_stdout(out_text), redirect_stderr(err_text):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def assert_harmless(data: bytes) -> None:
    text = data.decode("utf-8")  # raises on raw non-UTF-8 bytes
    assert all(ch in "\n\t" or printable(ch) == ch for ch in text), repr(text)


def test_index_form_is_lossless() -> None:
    for raw in (b"caf\xc3\xa9.png", b"bad-\xff\xfe.png", b"2025-01-01/%41\xff.png"):
        rel = os.fsdecode(raw)
        stored = to_index(rel)
        stored.encode("utf-8")
        assert from_index(stored) == rel
    assert to_index("plain/name.png") == "plain/name.png"


def test_non_utf8_name_is_listed_and_others_still_indexed(gallery_dir: Path) -> None:
    bad = png_at(gallery_dir / "2025-01-01", b"fox-\xff\xfe.png")
    good = png_at(gallery_dir / "2025-01-01", b"fox-good.png", A1111.replace("fox", "owl"))
    code, out, err = run("gallery", "list", "--json")
    assert code == 0, err
    assert_harmless(out)
    rows = [json.loads(line) for line in out.decode().splitlines()]
    assert {os.fsencode(row["path"]) for row in rows} == {os.fsencode(bad), os.fsencode(good)}

    code, out, err = run("gallery", "list")
    assert code == 0 and b"fox" in out
    assert_harmless(out)
    code, out, err = run("gallery", "rebuild")
    assert code == 0 and b"indexed 2 images" in out, err
    with Gallery(gallery_dir) as gallery:
        entry = next(e for e in gallery.list() if e.path == bad)
        gallery.set_favorite(entry.id)
        gallery.thumbnail(entry.id, 16)
        code, out, err = run("gallery", "show", str(entry.id))
        assert code == 0 and b"\\xff\\xfe" in out
        assert_harmless(out)
        token = gallery.delete(entry.id)
        assert not bad.exists()
        restored = gallery.undo_delete(token)
        assert restored.path == bad and restored.favorite
    code, out, err = run("gallery", "rebuild")
    with Gallery(gallery_dir) as gallery:
        assert [e.favorite for e in gallery.list() if e.path == bad] == [True]


def test_escape_sequences_in_names_never_reach_the_terminal(gallery_dir: Path, tmp_path) -> None:
    name = b"\x1b]0;pwned\x07\x1b[2J\xe2\x80\xaegnp.png"
    outside = png_at(tmp_path / "in", name)
    for argv in (
        ["info", str(outside)],
        ["gallery", "import", str(outside)],
        ["gallery", "show", str(outside)],
        ["gallery", "list"],
        ["gallery", "rebuild"],
    ):
        code, out, err = run(*argv)
        assert code == 0, (argv, err)
        assert_harmless(out)
        assert_harmless(err)
        assert b"\x1b" not in out + err
    code, out, err = run("gallery", "import", str(tmp_path / "in" / "missing\x1b[2J.png"))
    assert code == 2 and b"\x1b" not in err
    assert_harmless(err)


def test_log_lines_are_printable(isolated_dirs: Path) -> None:
    # In a child process: the test runner's own log capture would hold the raw name.
    code = (
        "import logging, os\n"
        "from sdtui.logging_setup import setup_logging, stop_logging\n"
        "path = setup_logging()\n"
        "name = os.fsdecode(b'x\\xff\\x1b[2J.png')\n"
        "logging.getLogger('sdtui.test').warning('skipping %s', name)\n"
        "stop_logging()\n"
        "print(path)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    data = Path(done.stdout.strip()).read_bytes()
    assert b"skipping" in data
    assert b"\x1b" not in data
    data.decode("utf-8")


def test_path_text_escapes_unambiguously() -> None:
    assert path_text(os.fsdecode(b"a\xffb")) == "a\\xffb"
    assert path_text("a\\xffb") == "a\\\\xffb"
    assert path_text("tab\there\x1b") == "tab\\x09here\\x1b"
    assert path_text("\u202egnp.exe") == "\\u202egnp.exe"
    assert path_text("café.png") == "café.png"


names = st.binary(min_size=1, max_size=60).map(lambda b: b.replace(b"/", b"_").replace(b"\0", b"_"))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(names, min_size=1, max_size=4, unique=True))
def test_random_byte_names_never_break_the_gallery(gallery_dir: Path, raw_names) -> None:
    shutil.rmtree(gallery_dir, ignore_errors=True)
    day = gallery_dir / "2025-02-03"
    made = set()
    for raw in raw_names:
        path = png_at(day, raw + b".png")
        if not raw.startswith(b"."):
            made.add(os.fsencode(path))
    for argv in (["gallery", "list", "--json"], ["gallery", "rebuild"], ["gallery", "list"]):
        code, out, err = run(*argv)
        assert code == 0, err
        assert_harmless(out)
        assert_harmless(err)
        if argv[-1] == "--json":
            listed = {os.fsencode(json.loads(line)["path"]) for line in out.decode().splitlines()}
            assert listed == made
    for path in made:
        code, out, err = run("info", os.fsdecode(path))
        assert code == 0, err
        assert_harmless(out)


@pytest.mark.parametrize("raw", [b"\xff.png", b"\x1b[31m.png"])
def test_app_gallery_labels_are_printable(gallery_dir: Path, raw: bytes) -> None:
    from sdtui.tui.gallery_list import row_text

    png_at(gallery_dir / "2025-01-01", raw, "")
    with Gallery(gallery_dir) as gallery:
        gallery.sync()
        (entry,) = gallery.list()
    label = row_text(entry).plain
    assert printable(label) == label and "2025-01-01/" in label
    label.encode("utf-8")


@settings(max_examples=300)
@given(st.binary(max_size=40), st.binary(max_size=40))
def test_path_text_is_printable_and_tells_names_apart(a: bytes, b: bytes) -> None:
    shown_a, shown_b = path_text(os.fsdecode(a)), path_text(os.fsdecode(b))
    assert_harmless(shown_a.encode("utf-8"))
    assert all(ch not in "\n\t" for ch in shown_a)
    assert (shown_a == shown_b) == (a == b)


async def test_the_app_gallery_shows_hostile_names(gallery_dir: Path) -> None:
    from textual.app import App

    from sdtui.tui.gallery_screen import GalleryScreen

    png_at(gallery_dir / "2025-01-01", b"\xff\xfe-\x1b]0;title\x07.png", "")
    png_at(gallery_dir / "2025-01-01", b"plain.png", "")

    class Host(App[None]):
        def __init__(self, gallery: Gallery) -> None:
            super().__init__()
            self.gallery_under_test = gallery

        def on_mount(self) -> None:
            self.push_screen(GalleryScreen(self.gallery_under_test))

    with Gallery(gallery_dir) as gallery:
        gallery.sync()
        async with Host(gallery).run_test(size=(120, 40)) as pilot:
            for _ in range(200):
                if isinstance(pilot.app.screen, GalleryScreen) and pilot.app.screen.pages:
                    break
                await pilot.pause(0.02)
            screen = pilot.app.screen
            assert screen.list.count == 2
            await pilot.press("down", "up", "down")
            await pilot.app.workers.wait_for_complete()
            lines = [screen.list.render_line(y).text for y in range(2)]
            assert any("\\xff\\xfe-\\x1b]0;title\\x07.png" in line for line in lines), lines
            for line in lines:
                assert printable(line) == line
