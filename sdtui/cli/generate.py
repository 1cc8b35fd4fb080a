"""`sdtui generate`: make images from a prompt without the TUI, saving them to the gallery.

Prints each saved file's path on stdout (or one JSON object per image with
--json), so scripts can use the output; progress and notices go to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from sdtui.cli import common, prompt_options, remote, workflow_options
from sdtui.display import path_text
from sdtui.engine import performance
from sdtui.errors import GenerationCancelled

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from sdtui.config import Settings
    from sdtui.engine.engine import LoadedModel
    from sdtui.engine.protocols import EngineLike
    from sdtui.gallery.entry import GalleryEntry
    from sdtui.gallery.store import GalleryStore
    from sdtui.params import GenerationRequest
    from sdtui.prompts.grid import GridPlan
    from sdtui.results import CancelToken, GeneratedImage, GenerationResult, StepProgress


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", metavar="PROMPT", help="what the image should show")
    parser.add_argument("--negative", metavar="TEXT", default="", help="what to keep out")
    common.add_model_arguments(parser)
    parser.add_argument(
        "--model-config",
        metavar="DIR",
        help="diffusers folder describing a single-file checkpoint (so it loads offline)",
    )
    parser.add_argument(
        "--scheduler", metavar="NAME", help="sampler, e.g. 'Euler a', 'DDIM' (default: the model's)"
    )
    parser.add_argument("--steps", metavar="N", help="denoising steps (default: the model's)")
    parser.add_argument("--cfg", metavar="F", help="guidance scale (default: the model's)")
    parser.add_argument(
        "--seed", metavar="N", help="seed of the first image; images after it use N+1, N+2, ..."
    )
    parser.add_argument("--width", metavar="W", help="default: the model's native size")
    parser.add_argument("--height", metavar="H", help="default: the model's native size")
    parser.add_argument("--count", metavar="N", default="1", help="how many images (default 1)")
    parser.add_argument(
        "--refiner",
        metavar="MODEL",
        default="",
        help="SDXL refiner as a second stage, e.g. sdxl-refiner (shares the base's VAE)",
    )
    parser.add_argument(
        "--refiner-switch",
        metavar="F",
        default="0.8",
        help="fraction of the steps the base model runs before the refiner (default 0.8)",
    )
    common.add_gallery_argument(parser)
    common.add_addon_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object per saved image")
    performance.add_performance_arguments(parser)
    prompt_options.add_prompt_arguments(parser)
    remote.add_remote_arguments(parser)
    workflow_options.add_workflow_arguments(parser)


def _seed(text: str | None) -> str | None:
    """None (random) for no seed, -1 or "random", as other tools accept."""
    if text is None or text.strip().lower() in ("-1", "random", ""):
        return None
    return text


def build_request(
    args: argparse.Namespace, model: str, settings: Settings | None = None
) -> GenerationRequest:
    """The validated request; what is not given follows the loaded model later (`follow_model`)."""
    from sdtui.config import Settings
    from sdtui.models import resolve_model_name
    from sdtui.params import GenerationRequest
    from sdtui.schedulers import DEFAULT_SCHEDULER

    # First: an init image gives the size where no flag does.
    workflow = workflow_options.workflow_fields(args, settings or Settings())
    entry = resolve_model_name(model).entry
    native = entry.native_size if entry else (512, 512)
    fields: dict[str, Any] = {
        "prompt": args.prompt,
        "negative_prompt": args.negative or "",
        "model": model,
        "scheduler": args.scheduler or DEFAULT_SCHEDULER,
        "seed": _seed(args.seed),
        "width": args.width if args.width is not None else native[0],
        "height": args.height if args.height is not None else native[1],
        "count": args.count,
        "refiner": args.refiner or "",
        "refiner_switch": args.refiner_switch,
    }
    if args.steps is not None:
        fields["steps"] = args.steps
    if args.cfg is not None:
        fields["cfg"] = args.cfg
    return workflow_options.check_files(GenerationRequest(**fields, **workflow))


def _quiet_libraries() -> None:
    """Keep diffusers/transformers chatter out of the output; our errors explain failures."""
    import warnings

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="diffusers")


class _ProgressBar:
    """A rich progress bar on stderr when stderr is a terminal; without one (a
    script, a log, cron) each stage as one line, so a slow start never looks hung."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._last_line = ""
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeElapsedColumn(),
                console=Console(file=sys.stderr),
                transient=True,
            )

    def __enter__(self) -> _ProgressBar:
        if self._progress is not None:
            self._progress.start()
            self._task = self._progress.add_task("loading", total=1.0)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def status(self, text: str) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=text)
        else:
            self._line(f"sdtui: {text}")

    def _line(self, text: str) -> None:
        if text != self._last_line:  # a stage said once, not once per poll
            self._last_line = text
            self.print(text)

    def step(self, progress: StepProgress) -> None:
        if self._progress is None:
            if progress.step == 1:  # one line as each image starts
                self.print(
                    f"sdtui: image {progress.image_index + 1}/{progress.image_count}: "
                    f"{progress.total} steps"
                )
            return
        if self._task is not None:
            self._progress.update(
                self._task,
                completed=progress.fraction,
                description=f"image {progress.image_index + 1}/{progress.image_count}  "
                f"step {progress.step}/{progress.total}",
            )

    def print(self, text: str) -> None:
        try:
            if self._progress is not None:
                self._progress.console.print(text, markup=False, highlight=False)
            else:
                print(text, file=sys.stderr)
        except OSError:  # the terminal hung up; the exit status still tells
            pass


def _stage(text: str) -> None:
    try:
        print(text, file=sys.stderr, flush=True)
    except OSError:
        pass


def run(args: argparse.Namespace) -> int:
    from sdtui.gallery import Gallery

    if remote.wants_remote(args):
        return remote.run(args)

    settings = common.settings_from_args(args)
    # Bad input stops here, before anything is loaded or written.
    request = build_request(args, settings.model, settings)
    job = prompt_options.prepare_job(args, request, settings)
    options = performance.performance_from_settings(settings, args)
    common.check_gallery_folder(settings)  # a file named as the gallery: before torch loads
    _quiet_libraries()
    if not sys.stderr.isatty():
        _stage("sdtui: starting the engine (importing torch)")
    from sdtui.engine import Engine
    from sdtui.models import resolve_model_name
    from sdtui.results import CancelToken

    engine = Engine(  # checks the device and dtype
        device=settings.device,
        dtype=settings.dtype,
        allow_pickle=settings.allow_pickle,
        performance=options,
        preview="off",  # nothing here would show the frames
        addons=job.addons,
    )
    gallery = Gallery(settings.gallery)
    saved: list[GalleryEntry] = []
    results: list[GenerationResult] = []
    prompt_options.print_notes(job)
    with _ProgressBar(job.image_count) as bar:
        model = job.requests[0].model  # a preset may name another model
        notice = resolve_model_name(model).notice
        if notice:  # said before loading, so it shows even when the load fails
            bar.print(f"sdtui: {notice}")
        loaded = engine.load(model, on_status=bar.status, config=args.model_config)
        if loaded.notes:
            bar.status(", ".join(loaded.notes))
        job.requests, notices = follow_model(job.requests, request, args, loaded)
        for notice in notices:
            bar.print(f"sdtui: {notice}")
        last = time.perf_counter()

        def on_image(generated: GeneratedImage) -> None:
            nonlocal last
            seconds = time.perf_counter() - last
            result = _result_so_far(generated, loaded, engine, seconds)
            entry = gallery.save(generated, result)
            saved.append(entry)
            if args.json:
                print(json.dumps(_json_line(entry.path, generated, loaded, seconds)), flush=True)
            else:
                print(path_text(entry.path), flush=True)
            last = time.perf_counter()

        cancel = CancelToken()
        try:
            with _cancel_on_interrupt(cancel):
                for item in job.requests:
                    results.append(
                        engine.generate(
                            item, on_progress=bar.step, cancel=cancel, on_image=on_image
                        )
                    )
        except (KeyboardInterrupt, GenerationCancelled):
            bar.print(f"sdtui: interrupted; {len(saved)} of {job.image_count} images saved")
            return 130
    not_used = sorted({name for r in results for name in r.info.get("not_used", [])})
    if not_used:
        names = ", ".join(not_used)
        print(f"sdtui: this pipeline does not take {names}; they were not used", file=sys.stderr)
    blacked_out = [seed for r in results for seed in r.info.get("blacked_out_seeds", [])]
    if blacked_out:
        seeds = ", ".join(map(str, blacked_out))
        print(f"sdtui: the model's safety checker blacked out seed {seeds}", file=sys.stderr)
    if job.plan is not None:
        _save_grid(job.plan, results, gallery, args)
    return 0


def _save_grid(
    plan: GridPlan,
    results: list[GenerationResult],
    gallery: GalleryStore,
    args: argparse.Namespace,
) -> None:
    """Lay the finished cells out in one labelled picture and save it too."""
    from sdtui.prompts.grid import assemble_grid, save_grid

    grid = assemble_grid(plan, [r.images[0].image for r in results])
    entry = save_grid(gallery, plan, grid, results)
    if args.json:
        line = {"path": str(entry.path), "grid": plan.describe(), "seed": entry.seed}
        print(json.dumps(line), flush=True)
    else:
        print(path_text(entry.path), flush=True)


@contextlib.contextmanager
def _cancel_on_interrupt(cancel: CancelToken) -> Iterator[None]:
    """The first Ctrl+C cancels at the end of the current step; a second one stops at once.

    A hang-up (SIGHUP: the SSH session or terminal went away) cancels the same way,
    so the image being made is dropped whole; finished ones are already saved.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        if cancel.cancelled:
            raise KeyboardInterrupt
        cancel.cancel()

    hangup = getattr(signal, "SIGHUP", None)  # not on Windows
    previous = signal.signal(signal.SIGINT, on_interrupt)
    previous_hangup = signal.signal(hangup, on_interrupt) if hangup else None
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if hangup:
            signal.signal(hangup, previous_hangup)


def follow_model(
    requests: list[GenerationRequest],
    base: GenerationRequest,
    args: argparse.Namespace,
    loaded: LoadedModel,
) -> tuple[list[GenerationRequest], list[str]]:
    """The requests with the loaded model's defaults where nothing set a value, and notices.

    A value counts as set when its flag was given, or when a style, preset or
    grid axis changed it from the command line's request (`base`). A set value
    the model cannot use is replaced, with a notice; so is input it ignores.
    """
    from sdtui.families import FOLLOWING_FIELDS, fit_request

    defaults = getattr(loaded, "defaults", None)
    if defaults is None:
        return requests, []
    fitted: list[GenerationRequest] = []
    notices: list[str] = []
    for request in requests:
        set_by_user = {
            name
            for name in FOLLOWING_FIELDS
            if getattr(args, name, None) is not None  # the flags share the fields' names
            or getattr(request, name) != getattr(base, name)
        }
        request, said = fit_request(request, defaults, set_by_user)
        fitted.append(request)
        notices += [n for n in said if n not in notices]
    if defaults.plain:
        notices.append(f"{defaults.family} runs in plain mode: {', '.join(defaults.plain)}")
    return fitted, notices


def _result_so_far(
    generated: GeneratedImage, loaded: LoadedModel, engine: EngineLike, seconds: float
) -> GenerationResult:
    """The record saved with each image as it finishes (the batch is still running)."""
    from sdtui.results import GenerationResult

    return GenerationResult(
        request=generated.request,
        images=[generated],
        model_id=loaded.model_id,
        device=engine.device,
        dtype=engine.dtype,
        load_seconds=loaded.load_seconds,
        generate_seconds=seconds,
        info={"family": loaded.family, "notice": loaded.notice},
    )


def _json_line(
    path: Path, generated: GeneratedImage, loaded: LoadedModel, seconds: float
) -> dict[str, Any]:
    request = generated.request
    return {
        "path": str(path),
        "seed": generated.seed,
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt,
        "model": request.model,
        "model_id": loaded.model_id,
        "width": request.width,
        "height": request.height,
        "steps": request.steps,
        "scheduler": request.scheduler,
        "sampler": request.scheduler,
        "cfg": request.cfg,
        "cfg_scale": request.cfg,
        "family": loaded.family,
        "seconds": round(seconds, 3),
    }
