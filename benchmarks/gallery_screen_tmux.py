"""The gallery screen in a real terminal: the app in tmux over 100,000 images.

    .venv/bin/python benchmarks/gallery_screen_tmux.py [--rows 100000] [--repeat 5]

Builds a gallery whose index rows all have files (hard links to a few real
PNGs, so the app's start-up sync keeps them), starts `sdtui --model demo` in a
160x50 tmux session, and times keys from `send-keys` until `capture-pane` shows
their result: ctrl+o until the first page is on screen, End until the oldest
image is, Home, and a search typed in one burst. Needs tmux. Prints a table.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gallery_bench import synthetic_rows  # noqa: E402

from sdtui.gallery import Gallery  # noqa: E402
from sdtui.gallery.index import GalleryIndex  # noqa: E402

SESSION = "sdtui-gallery-bench"
LINKS_PER_FILE = 50_000  # under ext4's 65,000 links to one file


def build_gallery(root: Path, rows: int) -> tuple[str, str]:
    """Index `rows` images, each a hard link to a real PNG; returns the oldest's and the
    newest's prompt, as the list shows them."""
    from PIL import Image

    from sdtui.params import GenerationRequest
    from sdtui.results import GeneratedImage, GenerationResult

    request = GenerationRequest(prompt="a seed picture", model="demo", width=64, height=64)
    with Gallery(root) as gallery:
        generated = GeneratedImage(Image.new("RGB", (64, 64), (200, 120, 40)), 1, 0, request)
        saved = gallery.save(generated, GenerationResult(request, [generated], "demo", "cpu", "-"))
        gallery.delete(saved.id)  # only its bytes are wanted
    source = next((root / ".trash").rglob("*.png"))
    stat = source.stat()
    made = []
    prompts = []
    for i, row in enumerate(synthetic_rows(rows)):
        target = root / row.path
        target.parent.mkdir(parents=True, exist_ok=True)
        original = root / ".sdtui" / f"link-source-{i // LINKS_PER_FILE}.png"
        if not original.exists():
            shutil.copyfile(source, original)
            os.utime(original, ns=(stat.st_mtime_ns, stat.st_mtime_ns))
        os.link(original, target)
        made.append(dataclasses.replace(row, size=stat.st_size, mtime_ns=stat.st_mtime_ns))
        prompts.append(row.prompt[:30])
    index = GalleryIndex(root / ".sdtui" / "index.sqlite3")
    index.add_rows(made, batch=5000)
    index.close()
    return prompts[0], prompts[-1]


def screen() -> str:
    return subprocess.run(
        ["tmux", "capture-pane", "-p", "-t", SESSION], capture_output=True, text=True
    ).stdout


def wait_for(text: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in screen():
        if time.monotonic() > deadline:
            raise RuntimeError(f"never saw {text!r}; the screen shows:\n{screen()}")
        time.sleep(0.05)


def timed(keys: list[str], text: str, literal: str = "") -> float:
    """Seconds from sending the keys until `text` is on the screen."""
    t0 = time.perf_counter()
    subprocess.run(["tmux", "send-keys", "-t", SESSION, *keys], check=True)
    if literal:
        subprocess.run(["tmux", "send-keys", "-t", SESSION, "-l", literal], check=True)
        subprocess.run(["tmux", "send-keys", "-t", SESSION, "Enter"], check=True)
    while text not in screen():
        if time.perf_counter() - t0 > 30:
            raise RuntimeError(f"never saw {text!r}; the screen shows:\n{screen()}")
        time.sleep(0.002)
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        print("tmux is not installed", file=sys.stderr)
        return 1
    sdtui = Path(sys.executable).with_name("sdtui")
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="sdtui-gallery-tmux-") as tmp:
        root = Path(tmp) / "gallery"
        oldest, newest = build_gallery(root, args.rows)
        env = f"HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 SDTUI_CONFIG_DIR={tmp}/config"
        command = f"{env} {sdtui} --model demo --gallery {root}"
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", SESSION, "-x", "160", "-y", "50", command],
            check=True,
        )
        try:
            wait_for("History")
            time.sleep(8)  # the start-up sync of 100,000 files and the model load
            count = f"{args.rows:,} images"
            for _ in range(args.repeat):
                results.setdefault("ctrl+o until the first page shows", []).append(
                    timed(["C-o"], count)
                )
                results.setdefault("End until the oldest image shows", []).append(
                    timed(["End"], oldest)
                )
                results.setdefault("Home until the newest shows again", []).append(
                    timed(["Home"], newest)
                )
                results.setdefault("'/lighthouse dragon⏎' in one burst, to results", []).append(
                    timed(["/"], "matching lighthouse dragon", literal="lighthouse dragon")
                )
                subprocess.run(["tmux", "send-keys", "-t", SESSION, "Escape"], check=True)
                time.sleep(0.3)
                subprocess.run(["tmux", "send-keys", "-t", SESSION, "Escape"], check=True)
                wait_for("History")
        finally:
            subprocess.run(["tmux", "kill-session", "-t", SESSION], check=False)
    width = max(len(name) for name in results)
    print(f"{'measure (tmux, 160x50)':<{width}}  median   max")
    for name, samples in results.items():
        print(
            f"{name:<{width}}  {statistics.median(samples) * 1000:5.0f} ms "
            f"{max(samples) * 1000:5.0f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
