"""The sync that looks only at changed folders still notices every change made by hand."""

from __future__ import annotations

import os
import time
from datetime import date
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from sdtui.cli import main
from sdtui.gallery import Gallery, scan

OLD = time.time() - 30 * 86400


def png(path: Path, prompt: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngInfo()
    info.add_text("parameters", f"{prompt}\nSteps: 5, Seed: 1, Size: 8x8")
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    return path


def age(*folders: Path) -> None:
    """Folders last changed a month ago (not within the racy window of a listing)."""
    for folder in folders:
        os.utime(folder, (OLD, OLD))


def prompts(gallery_dir: Path) -> set[str]:
    with Gallery(gallery_dir) as gallery:
        gallery.sync()
        return {e.prompt for e in gallery.list(limit=1000)}


@pytest.fixture
def old_gallery(gallery_dir: Path) -> Path:
    for day in ("2025-01-01", "2025-01-02", "2025-01-03"):
        for n in range(2):
            png(gallery_dir / day / f"{n}.png", f"{day} picture {n}")
    png(gallery_dir / "mine" / "deep" / "x.png", "deep picture")
    with Gallery(gallery_dir) as gallery:
        gallery.sync()
        gallery.set_favorite(gallery.list(search="deep")[0].id)
    age(*[p for p in gallery_dir.rglob("*") if p.is_dir() and ".sdtui" not in p.parts], gallery_dir)
    with Gallery(gallery_dir) as gallery:
        gallery.sync()  # records the folders' settled times
    return gallery_dir


@pytest.fixture
def no_rolling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan, "ROLLING_FILES", 0)


def count_listings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    listed: list[str] = []
    real = os.scandir

    def scandir(path):  # noqa: ANN001, ANN202
        listed.append(str(path))
        return real(path)

    monkeypatch.setattr(scan.os, "scandir", scandir)
    return listed


def test_nothing_changed_lists_no_folder(old_gallery: Path, no_rolling, monkeypatch) -> None:
    listed = count_listings(monkeypatch)
    with Gallery(old_gallery) as gallery:
        report = gallery.sync()
        assert (report.added, report.updated, report.removed) == (0, 0, 0)
        assert gallery.count() == 7
    assert listed == []


def test_hand_added_deleted_and_renamed_files_are_noticed_at_once(
    old_gallery: Path, no_rolling, capsys
) -> None:
    png(old_gallery / "2025-01-02" / "added.png", "added by hand")
    (old_gallery / "2025-01-01" / "0.png").unlink()
    os.rename(old_gallery / "2025-01-03" / "1.png", old_gallery / "2025-01-03" / "moved.png")
    assert main(["gallery", "list", "--json"]) == 0
    out = capsys.readouterr().out
    assert "added by hand" in out and "2025-01-01 picture 0" not in out
    assert "moved.png" in out and "2025-01-03/1.png" not in out
    assert out.count("\n") == 7


def test_folders_added_removed_and_renamed(old_gallery: Path, no_rolling) -> None:
    png(old_gallery / "new" / "sub" / "a.png", "in a new folder")
    os.rename(old_gallery / "mine", old_gallery / "theirs")
    for path in (old_gallery / "2025-01-01").iterdir():
        path.unlink()
    (old_gallery / "2025-01-01").rmdir()
    assert prompts(old_gallery) == {
        "2025-01-02 picture 0",
        "2025-01-02 picture 1",
        "2025-01-03 picture 0",
        "2025-01-03 picture 1",
        "deep picture",
        "in a new folder",
    }
    with Gallery(old_gallery) as gallery:
        assert [e.rel_path for e in gallery.list(search="deep")] == ["theirs/deep/x.png"]


def test_a_file_edited_in_place_in_todays_folder_is_noticed(gallery_dir: Path, no_rolling) -> None:
    today = gallery_dir / date.today().strftime("%Y-%m-%d")
    path = png(today / "a.png", "first version")
    assert prompts(gallery_dir) == {"first version"}
    age(today, gallery_dir)
    assert prompts(gallery_dir) == {"first version"}
    png(path, "second version")
    age(today)  # in place: the folder's time does not move
    assert prompts(gallery_dir) == {"second version"}


def test_a_file_edited_in_place_elsewhere_is_noticed_within_a_few_commands(
    old_gallery: Path, monkeypatch
) -> None:
    monkeypatch.setattr(scan, "ROLLING_FILES", 2)  # each command re-checks 2 files' worth
    png(old_gallery / "2025-01-02" / "1.png", "edited in place")
    age(old_gallery / "2025-01-02")
    seen = [("edited in place" in prompts(old_gallery)) for _ in range(4)]
    # 4 folders of 1-2 files, 2 files a command: noticed by the third command at the latest
    assert True in seen[:3]
    assert seen[seen.index(True) :] == [True] * (4 - seen.index(True))


def test_small_galleries_are_checked_whole_each_time(old_gallery: Path) -> None:
    png(old_gallery / "2025-01-02" / "1.png", "edited in place")
    age(old_gallery / "2025-01-02")
    assert "edited in place" in prompts(old_gallery)  # the default budget covers 7 files


def test_a_folder_saved_into_and_removed_before_the_next_sync(
    old_gallery: Path, no_rolling
) -> None:
    import shutil

    from sdtui.params import GenerationRequest
    from sdtui.results import GeneratedImage, GenerationResult

    request = GenerationRequest(prompt="saved then removed", width=64, height=64, seed=3)
    generated = GeneratedImage(Image.new("RGB", (64, 64)), 3, 0, request)
    with Gallery(old_gallery) as gallery:
        entry = gallery.save(
            generated, GenerationResult(request, [generated], "demo", "cpu", "f32")
        )
        shutil.rmtree(entry.path.parent)
        gallery.sync()
        assert gallery.entry_for_path(entry.path) is None
        assert gallery.count() == 7


def test_rebuild_lists_everything_again(old_gallery: Path, no_rolling) -> None:
    png(old_gallery / "2025-01-02" / "1.png", "edited in place")
    age(old_gallery / "2025-01-02")
    assert "edited in place" not in prompts(old_gallery)  # not yet: nothing told it
    with Gallery(old_gallery) as gallery:
        gallery.rebuild()
        assert gallery.count() == 7
        assert [e.favorite for e in gallery.list(search="deep")] == [True]
    assert "edited in place" in prompts(old_gallery)


def test_relevance_of_a_common_word_ranks_its_newest_matches(
    gallery_dir: Path, monkeypatch
) -> None:
    from sdtui.gallery import gallery as gallery_module
    from sdtui.gallery.index import IndexRow

    prompts = ["red red red fox", "red", "red hat", "red red car", "red boat", "blue sea"]
    with Gallery(gallery_dir) as gallery:
        gallery._index.add_rows(
            IndexRow(path=f"{n}.png", size=1, mtime_ns=n, created=n, prompt=p)
            for n, p in enumerate(prompts)
        )
        by_id = {e.prompt: e.id for e in gallery.list(limit=10)}
        every = [e.prompt for e in gallery.list(search="red", sort="relevance", limit=10)]
        assert every[0] == "red red red fox" and len(every) == 5
        monkeypatch.setattr(gallery_module, "RANK_WINDOW", 3)  # the 3 newest matches
        first = [e.prompt for e in gallery.list(search="red", sort="relevance", limit=2)]
        newest = sorted(every, key=lambda p: by_id[p])[-3:]
        assert set(first) <= set(newest) and first[0] == "red red car"
        # past the window, the whole ranking again
        deep = [e.prompt for e in gallery.list(search="red", sort="relevance", limit=2, offset=2)]
        assert deep == every[2:4]
        assert gallery.count(search="red") == 5


def test_a_gallery_root_that_is_a_link(old_gallery: Path, tmp_path: Path, no_rolling) -> None:
    link = tmp_path / "link-to-gallery"
    link.symlink_to(old_gallery)
    for _ in range(2):
        with Gallery(link) as gallery:
            gallery.sync()
            assert gallery.count() == 7
    png(old_gallery / "2025-01-02" / "added.png", "added by hand")
    with Gallery(link) as gallery:
        gallery.sync()
        assert gallery.count() == 8
