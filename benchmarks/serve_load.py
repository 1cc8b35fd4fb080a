"""A bounded load test of `sdtui serve` on loopback with the demo model.

    .venv/bin/python benchmarks/serve_load.py [--clients 8] [--requests 200] [--steps 4]

Starts the server on an ephemeral loopback port in this process, then each of
the clients submits its share of the requests one after another and reads every
job's event stream to the end. Reports p50/p99 of the time spent in the queue
and of the total time per request, checks that every request came back exactly
once with the image its seed asked for, shows memory before and after, and
compares the server's time per image with the in-process engine's as a ratio.
Nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from sdtui.engine import Engine  # noqa: E402
from sdtui.engine.demo import demo_model_folder  # noqa: E402
from sdtui.params import GenerationRequest  # noqa: E402
from sdtui.remote.sdtui_server import HttpClient  # noqa: E402
from sdtui.server.app import create_app  # noqa: E402
from sdtui.server.common import ServerConfig  # noqa: E402
from sdtui.server.run import ServerThread  # noqa: E402
from sdtui.service import EngineService, Image, Queued  # noqa: E402


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--baseline", type=int, default=20, help="in-process images to time")
    args = parser.parse_args()
    torch.set_num_threads(1)

    model = str(demo_model_folder(Path(tempfile.gettempdir()) / "sdtui-bench-cache"))
    engine = Engine(device="cpu", dtype="fp32")  # previews on, as a server runs
    engine.load(model)

    def request(seed: int) -> GenerationRequest:
        return GenerationRequest(prompt="a lighthouse", model=model, steps=args.steps,
                                 width=64, height=64, seed=seed, scheduler="Euler")

    def in_process_seconds() -> float:
        started = time.perf_counter()
        for seed in range(args.baseline):
            engine.generate(request(seed))
        return (time.perf_counter() - started) / args.baseline

    engine.generate(request(0))  # warm up
    # Timed before and after the load: on a shared machine one run alone is noise.
    baseline_before = in_process_seconds()

    service = EngineService(engine, models=(model,), max_queue=args.clients * 4)
    app = create_app(service, ServerConfig(model=model))
    timings: list[tuple[float, float]] = []  # (queue seconds, total seconds)
    received: list[tuple[int, int, str]] = []  # (asked seed, image seed, job)
    errors: list[str] = []
    lock = threading.Lock()
    rss_before = rss_mib()
    marks = {args.requests // 4, args.requests // 2, args.requests}
    memory: dict[int, float] = {}

    with ServerThread(app, service) as server:

        def client_work(number: int) -> None:
            client = HttpClient(server.url)
            for seed in range(number, args.requests, args.clients):
                submitted = time.perf_counter()
                running = None
                try:
                    job = client.submit(request(seed))
                    for event in client.events(job):
                        if isinstance(event, Queued) and event.position == 0:
                            running = time.perf_counter()
                        elif isinstance(event, Image):
                            with lock:
                                received.append((seed, event.seed, job))
                                if len(received) in marks:
                                    memory[len(received)] = rss_mib()
                except Exception as exc:  # counted, not fatal: the report says
                    with lock:
                        errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                done = time.perf_counter()
                with lock:
                    timings.append(((running or done) - submitted, done - submitted))
            client.close()

        wall_started = time.perf_counter()
        threads = [threading.Thread(target=client_work, args=(n,)) for n in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - wall_started
    service.close(timeout=30)
    in_process = (baseline_before + in_process_seconds()) / 2

    asked = sorted(seed for seed, _, _ in received)
    jobs = {job for _, _, job in received}
    print(f"clients {args.clients}, requests {args.requests}, demo model 64x64, "
          f"{args.steps} steps, device cpu")
    print(f"images received {len(received)}; lost {args.requests - len(set(asked))}; "
          f"duplicated {len(asked) - len(set(asked))}; distinct jobs {len(jobs)}; "
          f"seed mismatches {sum(1 for a, s, _ in received if a != s)}; errors {len(errors)}")
    for error in errors[:5]:
        print("  error:", error)
    queue = [q for q, _ in timings]
    total = [t for _, t in timings]
    print(f"time in queue  p50 {percentile(queue, .5):.3f} s  p99 {percentile(queue, .99):.3f} s")
    print(f"total          p50 {percentile(total, .5):.3f} s  p99 {percentile(total, .99):.3f} s")
    per_image = wall / max(1, len(received))
    print(f"per image: in-process engine {in_process * 1000:.1f} ms, "
          f"through the server {per_image * 1000:.1f} ms; ratio {per_image / in_process:.2f}")
    after = ", ".join(f"after {n} images {mib:.0f}" for n, mib in sorted(memory.items()))
    print(f"memory (RSS, MiB): before the load {rss_before:.0f}, {after}")


if __name__ == "__main__":
    main()
