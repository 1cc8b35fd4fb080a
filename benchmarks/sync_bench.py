"""What a gallery command pays for keeping the index in step with 100,000 image files.

    .venv/bin/python benchmarks/sync_bench.py [--rows 100000] [--per-folder 274]
    .venv/bin/python benchmarks/sync_bench.py --source /path/to/other/checkout   # compare

Makes real files (hard links of one small PNG, in day folders), fills the index
with one row per file through the index API (reading 100,000 PNGs would take
minutes), then times, median of several runs:
  - `sync()` when nothing changed, in-process (open included);
  - `sdtui gallery list --search WORD --limit 50` as a whole process, and the
    ratio to `sdtui --help` (the cost of starting Python and sdtui);
  - search by relevance and by date for a common word, in-process.
Prints a table; nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def median_seconds(action, repeat: int) -> float:  # noqa: ANN001
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def make_gallery(root: Path, rows: int, per_folder: int) -> None:
    from PIL import Image

    from sdtui.gallery import Gallery
    from sdtui.gallery.index import IndexRow

    sys.path.insert(0, str(REPO / "benchmarks"))
    from gallery_bench import synthetic_rows

    root.mkdir(parents=True)
    image = Image.new("RGB", (8, 8))
    paths: list[tuple[str, int, int]] = []
    first_day = date(2020, 1, 1)
    source = root
    for i in range(rows):
        folder = root / (first_day + timedelta(days=i // per_folder)).isoformat()
        rel = f"{folder.name}/{i:06d}.png"
        if i % per_folder == 0:  # one real file per folder, the others hard links to it
            folder.mkdir()
            source = root / rel
            image.save(source)
        else:
            os.link(source, root / rel)
        st = source.stat()
        paths.append((rel, st.st_size, st.st_mtime_ns))
    with Gallery(root) as gallery:
        synthetic = synthetic_rows(rows)
        index_rows = (
            IndexRow(**{**row.__dict__, "path": rel, "size": size, "mtime_ns": mtime})
            for (rel, size, mtime), row in zip(paths, synthetic, strict=False)
        )
        gallery._index.add_rows(index_rows)
        gallery.sync()  # the first sync after filling records whatever it records
    old = time.time() - 86400
    for folder in [root, *(p for p in root.rglob("*") if p.is_dir() and ".sdtui" not in p.parts)]:
        os.utime(folder, (old, old))
    with Gallery(root) as gallery:
        gallery.sync()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--per-folder", type=int, default=274, help="images per day folder")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--source", type=Path, default=REPO, help="the sdtui checkout to time")
    args = parser.parse_args()
    sys.path.insert(0, str(args.source))
    from sdtui.gallery import Gallery

    env = {**os.environ, "PYTHONPATH": str(args.source), "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "gallery"
        env.update(SDTUI_CONFIG_DIR=f"{tmp}/config", SDTUI_LOG_DIR=f"{tmp}/logs")
        start = time.perf_counter()
        make_gallery(root, args.rows, args.per_folder)
        print(f"made {args.rows} files and rows in {time.perf_counter() - start:.1f} s")

        def sync() -> None:
            with Gallery(root) as gallery:
                report = gallery.sync()
                assert report.added == report.removed == report.updated == 0, report

        def process(*argv: str) -> None:
            subprocess.run(
                [sys.executable, "-m", "sdtui", *argv],
                env=env,
                cwd=tmp,  # `-m` puts the working folder first on the path
                check=True,
                stdout=subprocess.DEVNULL,
            )

        with Gallery(root) as gallery:
            relevance = median_seconds(
                lambda: gallery.list(search="castle", sort="relevance", limit=50), args.repeat
            )
            newest = median_seconds(lambda: gallery.list(search="castle", limit=50), args.repeat)
            matches = gallery.count(search="castle")
        in_process = median_seconds(sync, args.repeat)
        listing, helping = [], []
        for _ in range(args.repeat):  # interleaved, so both see the same machine load
            listing.append(
                median_seconds(
                    lambda: process(
                        "gallery",
                        "list",
                        "--search",
                        "castle",
                        "--limit",
                        "50",
                        "--gallery",
                        str(root),
                    ),
                    1,
                )
            )
            helping.append(median_seconds(lambda: process("--help"), 1))
    ratios = [a / b for a, b in zip(listing, helping, strict=True)]
    print(f"source: {args.source}")
    print(f"{'sync(), nothing changed (in-process, with open)':52} {in_process * 1000:8.1f} ms")
    print(
        f"{'gallery list --search castle --limit 50 (process)':52} "
        f"{statistics.median(listing) * 1000:8.1f} ms"
    )
    print(f"{'sdtui --help (process)':52} {statistics.median(helping) * 1000:8.1f} ms")
    print(
        f"{'  ratio list / --help (median of interleaved runs)':52} "
        f"{statistics.median(ratios):8.2f} x"
    )
    print(f"{f'search castle by relevance ({matches} matches)':52} {relevance * 1000:8.1f} ms")
    print(f"{'search castle newest first':52} {newest * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
