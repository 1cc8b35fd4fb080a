"""Saving images: atomic, private, never overwriting, safe names whatever the prompt."""

from __future__ import annotations

import errno
import multiprocessing
import stat
from pathlib import Path

import pytest
from PIL import Image

from sdtui.errors import SaveError
from sdtui.gallery import Gallery, read_metadata
from sdtui.gallery.files import slugify
from sdtui.params import GenerationRequest
from sdtui.results import GeneratedImage, GenerationResult


def make_generated(prompt: str = "a lighthouse at dusk", seed: int = 1234, color=(10, 120, 200)):
    request = GenerationRequest(prompt=prompt, model="demo", width=64, height=64, seed=seed)
    image = Image.new("RGB", (64, 64), color)
    generated = GeneratedImage(image=image, seed=seed, index=0, request=request)
    result = GenerationResult(request, [generated], "builtin:demo", "cpu", "fp32")
    return generated, result


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_saved_png_carries_the_request_and_is_indexed(gallery_dir: Path) -> None:
    gallery = Gallery(gallery_dir)
    generated, result = make_generated()
    entry = gallery.save(generated, result)

    assert entry.path.is_file() and entry.path.parent.parent == gallery_dir
    assert entry.path.name.endswith("-1234-a-lighthouse-at-dusk.png")
    assert read_metadata(entry.path).request() == generated.image_request()
    assert entry.request == generated.image_request()
    assert (entry.seed, entry.favorite) == (1234, False)
    with Image.open(entry.path) as im:
        assert im.getpixel((5, 5)) == (10, 120, 200)
    assert gallery.get(entry.id) == entry
    assert [e.id for e in gallery.list()] == [entry.id]


def test_identical_saves_make_two_files(gallery_dir: Path, monkeypatch) -> None:
    # Same prompt, same seed, same second: the second save must not replace the first.
    from datetime import datetime

    import sdtui.gallery.gallery as gallery_module

    fixed = datetime(2026, 1, 2, 3, 4, 5).astimezone()

    class FrozenDatetime(datetime):
        @classmethod
        def now(cls, tz=None):
            return fixed

    monkeypatch.setattr(gallery_module, "datetime", FrozenDatetime)
    gallery = Gallery(gallery_dir)
    first = gallery.save(*make_generated(color=(255, 0, 0)))
    second = gallery.save(*make_generated(color=(0, 255, 0)))

    assert first.path != second.path
    assert first.path.name == "20260102-030405-1234-a-lighthouse-at-dusk.png"
    assert second.path.name == "20260102-030405-1234-a-lighthouse-at-dusk-2.png"
    with Image.open(first.path) as a, Image.open(second.path) as b:
        assert a.getpixel((0, 0)) == (255, 0, 0) and b.getpixel((0, 0)) == (0, 255, 0)
    assert gallery.count() == 2


@pytest.mark.parametrize(
    "prompt",
    [
        "../../../etc/passwd",
        "/absolute/path/prompt",
        "a\\windows\\path",
        "CON",
        "nul.txt",
        "🐱🐶🦊 emoji only",
        "🐱🐶",
        "x" * 5000,
        "日本語のプロンプト " * 40,
        "   ...   ",
        "tab\tand\nnewline",
    ],
)
def test_unsafe_prompts_give_safe_names_inside_the_gallery(gallery_dir: Path, prompt: str) -> None:
    gallery = Gallery(gallery_dir)
    entry = gallery.save(*make_generated(prompt=prompt))
    resolved = entry.path.resolve()
    assert resolved.parent.parent == gallery_dir.resolve()
    name = entry.path.name
    assert len(name.encode()) <= 200
    assert "/" not in name and "\\" not in name and "\0" not in name and ".." not in name
    assert not any(ord(ch) < 32 for ch in name)
    assert name[:8].isdigit()  # starts with the date: never a reserved device name
    assert read_metadata(entry.path).prompt == prompt.replace("\r", "")


def test_slugify() -> None:
    assert slugify("A Cat, on the Moon!") == "a-cat-on-the-moon"
    assert slugify("../..") == "image"
    assert slugify("") == "image"
    assert slugify("café crème") == "café-crème"


def test_private_permissions(gallery_dir: Path) -> None:
    gallery = Gallery(gallery_dir)
    entry = gallery.save(*make_generated())
    gallery.thumbnail(entry.id, 32)
    for folder in (gallery_dir, entry.path.parent, gallery_dir / ".sdtui"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert stat.S_IMODE(entry.path.stat().st_mode) == 0o600
    assert stat.S_IMODE((gallery_dir / ".sdtui" / "index.sqlite3").stat().st_mode) == 0o600


class FailingImage:
    """Writes half a PNG, then the disk is full."""

    def save(self, fh, format=None, pnginfo=None):  # noqa: A002 - Pillow's signature
        fh.write(b"\x89PNG\r\n\x1a\n" + b"\0" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_raises_save_error_and_leaves_nothing(gallery_dir: Path) -> None:
    gallery = Gallery(gallery_dir)
    good = gallery.save(*make_generated())
    generated, result = make_generated(seed=99)
    broken = GeneratedImage(FailingImage(), 99, 0, generated.request)  # type: ignore[arg-type]
    before = all_files(gallery_dir)

    with pytest.raises(SaveError, match="No space left on device"):
        gallery.save(broken, result)

    after = [p for p in all_files(gallery_dir) if not p.name.startswith("index.sqlite3")]
    assert after == [p for p in before if not p.name.startswith("index.sqlite3")]
    assert [e.id for e in gallery.list()] == [good.id]


def test_unwritable_gallery_raises_save_error(gallery_dir: Path, tmp_path: Path) -> None:
    gallery = Gallery(gallery_dir)
    generated, result = make_generated()
    # A file where today's folder should be: the folder cannot be created.
    from datetime import datetime

    (gallery_dir / datetime.now().strftime("%Y-%m-%d")).write_text("in the way")
    with pytest.raises(SaveError, match="could not save"):
        gallery.save(generated, result)
    assert gallery.count() == 0


def _save_many(root: str, worker: int, count: int) -> None:
    gallery = Gallery(Path(root))
    for i in range(count):
        gallery.save(*make_generated(prompt="same prompt", seed=7, color=(worker, i, 0)))
    gallery.close()


def test_two_processes_saving_at_once(gallery_dir: Path) -> None:
    Gallery(gallery_dir).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_save_many, args=(str(gallery_dir), w, 8)) for w in (1, 2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0

    gallery = Gallery(gallery_dir)
    pngs = [p for p in all_files(gallery_dir) if p.suffix == ".png" and ".sdtui" not in p.parts]
    assert len(pngs) == 16
    assert gallery.count() == 16
    assert {e.path for e in gallery.list(limit=100)} == set(pngs)
    colors = set()
    for path in pngs:
        with Image.open(path) as im:
            colors.add(im.getpixel((0, 0)))
    assert colors == {(w, i, 0) for w in (1, 2) for i in range(8)}
    assert gallery.sync().added == 0  # nothing the index missed


def test_no_temporary_files_left(gallery_dir: Path) -> None:
    gallery = Gallery(gallery_dir)
    for seed in range(3):
        gallery.save(*make_generated(seed=seed))
    leftovers = [p for p in all_files(gallery_dir) if p.name.startswith(".") or "tmp" in p.name]
    assert leftovers == []
