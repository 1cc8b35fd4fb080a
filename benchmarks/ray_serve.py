"""`sdtui serve --ray` on CPU with the demo model: start-up, 2 replicas against 1, Ray's cost.

    .venv/bin/python benchmarks/ray_serve.py [--jobs 6] [--steps 8]

Runs itself inside a private network namespace (`unshare -n`, only loopback),
so no Ray traffic leaves this machine, and starts its own Ray (2 CPUs, its own
temp folder). Reports, all from the same run:

- start-up: Ray, the deployment of two CPU replicas, and the model loaded on both;
- throughput with 2 replicas against 1 (the same deployment, one dispatcher or two);
- the time per image through HTTP with Ray against plain `sdtui serve` (an engine in
  the server's process), one job at a time, as a ratio.

Nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

IN_NETNS = "SDTUI_RAY_NETNS"


def reexec_in_namespace() -> int:
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled")
    env[IN_NETNS] = "1"
    script = 'ip link set lo up && exec "$0" "$@"'
    command = ["unshare", "-n", "sh", "-c", script, sys.executable, *sys.argv]
    return subprocess.run(command, env=env).returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=6, help="jobs per throughput run")
    parser.add_argument("--steps", type=int, default=16)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from sdtui.engine import Engine
    from sdtui.engine.demo import demo_model_folder
    from sdtui.params import GenerationRequest
    from sdtui.remote.sdtui_server import HttpClient
    from sdtui.server.app import create_app
    from sdtui.server.common import ServerConfig
    from sdtui.server.ray_backend import RayDeployment, RayJobQueue, RaySettings
    from sdtui.server.ray_replica import EngineOptions
    from sdtui.server.run import ServerThread
    from sdtui.service import EngineService, Image
    from sdtui.service.service import JobQueue

    work = Path(tempfile.mkdtemp(prefix="sdtui-ray-", dir="/tmp"))
    model = str(demo_model_folder(work / "cache"))

    def request(seed: int) -> GenerationRequest:
        return GenerationRequest(prompt="a fox", model=model, steps=args.steps, width=64,
                                 height=64, seed=seed, scheduler="Euler")

    def run_jobs(service: JobQueue, count: int) -> tuple[float, set[str]]:
        """Seconds to finish `count` jobs submitted at once, and the replicas that ran them."""
        began = time.perf_counter()
        jobs = [service.submit(request(seed)) for seed in range(count)]
        workers = set()
        for job in jobs:
            images = [e for e in service.events(job) if isinstance(e, Image)]
            assert len(images) == 1, f"job {job} made {len(images)} images"
            workers.add(images[0].info.get("worker", "in-process"))
        return time.perf_counter() - began, workers

    def http_seconds_per_image(service: JobQueue, count: int) -> float:
        """One job at a time through the HTTP app: the time per image a client sees."""
        app = create_app(service, ServerConfig(model=model))
        with ServerThread(app, service) as server:
            client = HttpClient(server.url)
            list(client.events(client.submit(request(99))))  # warm
            began = time.perf_counter()
            for seed in range(count):
                events = list(client.events(client.submit(request(seed))))
                assert sum(isinstance(e, Image) for e in events) == 1
            seconds = (time.perf_counter() - began) / count
            client.close()
        return seconds

    # Plain `sdtui serve`: an engine in this process (measured before and after Ray,
    # as the machine's load drifts).
    engine = Engine(device="cpu", dtype="fp32")
    engine.load(model)

    def plain_seconds_per_image() -> float:
        plain = EngineService(engine, models=(model,))
        try:
            return http_seconds_per_image(plain, args.jobs)
        finally:
            plain.close()

    plain_before = plain_seconds_per_image()

    marks: dict[str, float] = {"start": time.perf_counter()}

    def status(text: str) -> None:
        marks[text.split()[0]] = time.perf_counter()

    settings = RaySettings(replicas=2, gpus_per_replica=0, local_cpus=2,
                           temp_dir=str(work / "ray"))
    deployment = RayDeployment(settings, EngineOptions(device="cpu", dtype="fp32"), model)
    deployment.start(on_status=status)
    try:
        ray_start = marks.get("deploying", marks["start"]) - marks["start"]
        total_start = deployment.startup_seconds
        # One dispatcher: one replica busy at a time, on the same deployment.
        single = RayJobQueue(deployment.handle, loaded=deployment.loaded, workers=1,
                             models=(model,))
        run_jobs(single, 2)  # warm both paths
        one_seconds, _ = run_jobs(single, args.jobs)
        ray_per_image = http_seconds_per_image(single, args.jobs)
        single.close()
        double = deployment.queue()
        two_seconds, two_workers = run_jobs(double, args.jobs)
        double.close()
    finally:
        deployment.close()
    plain_per_image = (plain_before + plain_seconds_per_image()) / 2
    shutil.rmtree(work, ignore_errors=True)

    print(f"jobs per run: {args.jobs}, {args.steps} steps at 64x64 on CPU, 2 Ray CPUs")
    print(f"start-up: Ray {ray_start:.1f} s; Ray + 2 replicas deployed + model loaded "
          f"{total_start:.1f} s")
    print(f"throughput 2 replicas / 1 replica: {one_seconds / two_seconds:.2f}x "
          f"({len(two_workers)} replicas made the images with two at once)")
    print(f"time per image over HTTP, Ray / plain sdtui serve: "
          f"{ray_per_image / plain_per_image:.2f}x "
          f"({ray_per_image * 1000:.0f} ms against {plain_per_image * 1000:.0f} ms)")


if __name__ == "__main__":
    if os.environ.get(IN_NETNS) != "1":
        sys.exit(reexec_in_namespace())
    main()
