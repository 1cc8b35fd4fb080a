"""`sdtui generate` against a plain diffusers script, each as a whole process.

    .venv/bin/python benchmarks/generate_parity.py [--repeat 7] [--steps 4]
    .venv/bin/python benchmarks/generate_parity.py --source OLD_CHECKOUT [--source ...]
    .venv/bin/python benchmarks/generate_parity.py --imports
    .venv/bin/python benchmarks/generate_parity.py --own-imports --repeat 5 [--source ...]

Both sides load the built-in demo folder with the pipeline class its
model_index.json names, use the same scheduler (DPM++ 2M Karras), steps, size,
guidance and seed, and save one PNG; the plain script is what a user writes
(`StableDiffusionPipeline.from_pretrained(folder)`, `pipe(...)`, `image.save`).
The variants run interleaved REPEAT times (after one warm-up each), so a noisy
neighbour slows them alike; each child's CPU time (user + system, from
`os.wait4`) and wall time are taken, and the medians and the ratios of the
CPU-time medians to the plain script are printed. `--source DIR` adds another
checkout's `sdtui generate` (run with PYTHONPATH=DIR), for a before/after in
the same run. `--imports` instead prints what `python -X importtime` says the
two processes import, and which top-level packages only sdtui imports;
`--own-imports` the CPU time of sdtui's own imports alone, in a process that
has loaded the libraries already (steadier than the whole-process figure).
OMP_NUM_THREADS=1 for every child. Nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "a lighthouse on a cliff at dusk"
SIZE = 64
CFG = 7.0
SEED = 1

PLAIN_SCRIPT = """\
import sys
import torch
import diffusers
from diffusers import DPMSolverMultistepScheduler

folder, steps, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
pipeline_class = getattr(diffusers, {class_name!r})
pipe = pipeline_class.from_pretrained(folder, use_safetensors=True)
pipe.scheduler = DPMSolverMultistepScheduler.from_config(
    pipe.scheduler.config, use_karras_sigmas=True
)
pipe.set_progress_bar_config(disable=True)
torch.set_num_threads(1)
image = pipe(
    {prompt!r},
    num_inference_steps=steps,
    guidance_scale={cfg!r},
    width={size},
    height={size},
    generator=torch.Generator("cpu").manual_seed({seed}),
).images[0]
image.save(out)
"""


def child_env(work: Path, pythonpath: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS="1",
        HF_HUB_OFFLINE="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        SDTUI_CONFIG_DIR=str(work / "config"),
        SDTUI_CACHE_DIR=str(work / "cache"),
        SDTUI_LOG_DIR=str(work / "logs"),
    )
    env.pop("SDTUI_CONFIG", None)
    # As installed: sdtui's modules load from bytecode, like the libraries' (see compile_sources).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return env


def run_child(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one child process, which must succeed."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    out, err = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{err.decode(errors='replace')[-2000:]}")
    return usage.ru_utime + usage.ru_stime, wall


def sdtui_command(steps: int, gallery: Path) -> list[str]:
    return [
        sys.executable, "-m", "sdtui", "generate", PROMPT, "--model", "demo",
        "--steps", str(steps), "--seed", str(SEED), "--cfg", str(CFG),
        "--width", str(SIZE), "--height", str(SIZE), "--gallery", str(gallery),
    ]  # fmt: skip


def demo_folder(work: Path) -> Path:
    """Build the demo model once (in a child, with this checkout) and return its folder."""
    code = (
        "import sys; from pathlib import Path; from sdtui.engine.demo import demo_model_folder; "
        "print(demo_model_folder(Path(sys.argv[1])))"
    )
    env = child_env(work, ROOT)
    out = subprocess.run(
        [sys.executable, "-c", code, str(work / "cache")],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return Path(out.stdout.strip())


def plain_script(work: Path, folder: Path) -> Path:
    index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    script = work / "plain_diffusers.py"
    script.write_text(
        PLAIN_SCRIPT.format(
            class_name=index["_class_name"], prompt=PROMPT, cfg=CFG, size=SIZE, seed=SEED
        ),
        encoding="utf-8",
    )
    return script


def compile_sources(sources: list[Path]) -> None:
    """Byte-compile each checkout's sdtui, as `pip install` does for the libraries.

    Without it, a shell with PYTHONDONTWRITEBYTECODE=1 compiles sdtui's ~100 modules
    from source in every run, which the plain script never pays.
    """
    for source in sources:
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", str(source / "sdtui")],
            check=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""},
        )  # fmt: skip


def variants(work: Path, steps: int, sources: list[Path]) -> dict[str, tuple[list[str], dict]]:
    compile_sources([ROOT, *sources])
    folder = demo_folder(work)
    script = plain_script(work, folder)
    found: dict[str, tuple[list[str], dict]] = {
        "plain diffusers": (
            [sys.executable, str(script), str(folder), str(steps), str(work / "plain.png")],
            child_env(work, None),
        ),
        "sdtui generate": (sdtui_command(steps, work / "gallery"), child_env(work, ROOT)),
    }
    for i, source in enumerate(sources):
        # Each checkout gets its own gallery; they share the demo model's cache folder.
        label = f"sdtui generate ({source})"
        found[label] = (sdtui_command(steps, work / f"gallery-{i}"), child_env(work, source))
    return found


def measure(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="sdtui-parity-") as tmp:
        work = Path(tmp)
        runs = variants(work, args.steps, args.source)
        cpu: dict[str, list[float]] = defaultdict(list)
        wall: dict[str, list[float]] = defaultdict(list)
        for command, env in runs.values():  # warm-up: the page cache, the demo's first build
            run_child(command, env)
        for _ in range(args.repeat):
            for label, (command, env) in runs.items():
                seconds, elapsed = run_child(command, env)
                cpu[label].append(seconds)
                wall[label].append(elapsed)
    print(f"load: {os.getloadavg()[0]:.2f} (1-minute average at the end)")
    print(f"{args.repeat} interleaved runs, {args.steps} steps, {SIZE}x{SIZE}")
    base = statistics.median(cpu["plain diffusers"])
    print(f"{'variant':<48} {'CPU s':>7} {'wall s':>7} {'CPU ratio':>9} {'CPU range':>15}")
    for label in runs:
        median = statistics.median(cpu[label])
        spread = f"{min(cpu[label]):.2f}-{max(cpu[label]):.2f}"
        print(
            f"{label:<48} {median:7.2f} {statistics.median(wall[label]):7.2f} "
            f"{median / base:9.3f} {spread:>15}"
        )


def import_times(command: list[str], env: dict[str, str]) -> dict[str, int]:
    """Microseconds spent in each top-level package's own modules, from -X importtime."""
    process = subprocess.run(
        [command[0], "-X", "importtime", *command[1:]], env=env, capture_output=True, text=True
    )
    if process.returncode != 0:
        raise SystemExit(process.stderr[-2000:])
    found: dict[str, int] = defaultdict(int)
    for line in process.stderr.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        own, _cumulative, name = line.removeprefix("import time:").split("|", 2)
        found[name.strip().split(".")[0]] += int(own)
    return found


def imports(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="sdtui-parity-") as tmp:
        work = Path(tmp)
        runs = variants(work, args.steps, [])
        for command, env in runs.values():
            run_child(command, env)  # warm-up
        plain = import_times(*runs["plain diffusers"])
        ours = import_times(*runs["sdtui generate"])
    print("import time of each package's own modules (ms), sdtui generate vs plain diffusers:")
    print(f"{'package':<28} {'sdtui':>8} {'plain':>8} {'extra':>8}")
    for top in sorted(set(ours) | set(plain), key=lambda t: plain.get(t, 0) - ours.get(t, 0)):
        mine, theirs = ours.get(top, 0), plain.get(top, 0)
        if abs(mine - theirs) >= args.min_ms * 1000:
            extra = (mine - theirs) / 1000
            print(f"{top:<28} {mine / 1000:8.1f} {theirs / 1000:8.1f} {extra:8.1f}")
    print(f"{'total':<28} {sum(ours.values()) / 1000:8.1f} {sum(plain.values()) / 1000:8.1f}")
    only = sorted(set(ours) - set(plain))
    print("packages only sdtui imports:", ", ".join(only) or "none")


OWN_IMPORTS = """\
import sys, time
import torch, diffusers, transformers, PIL.PngImagePlugin
from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline
before = set(sys.modules)
start = time.process_time()
from sdtui.cli import build_parser
build_parser().parse_args(["generate", "a prompt", "--model", "demo"])
import sdtui.cli.generate, sdtui.engine.engine, sdtui.gallery, sdtui.prompts.prepare
print(time.process_time() - start, len(set(sys.modules) - before))
"""


def own_imports(args: argparse.Namespace) -> None:
    """CPU time of what only sdtui imports, in a process that has the libraries already."""
    sources = [ROOT, *args.source]
    compile_sources(sources)
    seconds: dict[Path, list[float]] = defaultdict(list)
    counts: dict[Path, str] = {}
    with tempfile.TemporaryDirectory(prefix="sdtui-parity-") as tmp:
        for _ in range(args.repeat):
            for source in sources:
                out = subprocess.run(
                    [sys.executable, "-c", OWN_IMPORTS], env=child_env(Path(tmp), source),
                    cwd=tmp, check=True, capture_output=True, text=True,
                )  # fmt: skip
                cpu, counts[source] = out.stdout.split()
                seconds[source].append(float(cpu))
    print("sdtui's own imports for `generate` (parser included), libraries already loaded:")
    for source in sources:
        median = statistics.median(seconds[source]) * 1000
        print(f"{str(source):<48} {median:6.1f} ms CPU  {counts[source]:>4} modules")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--source", type=Path, action="append", default=[])
    parser.add_argument("--imports", action="store_true", help="the import split instead")
    parser.add_argument(
        "--own-imports", action="store_true", help="only the CPU time of sdtui's own imports"
    )
    parser.add_argument("--min-ms", type=float, default=5.0, help="smallest difference shown")
    args = parser.parse_args()
    args.source = [s.resolve() for s in args.source]
    if args.own_imports:
        own_imports(args)
    elif args.imports:
        imports(args)
    else:
        measure(args)


if __name__ == "__main__":
    main()
