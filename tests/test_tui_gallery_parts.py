"""The gallery screen's parts without a screen: settings text, differences, paging."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sdtui.gallery import GalleryEntry
from sdtui.params import GenerationRequest, format_parameters, parse_parameters
from sdtui.tui.gallery_pages import EntryPages, GalleryFilter
from sdtui.tui.gallery_settings import (
    DIFF_STYLE,
    compare_rows,
    parameters_text,
    settings_rows,
    word_diff,
)


def entry(**changes: Any) -> GalleryEntry:
    base = GalleryEntry(
        id=1,
        path=Path("/g/a.png"),
        rel_path="a.png",
        request=None,
        seed=5,
        created=datetime(2026, 1, 2, 3, 4, 5).astimezone(),
        favorite=False,
        source="a1111",
        prompt="a cat, sitting",
        negative_prompt="blurry",
        model="dreamshaper_8",
        scheduler="DPM++ 2M Karras",
        width=512,
        height=768,
        steps=30,
        cfg=6.5,
        extras={"Model hash": "abc123", "Lora hashes": "x: 1, y: 2"},
    )
    return replace(base, **changes)


def test_parameters_text_of_our_images_is_what_the_png_carries() -> None:
    request = GenerationRequest(prompt="a [red] fox", negative_prompt="fog", model="demo")
    e = entry(request=request, seed=77)
    assert parameters_text(e) == format_parameters(request, 77)


def test_parameters_text_of_other_tools_images_reads_back_the_same() -> None:
    text = parameters_text(entry())
    parsed = parse_parameters(text)
    assert parsed.prompt == "a cat, sitting"
    assert parsed.negative_prompt == "blurry"
    assert parsed.settings["Steps"] == "30"
    assert parsed.settings["CFG scale"] == "6.5"
    assert parsed.settings["Size"] == "512x768"
    assert parsed.settings["Lora hashes"] == "x: 1, y: 2"  # quoted, comma survives


def test_settings_rows_keep_a_fixed_order_and_the_extras() -> None:
    labels = [label for label, _ in settings_rows(entry())]
    assert labels[:8] == [
        "Prompt",
        "Negative prompt",
        "Model",
        "Sampler",
        "Steps",
        "CFG scale",
        "Seed",
        "Size",
    ]
    assert "Model hash" in labels and labels[-1] == "File"


def test_compare_marks_only_settings_that_differ() -> None:
    left = entry()
    right = entry(
        id=2,
        path=Path("/g/b.png"),
        seed=6,
        cfg=7.0,
        extras={"Model hash": "abc123", "Hires upscale": "2"},
        favorite=True,
    )
    differing = [row.label for row in compare_rows(left, right) if row.differs]
    assert differing == ["CFG scale", "Seed", "Lora hashes", "Hires upscale"]
    assert not [row for row in compare_rows(left, left) if row.differs]


def test_word_diff_highlights_the_changed_words_only() -> None:
    a, b = word_diff("a red fox in snow", "a grey fox in the snow")
    assert a.plain == "a red fox in snow" and b.plain == "a grey fox in the snow"

    def styled(text: Any) -> list[str]:
        return [text.plain[s.start : s.end] for s in text.spans if str(s.style) == DIFF_STYLE]

    assert styled(a) == ["red"]
    assert styled(b) == ["grey", "the"]


class CountingGallery:
    """A gallery of `n` numbered entries that records every query it answers."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.calls: list[dict[str, Any]] = []

    def count(self, **filters: Any) -> int:
        return self.n

    def list(self, limit: int, offset: int, **filters: Any) -> list[int]:
        self.calls.append({"limit": limit, "offset": offset, **filters})
        return list(range(offset, min(offset + limit, self.n)))


def test_pages_are_fetched_once_and_only_a_few_are_held() -> None:
    gallery = CountingGallery(10_050)
    pages = EntryPages(gallery, GalleryFilter(sort="oldest"), page_size=100, max_pages=3)
    assert pages.entry(0) == 0 and pages.entry(99) == 99
    assert pages.entry(10_049) == 10_049
    assert pages.entry(10_050) is None and pages.entry(-1) is None
    assert [c["offset"] for c in gallery.calls] == [0, 10_000]
    assert gallery.calls[0]["sort"] == "oldest"
    for index in range(0, 10_000, 500):
        pages.entry(index)
    assert pages.pages_held == 3
    assert pages.rows_fetched == 50 + 100 * 20  # page 0 was still held when asked again
    assert pages.cached(9_500) == 9_500 and pages.cached(0) is None


def test_filter_periods_start_at_midnight() -> None:
    now = datetime(2026, 11, 26, 15, 30).astimezone()
    assert GalleryFilter().since(now) is None
    assert GalleryFilter(period=1).since(now) == now.replace(hour=0, minute=0)
    assert GalleryFilter(period=2).since(now).day == 19
    assert "favourites only" in GalleryFilter(favorites=True).describe()


class FailingGallery(CountingGallery):
    def list(self, limit: int, offset: int, **filters: Any) -> list[int]:
        raise OSError("disk I/O error")


def test_a_page_that_cannot_be_read_says_why_and_is_asked_again() -> None:
    gallery = FailingGallery(500)
    pages = EntryPages(gallery, GalleryFilter())
    assert pages.entry(3) is None
    assert pages.error == "disk I/O error"
    assert pages.pages_held == 0
    gallery.__class__ = CountingGallery  # the disk is back
    assert pages.entry(3) == 3 and pages.error == ""
