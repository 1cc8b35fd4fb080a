"""The gallery index agrees with the files: sync, rebuild, search, trash, damage."""

from __future__ import annotations

import json
import logging
import shutil
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from sdtui.errors import ValidationError
from sdtui.gallery import EntryNotFoundError, Gallery
from sdtui.params import GenerationRequest
from sdtui.results import GeneratedImage, GenerationResult

A1111_TEXT = (
    "portrait of an old sailor, dramatic light\n"
    "Negative prompt: cartoon\n"
    "Steps: 30, Sampler: Euler a, Schedule type: Automatic, CFG scale: 6, Seed: 42, "
    "Size: 64x64, Model hash: 6ce0161689, Model: dreamshaper_8, "
    'Lora hashes: "add_detail: 7c6bad76eb54"'
)


def make_generated(prompt: str, seed: int = 1, model: str = "demo", negative: str = ""):
    request = GenerationRequest(
        prompt=prompt, negative_prompt=negative, model=model, width=64, height=64, seed=seed
    )
    generated = GeneratedImage(Image.new("RGB", (64, 64), (seed % 256, 0, 0)), seed, 0, request)
    return generated, GenerationResult(request, [generated], model, "cpu", "fp32")


def save(gallery: Gallery, prompt: str, **kwargs):
    return gallery.save(*make_generated(prompt, **kwargs))


def write_png(path: Path, texts: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngInfo()
    for key, value in texts.items():
        info.add_text(key, value)
    Image.new("RGB", (64, 64), (9, 9, 9)).save(path, pnginfo=info)
    return path


def indexed_paths(gallery: Gallery) -> set[Path]:
    return {e.path for e in gallery.list(limit=10_000)}


def image_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*.png") if not any(x.startswith(".") for x in p.parts[-3:])}


@pytest.fixture
def gallery(gallery_dir: Path):
    g = Gallery(gallery_dir)
    yield g
    g.close()


def test_search_finds_words_of_the_prompt(gallery: Gallery) -> None:
    cat = save(gallery, "oil painting of a cat on a rainbow", seed=1)
    ship = save(gallery, "a pirate ship in a storm", seed=2, negative="blurry cats")
    save(gallery, "Ölgemälde eines Hundes", seed=3)

    assert [e.id for e in gallery.list(search="rainbow")] == [cat.id]
    assert [e.id for e in gallery.list(search="PAINTING cat")] == [cat.id]
    assert {e.id for e in gallery.list(search="cat")} == {cat.id, ship.id}  # prefix: cats
    assert [e.id for e in gallery.list(search="storm")] == [ship.id]
    assert gallery.count(search="olgemalde") == 1  # accents folded
    assert gallery.list(search="dragon") == []
    # Operators and quotes are words, not query syntax.
    assert gallery.list(search='cat" OR ship NEAR(') == []
    assert gallery.count(search='"') == 3  # no words: no filter


def test_filters_sort_and_paging(gallery: Gallery) -> None:
    entries = [save(gallery, f"picture number {i}", seed=i, model="demo") for i in range(5)]
    other = save(gallery, "picture from another model", seed=9, model="sd15")
    assert gallery.models() == ["demo", "sd15"]
    assert [e.id for e in gallery.list(model="sd15")] == [other.id]
    assert gallery.count(model="demo") == 5

    newest = gallery.list()
    assert [e.id for e in newest] == [other.id] + [e.id for e in reversed(entries)]
    assert [e.id for e in gallery.list(sort="oldest", limit=2)] == [entries[0].id, entries[1].id]
    assert [e.id for e in gallery.list(limit=2, offset=1)] == [entries[4].id, entries[3].id]

    now = datetime.now().astimezone()
    assert gallery.count(since=now - timedelta(hours=1)) == 6
    assert gallery.count(until=now - timedelta(hours=1)) == 0
    with pytest.raises(ValidationError, match="sort"):
        gallery.list(sort="sideways")


def test_favorites(gallery: Gallery, gallery_dir: Path) -> None:
    a = save(gallery, "first", seed=1)
    b = save(gallery, "second", seed=2)
    assert gallery.set_favorite(b.id, True).favorite
    assert [e.id for e in gallery.list(favorites=True)] == [b.id]
    gallery.set_favorite(b.id, False)
    assert gallery.count(favorites=True) == 0
    gallery.set_favorite(a.id, True)
    with pytest.raises(EntryNotFoundError):
        gallery.set_favorite(12345, True)

    # Favourites are not in the PNGs, yet survive a rebuild and a destroyed index.
    gallery.rebuild()
    assert [e.path for e in gallery.list(favorites=True)] == [a.path]
    gallery.close()
    (gallery_dir / ".sdtui" / "index.sqlite3").write_bytes(b"\0garbage" * 512)
    reopened = Gallery(gallery_dir)
    assert [e.path for e in reopened.list(favorites=True)] == [a.path]
    reopened.close()


def test_delete_moves_to_trash_and_undo_restores(gallery: Gallery, gallery_dir: Path) -> None:
    keep = save(gallery, "keep me", seed=1)
    gone = save(gallery, "delete me", seed=2)
    gallery.set_favorite(gone.id, True)
    original_bytes = gone.path.read_bytes()

    token = gallery.delete(gone.id)
    assert not gone.path.exists()
    trashed = list((gallery_dir / ".trash").rglob("*.png"))
    assert len(trashed) == 1 and trashed[0].read_bytes() == original_bytes
    assert indexed_paths(gallery) == {keep.path} == image_files(gallery_dir)
    assert gallery.get(gone.id) is None
    assert gallery.sync().added == 0  # the trash is not part of the gallery

    restored = gallery.undo_delete(token)
    assert restored.path == gone.path and restored.path.read_bytes() == original_bytes
    assert restored.favorite and restored.request == gone.request
    assert indexed_paths(gallery) == {keep.path, gone.path} == image_files(gallery_dir)
    with pytest.raises(EntryNotFoundError):
        gallery.undo_delete(token)
    with pytest.raises(EntryNotFoundError):
        gallery.delete(99999)


def test_undo_never_overwrites_a_new_file_of_the_same_name(gallery: Gallery) -> None:
    entry = save(gallery, "a name to reuse", seed=5)
    token = gallery.delete(entry.id)
    entry.path.write_bytes(b"someone else's file")
    restored = gallery.undo_delete(token)
    assert restored.path != entry.path
    assert entry.path.read_bytes() == b"someone else's file"
    assert restored.path.name.endswith("-2.png")


def test_sync_notices_files_added_changed_and_removed_by_hand(
    gallery: Gallery, gallery_dir: Path
) -> None:
    ours = save(gallery, "made here", seed=1)
    second = save(gallery, "made here too", seed=2)
    a1111 = write_png(gallery_dir / "from-forge" / "00001-42.png", {"parameters": A1111_TEXT})
    plain = write_png(gallery_dir / "plain.png", {})
    second.path.unlink()

    report = gallery.sync()
    assert (report.added, report.removed, report.updated) == (2, 1, 0)
    assert indexed_paths(gallery) == {ours.path, a1111, plain} == image_files(gallery_dir)

    entry = gallery.entry_for_path(a1111)
    assert entry is not None and entry.source == "a1111"
    assert entry.prompt == "portrait of an old sailor, dramatic light"
    assert (entry.model, entry.seed, entry.scheduler) == ("dreamshaper_8", 42, "Euler a")
    assert entry.extras["Lora hashes"] == "add_detail: 7c6bad76eb54"
    assert entry.request is not None and entry.request.negative_prompt == "cartoon"
    assert [e.path for e in gallery.list(search="sailor")] == [a1111]
    plain_entry = gallery.entry_for_path(plain)
    assert plain_entry is not None and plain_entry.source == "none"
    assert plain_entry.request is None and (plain_entry.width, plain_entry.height) == (64, 64)

    # Edited by hand: same path, new content -> same id, new settings.
    write_png(a1111, {"parameters": A1111_TEXT.replace("old sailor", "young pilot")})
    report = gallery.sync()
    assert (report.added, report.updated, report.removed) == (0, 1, 0)
    updated = gallery.entry_for_path(a1111)
    assert updated is not None and updated.id == entry.id
    assert gallery.list(search="sailor") == [] and gallery.count(search="pilot") == 1
    assert gallery.sync() == type(report)()  # nothing changed: nothing read


def test_sync_reads_only_new_files(gallery: Gallery, gallery_dir: Path, monkeypatch) -> None:
    for i in range(4):
        save(gallery, f"image {i}", seed=i)
    new = write_png(gallery_dir / "new.png", {"parameters": A1111_TEXT})
    import sdtui.gallery.gallery as gallery_module

    read: list[Path] = []
    real = gallery_module.read_metadata
    monkeypatch.setattr(
        gallery_module, "read_metadata", lambda p, **kw: read.append(p) or real(p, **kw)
    )
    gallery.sync()
    assert read == [new]


def test_corrupt_and_truncated_pngs_are_skipped_with_a_warning(
    gallery: Gallery, gallery_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = save(gallery, "a good image", seed=1)
    truncated = write_png(gallery_dir / "truncated.png", {"parameters": A1111_TEXT})
    truncated.write_bytes(truncated.read_bytes()[:-40])
    garbage = gallery_dir / "garbage.png"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\xff" * 300)
    text = gallery_dir / "notes.png"
    text.write_text("not an image")

    with caplog.at_level(logging.WARNING, logger="sdtui.gallery"):
        report = gallery.sync()
    assert {p for p, _ in report.skipped} == {truncated, garbage, text}
    assert indexed_paths(gallery) == {good.path}
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "truncated.png" in logged and "garbage.png" in logged and "notes.png" in logged

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sdtui.gallery"):
        assert gallery.sync().skipped == []  # unchanged bad files are not read again
    assert caplog.records == []

    # Once repaired by hand, the file is indexed.
    write_png(truncated, {"parameters": A1111_TEXT})
    assert gallery.sync().added == 1 and gallery.entry_for_path(truncated) is not None


def test_rebuild_recreates_the_index_from_the_files(gallery: Gallery, gallery_dir: Path) -> None:
    entries = [save(gallery, f"castle number {i}", seed=i) for i in range(3)]
    write_png(gallery_dir / "comfy.png", {"prompt": json.dumps(COMFY)})
    gallery.sync()
    before = {e.path: (e.prompt, e.seed, e.model, e.request) for e in gallery.list()}

    report = gallery.rebuild()
    assert report.added == 4
    after = {e.path: (e.prompt, e.seed, e.model, e.request) for e in gallery.list()}
    assert after == before
    assert gallery.count(search="castle") == 3
    assert {e.created for e in gallery.list(search="castle")} == {e.created for e in entries}


COMFY = {
    "3": {
        "class_type": "KSampler",
        "inputs": {
            "seed": 11,
            "steps": 20,
            "cfg": 7,
            "sampler_name": "euler",
            "scheduler": "normal",
            "positive": ["6", 0],
            "negative": ["7", 0],
            "latent_image": ["5", 0],
        },
    },
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdxl.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "misty forest"}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "people"}},
}


def test_damaged_index_is_detected_and_rebuilt(gallery_dir: Path, caplog) -> None:
    gallery = Gallery(gallery_dir)
    entries = [save(gallery, f"bridge {i}", seed=i) for i in range(3)]
    gallery.close()
    (gallery_dir / ".sdtui" / "index.sqlite3").write_bytes(b"this is not sqlite" * 1000)

    with caplog.at_level(logging.WARNING, logger="sdtui.gallery"):
        reopened = Gallery(gallery_dir)
    assert reopened.recovered
    assert "damaged" in caplog.text
    assert {e.path for e in reopened.list()} == {e.path for e in entries}
    assert reopened.count(search="bridge") == 3
    reopened.close()


def test_damage_found_while_running_is_repaired(gallery_dir: Path) -> None:
    from sdtui.gallery.index import IndexRow

    gallery = Gallery(gallery_dir)
    towers = {save(gallery, f"tower {i}", seed=i).path for i in range(3)}
    # Enough rows that the search tables fill many pages past the schema's.
    gallery._index.add_rows(
        IndexRow(path=f"gone/{i}.png", size=1, mtime_ns=1, created=1.0, prompt=f"word{i} " * 20)
        for i in range(3000)
    )
    gallery._index.query("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = gallery._index.query_one("PRAGMA page_size")[0]
    fts_pages = [
        row["pageno"]
        for row in gallery._index.query("SELECT pageno FROM dbstat WHERE name = 'images_fts_data'")
    ]
    gallery.close()
    # Scribble over the full-text pages only: the index opens, a search then fails.
    index_file = gallery_dir / ".sdtui" / "index.sqlite3"
    data = bytearray(index_file.read_bytes())
    for page in fts_pages:
        start = (page - 1) * page_size
        data[start : start + page_size] = b"\xa5" * page_size
    index_file.write_bytes(bytes(data))

    reopened = Gallery(gallery_dir)
    assert not reopened.recovered  # the damage is past what opening reads
    assert {e.path for e in reopened.list(search="tower")} == towers
    assert reopened.recovered
    assert reopened.count() == 3  # rebuilt from the files: the rows without files are gone
    reopened.close()


def test_import_copies_without_overwriting(gallery: Gallery, gallery_dir: Path, tmp_path) -> None:
    outside = tmp_path / "downloads"
    a = write_png(outside / "sailor.png", {"parameters": A1111_TEXT})
    b = write_png(outside / "sub" / "forest.png", {"prompt": json.dumps(COMFY)})
    bad = outside / "broken.png"
    bad.write_bytes(b"nope")

    report = gallery.import_paths([outside, tmp_path / "missing.png"])
    assert report.added == 2
    assert {p.name for p, _ in report.skipped} == {"broken.png", "missing.png"}
    assert a.exists() and b.exists()  # copies, the originals stay
    by_source = {e.source: e for e in report.entries}
    assert by_source["comfyui"].prompt == "misty forest"
    assert by_source["comfyui"].model == "sdxl.safetensors"
    assert by_source["a1111"].path.read_bytes() == a.read_bytes()

    again = gallery.import_paths([a])
    assert again.entries[0].path == by_source["a1111"].path  # the same content: the same entry
    assert again.added == 0 and again.unchanged == 1
    assert gallery.count() == 2
    assert indexed_paths(gallery) == image_files(gallery_dir)

    # A file already in the gallery is indexed in place, not copied.
    inside = write_png(gallery_dir / "dropped.png", {"parameters": A1111_TEXT})
    report = gallery.import_paths([inside])
    assert [e.path for e in report.entries] == [inside]
    assert gallery.count() == 3


def test_thumbnail_is_made_once(gallery: Gallery) -> None:
    entry = save(gallery, "thumb", seed=3)
    thumb = gallery.thumbnail(entry.id, 32)
    with Image.open(thumb) as im:
        assert max(im.size) == 32
    mtime = thumb.stat().st_mtime_ns
    assert gallery.thumbnail(entry.id, 32) == thumb and thumb.stat().st_mtime_ns == mtime
    assert gallery.thumbnail(entry.id, 16) != thumb
    with pytest.raises(ValidationError):
        gallery.thumbnail(entry.id, 0)


def test_gallery_from_worker_threads(gallery: Gallery) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(5):
                save(gallery, f"thread {n} image {i}", seed=n * 10 + i)
                gallery.list(search="thread")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert gallery.count(search="thread") == 15


def test_hand_deleted_folder(gallery: Gallery, gallery_dir: Path) -> None:
    save(gallery, "today", seed=1)
    old = write_png(gallery_dir / "2020-01-01" / "old.png", {"parameters": A1111_TEXT})
    gallery.sync()
    assert gallery.count() == 2
    shutil.rmtree(old.parent)
    assert gallery.sync().removed == 1
    assert indexed_paths(gallery) == image_files(gallery_dir)


def test_relevance_sort_puts_the_best_match_first(gallery: Gallery) -> None:
    once = save(gallery, "a red barn in a field of wheat", seed=1)
    many = save(gallery, "red red red roses, red petals", seed=2)
    save(gallery, "a blue lake", seed=3)
    assert [e.id for e in gallery.list(search="red", sort="relevance")] == [many.id, once.id]
    assert [e.id for e in gallery.list(search="red")] == [many.id, once.id]  # newest first
    gallery.set_favorite(once.id, True)
    assert [e.id for e in gallery.list(search="red", sort="relevance", favorites=True)] == [once.id]
