"""How the gallery screen behaves over a 100,000-image index.

    .venv/bin/python benchmarks/gallery_screen_bench.py [--rows 100000] [--repeat 7]

Fills an index with synthetic rows (no image files), then drives the real
screen headless (Textual's `run_test`, 160x50): opening it with the first page
drawn, keys that scroll, a search, and memory while jumping around the list.
Prints a table; nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gallery_bench import synthetic_rows  # noqa: E402
from textual.app import App  # noqa: E402

from sdtui.gallery import Gallery  # noqa: E402
from sdtui.gallery.index import GalleryIndex  # noqa: E402
from sdtui.tui.gallery_screen import GalleryScreen  # noqa: E402

SIZE = (160, 50)


class Host(App[None]):
    """Opens the gallery on first use, on the screen's worker thread, like the app."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self._gallery: Gallery | None = None

    @property
    def gallery(self) -> Gallery:
        if self._gallery is None:
            self._gallery = Gallery(self.root)
        return self._gallery


async def settle(pilot: Any, condition: Any) -> None:
    while not condition():
        await pilot.pause(0)
    await pilot.pause()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


async def open_screen(root: Path) -> float:
    """Seconds from pushing the screen to its first page drawn (gallery opened inside)."""
    app = Host(root)
    async with app.run_test(size=SIZE) as pilot:
        t0 = time.perf_counter()
        screen = GalleryScreen()
        await app.push_screen(screen)
        await settle(pilot, lambda: screen.pages is not None)
        elapsed = time.perf_counter() - t0
        assert screen.list.count > 0
        app.gallery.close()
    return elapsed


async def drive(root: Path, results: list[tuple[str, str]], repeat: int) -> None:
    app = Host(root)
    async with app.run_test(size=SIZE) as pilot:
        screen = GalleryScreen()
        await app.push_screen(screen)
        await settle(pilot, lambda: screen.pages is not None)
        widget = screen.list

        async def key_ms(key: str, times: int) -> float:
            samples = []
            for _ in range(times):
                t0 = time.perf_counter()
                await pilot.press(key)
                samples.append(time.perf_counter() - t0)
            return statistics.median(samples)

        # What the test harness itself costs per key: one that nothing is bound to.
        results.append(("unbound key, harness only (median)", ms(await key_ms("x", 30))))
        results.append(("down key, press to drawn (median)", ms(await key_ms("down", 50))))
        results.append(("pagedown key (median of 50)", ms(await key_ms("pagedown", 50))))
        t0 = time.perf_counter()
        await pilot.press("end")
        results.append(("end: jump to the oldest of all", ms(time.perf_counter() - t0)))
        results.append(("pageup key at the end (median of 20)", ms(await key_ms("pageup", 20))))
        t0 = time.perf_counter()
        await pilot.press("home")
        results.append(("home: back to the newest", ms(time.perf_counter() - t0)))

        await pilot.press("g")
        results.append(("grid: pagedown key (median of 20)", ms(await key_ms("pagedown", 20))))
        await pilot.press("g", "home")

        # A search once the typing pauses: the query and the redraw, not the wait.
        for words in ("lighthouse", "dragon knight storm"):
            samples = []
            for _ in range(repeat):
                screen.search_input.value = words
                t0 = time.perf_counter()
                screen._apply_search()
                await pilot.pause()
                samples.append(time.perf_counter() - t0)
                screen.search_input.value = ""
                screen._apply_search()
            results.append(
                (f"search {words!r}: results drawn (median)", ms(statistics.median(samples)))
            )

        # Jump around; the held pages and the Python heap must not grow.
        rng = random.Random(3)
        pages_before = widget.pages.rows_fetched
        tracemalloc.start()
        heap = []
        t0 = time.perf_counter()
        for n in range(200):
            widget.move_to(rng.randrange(widget.count))
            await pilot.pause()
            if n % 50 == 49:
                heap.append(tracemalloc.get_traced_memory()[0] / 2**20)
        elapsed = time.perf_counter() - t0
        tracemalloc.stop()
        fetched = widget.pages.rows_fetched - pages_before
        results.append(("200 random jumps, each drawn (mean)", ms(elapsed / 200)))
        results.append(
            ("  rows fetched for them / pages held", f"{fetched:,} / {widget.pages.pages_held}")
        )
        results.append(("  Python heap while jumping", f"{min(heap):.2f}..{max(heap):.2f} MiB"))
        results.append(
            (
                "rows fetched in the whole session",
                f"{widget.pages.rows_fetched:,} of {widget.count:,}",
            )
        )
        app.gallery.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    results: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="sdtui-gallery-screen-") as tmp:
        root = Path(tmp) / "gallery"
        Gallery(root).close()
        index = GalleryIndex(root / ".sdtui" / "index.sqlite3")
        t0 = time.perf_counter()
        index.add_rows(synthetic_rows(args.rows), batch=5000)
        index.close()
        results.append((f"index {args.rows:,} rows (set-up)", f"{time.perf_counter() - t0:.1f} s"))
        # The same screen over an index of one image: what the widgets themselves cost.
        small = Path(tmp) / "small"
        Gallery(small).close()
        one = GalleryIndex(small / ".sdtui" / "index.sqlite3")
        one.add_rows(synthetic_rows(1))
        one.close()
        for name, folder in ((f"{args.rows:,} images", root), ("1 image", small)):
            samples = [asyncio.run(open_screen(folder)) for _ in range(args.repeat)]
            results.append(
                (
                    f"open screen + first page drawn, {name}",
                    f"median {ms(statistics.median(samples))}, max {ms(max(samples))}",
                )
            )
        asyncio.run(drive(root, results, args.repeat))
    width = max(len(name) for name, _ in results)
    print(f"{'measure':<{width}}  result")
    print(f"{'-' * width}  {'-' * 30}")
    for name, value in results:
        print(f"{name:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
