"""`sdtui bench`: seconds per image, sdtui's overhead over plain diffusers, and each fast path."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from dataclasses import replace

from sdtui.bench.architectures import ARCHITECTURES
from sdtui.config import DEVICES, DTYPES
from sdtui.errors import ValidationError

DEFAULT_BUDGET = 420.0  # seconds: the GPU suite fits in 8 minutes on one H100


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--suite",
        choices=("gpu",),
        help="gpu: plain diffusers fp16 vs sdtui vs every fast path, on SD 1.5 512² and"
        " SDXL 1024² (with --arch, on that architecture alone)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        metavar="SECONDS",
        help=f"--suite: start no variant after this many seconds (default {DEFAULT_BUDGET:.0f})",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--arch",
        choices=ARCHITECTURES,
        help="a real architecture with random weights, no download (default: demo)",
    )
    source.add_argument(
        "--model", metavar="NAME|ID|PATH", help="a model to load instead (must be available)"
    )
    parser.add_argument(
        "--steps", type=int, help="denoising steps (default 20; --suite: each case's own)"
    )
    parser.add_argument(
        "--size", metavar="WxH", help="image size (default: the model's native size)"
    )
    parser.add_argument("--device", choices=DEVICES, default="auto", help="where to run")
    parser.add_argument("--dtype", choices=DTYPES, default="auto", help="weights precision")
    parser.add_argument(
        "--modes",
        metavar="LIST",
        help="comma-separated fast paths to compare, or 'none' (default: all that apply)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        help="interleaved rounds (default: 15 for the demo model, 3 for real sizes)",
    )
    parser.add_argument("--seed", type=int, default=1234, help="seed of every run")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--no-tui", dest="tui", action="store_false", help="skip the TUI first-paint timings"
    )


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise ValidationError("size", f"must look like 512x512, got {text!r}") from None
    return width, height


def parse_modes(text: str | None) -> tuple[str, ...] | None:
    from sdtui.bench.runner import FAST_PATHS

    if text is None or text.strip().lower() == "all":
        return None
    if text.strip().lower() == "none":
        return ()
    modes = tuple(m.strip() for m in text.split(",") if m.strip())
    unknown = [m for m in modes if m not in FAST_PATHS]
    if unknown:
        raise ValidationError(
            "modes", f"unknown {', '.join(unknown)}; choose from {', '.join(FAST_PATHS)}"
        )
    return modes


def _quiet_libraries() -> None:
    """Library chatter (deprecations, shard-writing bars) would bury the table."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for category in (FutureWarning, DeprecationWarning, UserWarning):
        warnings.filterwarnings("ignore", category=category)


def run(args: argparse.Namespace) -> int:
    _quiet_libraries()
    if args.suite:
        return run_suite(args)
    from sdtui.bench.runner import BenchConfig, run_benchmark

    arch = None if args.model else (args.arch or "demo")
    # A demo image takes milliseconds: many rounds are cheap and steady the medians.
    repeats = args.repeats if args.repeats is not None else (15 if arch == "demo" else 3)
    if repeats < 1:
        raise ValidationError("repeats", f"must be at least 1, got {repeats}")
    width = height = None
    if args.size:
        width, height = parse_size(args.size)
    config = BenchConfig(
        arch=arch,
        model=args.model,
        steps=20 if args.steps is None else args.steps,
        width=width,
        height=height,
        device=args.device,
        dtype=args.dtype,
        modes=parse_modes(args.modes),
        repeats=repeats,
        seed=args.seed,
        tui=args.tui,
    )

    def status(text: str) -> None:
        print(f"... {text}", file=sys.stderr, flush=True)

    report = run_benchmark(config, on_status=status)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        from sdtui.bench.report import format_report

        print(format_report(report))
    return 0


def run_suite(args: argparse.Namespace) -> int:
    """`--suite gpu`: the whole table, on CUDA unless a device is named."""
    from sdtui.bench.suite import CASES, GPU_CASES, SuiteCase, SuiteConfig, format_suite
    from sdtui.bench.suite import run_suite as run_cases

    if args.model:
        raise ValidationError("suite", "runs random-weight architectures; use --arch, not --model")
    device = "cuda" if args.device == "auto" else args.device
    if not device.startswith("cuda") and not args.arch:
        raise ValidationError(
            "suite", f"runs SD 1.5 and SDXL on a GPU; on {device} name one with --arch demo"
        )
    cases: tuple[SuiteCase, ...] = (CASES[args.arch],) if args.arch else GPU_CASES
    if args.size:
        width, height = parse_size(args.size)
        if width != height:
            raise ValidationError("size", f"the suite runs square images, got {args.size}")
        cases = tuple(replace(case, size=width) for case in cases)
    if args.steps is not None:
        cases = tuple(replace(case, steps=args.steps) for case in cases)
    repeats = 3 if args.repeats is None else args.repeats
    if repeats < 1:
        raise ValidationError("repeats", f"must be at least 1, got {repeats}")
    budget = DEFAULT_BUDGET if args.budget is None else args.budget
    if budget <= 0:
        raise ValidationError("budget", f"must be a number of seconds above 0, got {budget:g}")
    config = SuiteConfig(
        device=device,
        dtype=args.dtype,
        cases=cases,
        variants=parse_variants(args.modes),
        repeats=repeats,
        seed=args.seed,
        budget_seconds=budget,
    )
    report = run_cases(config, on_status=lambda text: print(f"... {text}", file=sys.stderr))
    print(json.dumps(report, indent=2) if args.json else format_suite(report))
    return 0


def parse_variants(text: str | None) -> tuple[str, ...] | None:
    from sdtui.bench.suite import VARIANTS

    if text is None or text.strip().lower() == "all":
        return None
    if text.strip().lower() == "none":
        return ()
    names = tuple(m.strip() for m in text.split(",") if m.strip())
    unknown = [m for m in names if m not in VARIANTS]
    if unknown:
        raise ValidationError(
            "modes", f"unknown {', '.join(unknown)}; the suite has {', '.join(VARIANTS)}"
        )
    return names
