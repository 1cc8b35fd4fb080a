"""Terminal app latency: time to first paint, and key-press echo while generating.

First paint: start `sdtui --model demo` in a detached tmux window and poll the
screen until the prompt editor and the footer are drawn (process start to first
frame, as a person over SSH sees it). Key echo: inside one process, press a
character in the prompt editor while the demo model runs a long generation on the
worker thread, and time until the character is in the editor.

    .venv/bin/python benchmarks/tui_latency.py [--runs 5] [--keys 40]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SDTUI = Path(sys.executable).parent / "sdtui"


def _pane(session: str) -> str:
    return subprocess.run(
        ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True
    ).stdout


def first_paint(env: dict[str, str], gallery: Path, width: int, height: int) -> tuple[float, float]:
    """Seconds from spawning the app to (first frame, model ready)."""
    session = f"sdtui-bench-{os.getpid()}"
    command = f"{SDTUI} --model demo --gallery {gallery}"
    for _attempt in range(5):  # a tmux server that is just shutting down refuses once
        started = time.perf_counter()
        spawn = subprocess.run(
            ["tmux", "new-session", "-d", "-s", session, "-x", str(width), "-y", str(height)]
            + [command],
            env=env,
            capture_output=True,
        )
        if spawn.returncode == 0:
            break
        time.sleep(0.5)
    else:
        raise RuntimeError(f"tmux did not start: {spawn.stderr.decode().strip()}")
    painted = ready = float("nan")
    try:
        deadline = started + 120
        while time.perf_counter() < deadline:
            screen = _pane(session)
            now = time.perf_counter() - started
            if painted != painted and "Prompt" in screen and "Generate" in screen:
                painted = now
            if "ready (loaded" in screen:
                ready = now
                break
            time.sleep(0.02)  # each poll starts a tmux client: keep them few
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    return painted, ready


async def key_echo(keys: int, steps: int, generating: bool) -> list[float]:
    """Seconds from pressing a character to seeing it in the prompt editor."""
    import torch

    torch.set_num_threads(1)
    from textual import events

    from sdtui.config import load_settings
    from sdtui.tui.app import SdtuiApp

    app = SdtuiApp(load_settings({"model": "demo"}))
    delays: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        while app.jobs.busy or "ready" not in app.status.state:
            await pilot.pause(0.05)
        if generating:
            app.prompt_editor.load_text("a long generation ")
            app.params.set_value("steps", str(steps))
            app.params.set_value("count", "16")
            app.prompt_editor.focus()
            await pilot.press("ctrl+g")
            while "step" not in str(app.status.query_one("#step-text").render()):
                await asyncio.sleep(0.01)
        app.prompt_editor.focus()
        await pilot.pause()
        for i in range(keys):
            char = "abcdefghijklmnopqrstuvwxyz"[i % 26]
            before = len(app.prompt_editor.text)
            # The path a real key takes: the driver posts a Key event to the app,
            # which hands it to the focused editor. (pilot.press would also wait
            # for the whole app to go idle, which it never does while progress flows.)
            t0 = time.perf_counter()
            app.post_message(events.Key(char, char))
            while len(app.prompt_editor.text) == before:
                await asyncio.sleep(0.0005)
            delays.append(time.perf_counter() - t0)
            await asyncio.sleep(0.03)  # a fast typist: about 30 keys a second
        still_running = app.jobs.busy
        if generating:
            app.action_cancel()
            while app.jobs.busy:
                await asyncio.sleep(0.05)
    if generating and not still_running:
        print("  (the generation ended before the last key; raise --steps)")
    return delays


def _summary(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    def pct(q: float) -> float:
        return ms[min(len(ms) - 1, int(round(q * (len(ms) - 1))))]

    return (
        f"p50 {statistics.median(ms):.1f} ms, p95 {pct(0.95):.1f} ms, "
        f"p99 {pct(0.99):.1f} ms, max {ms[-1]:.1f} ms (n={len(ms)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="first-paint runs")
    parser.add_argument("--keys", type=int, default=40, help="keys pressed per measurement")
    parser.add_argument("--steps", type=int, default=150, help="steps per image of the job")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sdtui-bench-"))
    env = dict(os.environ)
    env.update(
        SDTUI_CONFIG_DIR=str(work / "config"),
        SDTUI_CACHE_DIR=os.environ.get("SDTUI_CACHE_DIR", str(work / "cache")),
        SDTUI_LOG_DIR=str(work / "logs"),
        SDTUI_STATE_DIR=str(work / "state"),
        SDTUI_GALLERY=str(work / "gallery"),
    )
    os.environ.update(env)
    try:
        if args.runs and shutil.which("tmux"):
            for width, height in ((160, 50), (100, 30)):
                paints, readies = [], []
                for _ in range(args.runs):
                    painted, ready = first_paint(env, work / "gallery", width, height)
                    paints.append(painted)
                    readies.append(ready)
                print(
                    f"first paint {width}x{height} (tmux, process start): "
                    f"{_summary(paints)}; model ready: median {statistics.median(readies):.2f} s"
                )
        elif args.runs:
            print("tmux not found: first paint not measured")
        idle = asyncio.run(key_echo(args.keys, args.steps, generating=False))
        print(f"key echo, idle:                 {_summary(idle)}")
        busy = asyncio.run(key_echo(args.keys, args.steps, generating=True))
        print(f"key echo, while generating:     {_summary(busy)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
