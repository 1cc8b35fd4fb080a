"""How the gallery index behaves at 100,000 images.

    .venv/bin/python benchmarks/gallery_bench.py [--rows 100000] [--files 2000]

Indexes synthetic rows through the index API, then times opening the gallery
with its first page, full-text search and filters (median of several runs),
pages through every entry watching memory, and measures saving and rebuilding
from real PNG files. Prints a table; nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdtui.gallery import Gallery  # noqa: E402
from sdtui.gallery.index import IndexRow  # noqa: E402

WORDS = (
    "cat dog castle forest portrait landscape cyberpunk city night rain neon ocean sunset "
    "mountain village dragon knight robot astronaut galaxy flower garden river bridge tower "
    "oil painting watercolor photo cinematic lighting detailed sharp soft golden hour misty "
    "ancient futuristic steampunk anime sketch charcoal marble glass crystal lighthouse storm"
).split()
MODELS = ("sd15", "sdxl", "sd21", "dreamshaper_8", "juggernautXL")
SCHEDULERS = ("DPM++ 2M Karras", "Euler a", "Euler", "DDIM", "UniPC")


def synthetic_rows(count: int, seed: int = 0):
    rng = random.Random(seed)
    start = time.time() - 2 * 365 * 86400
    for i in range(count):
        prompt = " ".join(rng.choices(WORDS, k=rng.randint(6, 30)))
        yield IndexRow(
            path=f"synthetic/{i // 1000:03d}/{i:06d}.png",
            size=400_000 + rng.randint(0, 200_000),
            mtime_ns=int((start + i * 600) * 1e9),
            created=start + i * 600,
            source="sdtui",
            prompt=prompt,
            negative_prompt="blurry, low quality" if rng.random() < 0.7 else "",
            model=rng.choice(MODELS),
            scheduler=rng.choice(SCHEDULERS),
            seed=rng.randint(0, 2**32 - 1),
            width=512,
            height=rng.choice((512, 768)),
            steps=rng.randint(10, 50),
            cfg=rng.choice((5.0, 6.5, 7.0, 7.5)),
            favorite=rng.random() < 0.05,
            request={"prompt": prompt, "model": "sd15", "seed": i, "width": 512, "height": 512},
        )


def median_ms(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        action()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def rss_mib() -> float:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


def make_png_gallery(root: Path, files: int) -> float:
    """Save `files` small PNGs through Gallery.save; returns saves per second."""
    from PIL import Image

    from sdtui.params import GenerationRequest
    from sdtui.results import GeneratedImage, GenerationResult

    rng = random.Random(1)
    gallery = Gallery(root)
    t0 = time.perf_counter()
    for i in range(files):
        prompt = " ".join(rng.choices(WORDS, k=12))
        request = GenerationRequest(prompt=prompt, model="demo", width=64, height=64, seed=i)
        image = Image.new("RGB", (64, 64), (i % 256, (i * 7) % 256, 90))
        generated = GeneratedImage(image, i, 0, request)
        gallery.save(generated, GenerationResult(request, [generated], "demo", "cpu", "fp32"))
    rate = files / (time.perf_counter() - t0)
    gallery.close()
    return rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--page", type=int, default=50)
    args = parser.parse_args()
    results: list[tuple[str, str]] = []

    with tempfile.TemporaryDirectory(prefix="sdtui-gallery-bench-") as tmp:
        root = Path(tmp) / "big"
        gallery = Gallery(root)
        t0 = time.perf_counter()
        gallery._index.add_rows(synthetic_rows(args.rows), batch=5000)
        elapsed = time.perf_counter() - t0
        results.append((f"index {args.rows:,} rows", f"{args.rows / elapsed:,.0f} rows/s"))
        gallery.close()
        size = sum(p.stat().st_size for p in (root / ".sdtui").glob("index.sqlite3*"))
        results.append(("index file size", f"{size / 2**20:.1f} MiB"))

        def open_and_first_page() -> None:
            with Gallery(root) as g:
                g.list(limit=args.page)

        results.append(
            ("open + first page (median)", f"{median_ms(open_and_first_page, args.repeat):.1f} ms")
        )
        gallery = Gallery(root)
        queries = {
            "first page": lambda: gallery.list(limit=args.page),
            "page at offset 50,000": lambda: gallery.list(limit=args.page, offset=50_000),
            "search 'lighthouse' (common)": lambda: gallery.list(search="lighthouse"),
            "search 'dragon knight storm'": lambda: gallery.list(search="dragon knight storm"),
            "search rare (no match)": lambda: gallery.list(search="zebra"),
            "search, relevance order": lambda: gallery.list(search="crystal", sort="relevance"),
            "count search 'cat'": lambda: gallery.count(search="cat"),
            "filter model=sdxl": lambda: gallery.list(model="sdxl"),
            "filter favourites": lambda: gallery.list(favorites=True),
            "filter favourites + search": lambda: gallery.list(favorites=True, search="forest"),
            "count all": lambda: gallery.count(),
            "models()": lambda: gallery.models(),
        }
        for name, action in queries.items():
            results.append((f"{name} (median)", f"{median_ms(action, args.repeat):.1f} ms"))

        # Page through everything: memory must not grow with the number of pages.
        rss_before = rss_mib()
        tracemalloc.start()
        samples = []
        t0 = time.perf_counter()
        offset = 0
        page = 200
        while True:
            entries = gallery.list(limit=page, offset=offset, sort="oldest")
            if not entries:
                break
            offset += len(entries)
            if (offset // page) % 50 == 0:
                samples.append(tracemalloc.get_traced_memory()[0] / 2**20)
            del entries
        elapsed = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        results.append(
            (f"page through {offset:,} entries ({page}/page)", f"{elapsed:.1f} s (tracemalloc on)")
        )
        results.append(
            (
                "  Python heap while paging",
                f"{min(samples):.2f}..{max(samples):.2f} MiB, peak {peak:.2f} MiB",
            )
        )
        results.append(("  RSS before / after paging", f"{rss_before:.0f} / {rss_mib():.0f} MiB"))
        gallery.close()

        files_root = Path(tmp) / "files"
        rate = make_png_gallery(files_root, args.files)
        results.append((f"save {args.files:,} PNGs (64x64, fsync)", f"{rate:,.0f} images/s"))
        with Gallery(files_root) as g:
            t0 = time.perf_counter()
            report = g.rebuild()
            elapsed = time.perf_counter() - t0
            results.append(
                (f"rebuild from {report.added:,} PNGs", f"{report.added / elapsed:,.0f} files/s")
            )
            results.append(("sync, nothing changed (median)", f"{median_ms(g.sync, 5):.1f} ms"))

    width = max(len(name) for name, _ in results)
    print(f"{'measure':<{width}}  result")
    print(f"{'-' * width}  {'-' * 30}")
    for name, value in results:
        print(f"{name:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
