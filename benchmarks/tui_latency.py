"""Terminal app latency: time to first paint, and key-press echo while generating.

First paint: start `sdtui --model demo` in a detached tmux window and poll the
screen until the prompt editor and the footer are drawn (process start to first
frame, as a person over SSH sees it). Key echo: inside the app's process, press a
character in the prompt editor (idle, while the demo model runs a long generation,
and while it does beside `--busy` CPU-bound processes) and time until the
character is in the editor; the engine runs in its own process, on the app's
worker thread (`in-process`), or both one after the other.

    .venv/bin/python benchmarks/tui_latency.py [--runs 5] [--keys 40] [--engine both]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
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


async def _type(app: object, keys: int) -> list[float]:
    """Seconds from pressing each of `keys` characters to seeing it in the prompt editor."""
    from textual import events

    delays: list[float] = []
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
    return delays


async def key_echo(keys: int, steps: int, in_process: bool, busy: int) -> dict[str, list[float]]:
    """Key echo idle, while generating, and while generating beside `busy` CPU-bound
    processes, in one app whose engine runs in its own process or on a thread."""
    import torch

    torch.set_num_threads(1)
    from sdtui.config import load_settings
    from sdtui.tui.app import SdtuiApp

    app = SdtuiApp(load_settings({"model": "demo", "in_process": in_process}))
    phases: dict[str, list[float]] = {}
    burners: list[subprocess.Popen] = []
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            while app.jobs.busy or "ready" not in app.status.state:
                await pilot.pause(0.05)
            app.prompt_editor.focus()
            await pilot.pause()
            phases["idle"] = await _type(app, keys)
            app.prompt_editor.load_text("a long generation ")
            app.params.set_value("steps", str(steps))
            app.params.set_value("count", "16")
            app.prompt_editor.focus()
            await pilot.press("ctrl+g")
            while "step" not in str(app.status.query_one("#step-text").render()):
                await asyncio.sleep(0.01)
            app.prompt_editor.focus()
            phases["generating"] = await _type(app, keys)
            if busy:
                burners = [
                    subprocess.Popen([sys.executable, "-c", "while True: pass"])
                    for _ in range(busy)
                ]
                await asyncio.sleep(1.0)  # let the scheduler see them
                phases[f"generating + {busy} busy"] = await _type(app, keys)
            still_running = app.jobs.busy
            app.action_cancel()
            while app.jobs.busy:
                await asyncio.sleep(0.05)
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
        close = getattr(app.runner.engine.ready, "close", None)
        if close is not None:
            close()
    if not still_running:
        print("  (the generation ended before the last key; raise --steps)")
    return phases


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
    parser.add_argument(
        "--engine",
        choices=("process", "in-process", "both"),
        default="both",
        help="where the app runs its engine (both: one after the other, same run)",
    )
    parser.add_argument(
        "--busy", type=int, default=2, help="CPU-bound processes beside the last phase"
    )
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
    # The engine process's messages go to a log, as in the app, not over the table.
    logging.basicConfig(filename=work / "bench.log", level=logging.INFO)
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
        engines = ("process", "in-process") if args.engine == "both" else (args.engine,)
        for engine in engines:
            phases = asyncio.run(
                key_echo(args.keys, args.steps, engine == "in-process", args.busy)
            )
            load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
            for phase, delays in phases.items():
                print(f"key echo, {engine:10} {phase:20} {_summary(delays)}")
            print(f"  load average after: {load}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
