"""`gallery import` speed: other tools' images against sdtui's own.

    .venv/bin/python benchmarks/import_bench.py [--files 10000]

Makes FILES plain sdtui PNGs (512x512, the `parameters` and `sdtui` chunks sdtui
writes) and FILES copies of the reader corpus (tests/data/readers: A1111, Forge,
ComfyUI, InvokeAI, NovelAI, SwarmUI, Fooocus... in PNG, JPEG and WebP, cycled),
then imports each folder into fresh galleries (alternately, REPEAT times) and
prints the median time of each and their ratio, and the readers' time alone.
Nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image  # noqa: E402
from PIL.PngImagePlugin import PngInfo  # noqa: E402

from sdtui.gallery import Gallery  # noqa: E402
from sdtui.params import GenerationRequest, format_parameters  # noqa: E402

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "readers"


def make_plain(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    template = folder / "template.png"
    Image.new("RGB", (512, 512), (90, 120, 150)).save(template)
    pixels = Image.open(template)
    pixels.load()
    template.unlink()
    for i in range(count):
        request = GenerationRequest(prompt=f"a lighthouse at dusk, number {i}", seed=i)
        record = {"format": 1, "request": request.to_dict(), "seed": i, "index": 0}
        info = PngInfo()
        info.add_text("parameters", format_parameters(request, i))
        info.add_itxt("sdtui", json.dumps(record))
        pixels.save(folder / f"{i:05d}.png", pnginfo=info, compress_level=1)


def make_mixed(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    sources = sorted(p for p in CORPUS.iterdir() if p.suffix in (".png", ".jpg", ".jpeg", ".webp"))
    for i in range(count):
        source = sources[i % len(sources)]
        shutil.copyfile(source, folder / f"{i:05d}-{source.name}")


def time_import(gallery_dir: Path, folder: Path) -> float:
    gallery = Gallery(gallery_dir)
    start = time.perf_counter()
    report = gallery.import_paths([folder])
    elapsed = time.perf_counter() - start
    gallery.close()
    if report.skipped:
        print(f"  {len(report.skipped)} skipped", file=sys.stderr)
    return elapsed


def time_read(folder: Path) -> float:
    """The readers alone: every file's metadata, no copying, no index."""
    from sdtui.gallery.metadata import read_metadata

    files = sorted(folder.iterdir())
    start = time.perf_counter()
    for path in files:
        read_metadata(path, require_complete=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="imports of each kind (median)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_plain(root / "plain", args.files)
        make_mixed(root / "mixed", args.files)
        plain_read, mixed_read = time_read(root / "plain"), time_read(root / "mixed")
        # Alternate the two kinds so a busy disk slows both alike; report medians.
        plains, mixeds = [], []
        for run in range(args.repeat):
            plains.append(time_import(root / f"p{run}", root / "plain"))
            mixeds.append(time_import(root / f"m{run}", root / "mixed"))
            shutil.rmtree(root / f"p{run}")
            shutil.rmtree(root / f"m{run}")
        plain, mixed = statistics.median(plains), statistics.median(mixeds)
        sizes = [sum(f.stat().st_size for f in (root / k).iterdir()) for k in ("plain", "mixed")]
    print(f"files per kind        {args.files}")
    print(f"plain sdtui PNGs      {plain:8.2f} s  ({args.files / plain:7.0f} files/s)")
    print(f"other tools' images   {mixed:8.2f} s  ({args.files / mixed:7.0f} files/s)")
    print(f"ratio mixed / plain   {mixed / plain:8.2f}  (import)")
    print(f"reading only          {plain_read:8.2f} s plain, {mixed_read:.2f} s mixed")
    print(f"ratio mixed / plain   {mixed_read / plain_read:8.2f}  (reading metadata)")
    print(f"bytes                 {sizes[0] / 1e6:8.1f} MB plain, {sizes[1] / 1e6:.1f} MB mixed")


if __name__ == "__main__":
    main()
