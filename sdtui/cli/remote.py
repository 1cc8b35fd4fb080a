"""`sdtui generate --server URL` and `--backend hf`: the same command, another engine.

The images come back to this machine and are saved in the user's own gallery,
with the settings as usual and, in the `sdtui` record, where they were made.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sdtui.errors import GenerationCancelled, SdtuiError, ValidationError
from sdtui.params import MAX_SEED, GenerationRequest
from sdtui.results import CancelToken, GeneratedImage, GenerationResult

if TYPE_CHECKING:
    from PIL.Image import Image

    from sdtui.gallery.entry import GalleryEntry
    from sdtui.gallery.store import GalleryStore
    from sdtui.remote.a1111 import A1111Client
    from sdtui.remote.sdtui_server import HttpClient

TOKEN_VARIABLE = "SDTUI_SERVER_TOKEN"


def add_remote_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("remote engines")
    group.add_argument(
        "--server", metavar="URL",
        help="generate on a running sdtui serve, or an AUTOMATIC1111/Forge/SD.Next API server",
    )
    group.add_argument(
        "--token-file", metavar="PATH",
        help=f"file holding the server's token (or set {TOKEN_VARIABLE}; user:password for A1111)",
    )
    group.add_argument(
        "--backend", choices=("local", "hf"), default="local",
        help="hf: Hugging Face Inference Providers or an Inference Endpoint URL given as --model",
    )
    group.add_argument(
        "--provider", metavar="NAME",
        help="Inference Provider for --backend hf (fal-ai, nscale, replicate, ...; default auto)",
    )


class _RemoteEngine(Protocol):
    """An engine elsewhere, as `run` drives it."""

    def request(self, args: argparse.Namespace) -> GenerationRequest:
        """The validated request of the command line, with that engine's defaults."""
        ...

    def generate(
        self, request: GenerationRequest, saver: _Saver, bar: Any, cancel: _RemoteCancel
    ) -> None:
        """Make the request's images, handing each to `saver`."""
        ...


def wants_remote(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "server", None)) or getattr(args, "backend", "local") == "hf"


class _RemoteCancel(CancelToken):
    """Ctrl+C (or a hang-up) also tells the remote engine, off the signal handler."""

    def __init__(self) -> None:
        super().__init__()
        self.action: Callable[[], Any] | None = None

    def cancel(self) -> None:
        super().cancel()
        action = self.action
        if action is not None:
            threading.Thread(target=_quietly, args=(action,), daemon=True).start()


def _quietly(action: Callable[[], Any]) -> None:
    try:
        action()
    except SdtuiError:
        pass  # the stream (or its end) says what happened


def server_token(args: argparse.Namespace) -> str | None:
    if args.token_file:
        path = Path(args.token_file).expanduser()
        try:
            return path.read_text(encoding="utf-8").strip() or None
        except (OSError, UnicodeDecodeError) as exc:
            raise ValidationError("token-file", f"cannot read {path}: {exc}") from None
    return os.environ.get(TOKEN_VARIABLE, "").strip() or None


class _Saver:
    """Saves each image as it arrives and prints its path (or JSON line) on stdout."""

    def __init__(self, args: argparse.Namespace, gallery: GalleryStore, total: int) -> None:
        self.args, self.gallery, self.total = args, gallery, total
        self.saved: list[GalleryEntry] = []
        self.last = time.perf_counter()

    def save(
        self, image: Image, seed: int, index: int, request: GenerationRequest, model_id: str,
        info: dict[str, Any], device: str = "", dtype: str = "",
    ) -> None:
        seconds = time.perf_counter() - self.last
        generated = GeneratedImage(image, seed, index, request)
        result = GenerationResult(
            request=request, images=[generated], model_id=model_id, device=device,
            dtype=dtype, generate_seconds=seconds, info=info,
        )
        entry = self.gallery.save(generated, result)
        self.saved.append(entry)
        if self.args.json:
            line = {"path": str(entry.path), "seed": seed, "prompt": request.prompt,
                    "model": request.model, "model_id": model_id, "width": request.width,
                    "height": request.height, "steps": request.steps,
                    "scheduler": request.scheduler, "cfg": request.cfg,
                    "seconds": round(seconds, 3), "made_on": info.get("made_on")}
            print(json.dumps(line), flush=True)
        else:
            print(entry.path, flush=True)
        self.last = time.perf_counter()


def run(args: argparse.Namespace) -> int:
    from sdtui.cli import common, prompt_options
    from sdtui.cli.generate import _cancel_on_interrupt, _ProgressBar
    from sdtui.gallery import Gallery

    if args.server and args.backend == "hf":
        raise ValidationError("backend", "hf cannot be combined with --server")
    if getattr(args, "xy", None):
        raise ValidationError("xy", "grids are made with the local engine only")
    settings = common.settings_from_args(args)
    engine = _open(args)
    request = engine.request(args)
    job = prompt_options.prepare_job(args, request, settings)
    gallery = Gallery(settings.gallery)
    saver = _Saver(args, gallery, sum(r.count for r in job.requests))
    prompt_options.print_notes(job)
    cancel = _RemoteCancel()
    with _ProgressBar(saver.total) as bar:
        try:
            with _cancel_on_interrupt(cancel):
                for item in job.requests:
                    engine.generate(item, saver, bar, cancel)
        except (KeyboardInterrupt, GenerationCancelled):
            bar.print(f"sdtui: interrupted; {len(saver.saved)} of {saver.total} images saved")
            return 130
        except SdtuiError as exc:
            if saver.saved:  # say what is kept; the error itself is printed by main
                bar.print(f"sdtui: {len(saver.saved)} of {saver.total} images were saved")
            raise exc from None
    return 0


def _open(args: argparse.Namespace) -> _RemoteEngine:
    if args.backend == "hf":
        return _HFEngine(args)
    from sdtui.remote.sdtui_server import HttpClient

    token = server_token(args)
    client = HttpClient(args.server, token)
    health: object = None
    try:
        health = client.health()
    except SdtuiError:
        pass
    if isinstance(health, dict) and "sdtui" in health:
        return _SdtuiEngine(client)
    client.close()
    from sdtui.remote.a1111 import A1111Client

    a1111 = A1111Client(args.server, token)
    a1111.options()  # neither answers: this raises the one-line reason
    return _A1111Engine(a1111)


def _build(args: argparse.Namespace, model: str, native: tuple[int, int]) -> GenerationRequest:
    from sdtui.cli.generate import build_request

    request = build_request(args, model)
    return request.replace(
        width=native[0] if args.width is None else request.width,
        height=native[1] if args.height is None else request.height,
    )


def _decode_png(data: bytes) -> Image:
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.load()
    return image


class _SdtuiEngine:
    def __init__(self, client: HttpClient) -> None:
        self.client = client

    def request(self, args: argparse.Namespace) -> GenerationRequest:
        served = self.client.models()["models"][0]
        return _build(args, args.model or served["name"], tuple(served["native_size"]))

    def generate(
        self, request: GenerationRequest, saver: _Saver, bar: Any, cancel: _RemoteCancel
    ) -> None:
        from sdtui.service import Done, Failed, Image, Loading, Queued, Step

        job = self.client.submit(request)
        cancel.action = lambda: self.client.cancel(job)
        if cancel.cancelled:
            self.client.cancel(job)
        for event in self.client.events(job):
            if isinstance(event, Queued):
                bar.status("running" if event.position == 0 else f"queued: {event.position}")
            elif isinstance(event, Loading):
                bar.status(event.message)
            elif isinstance(event, Step):
                bar.step(event)
            elif isinstance(event, Image):
                made_on = {"server": self.client.url, "api": "sdtui", "job": job,
                           "device": event.device}
                saver.save(
                    _decode_png(event.png), event.seed, event.index, event.request,
                    event.model_id, {**event.info, "made_on": made_on}, event.device,
                    event.dtype,
                )
            elif isinstance(event, Failed):
                if event.kind == "cancelled":
                    raise GenerationCancelled()
                raise SdtuiError(f"the server failed the job: {event.message}")
            elif isinstance(event, Done):
                return


class _A1111Engine:
    def __init__(self, client: A1111Client) -> None:
        self.client = client
        self.model: str | None = None

    def request(self, args: argparse.Namespace) -> GenerationRequest:
        self.model = args.model  # None: whatever the server has loaded
        served = self.client.options().get("sd_model_checkpoint") or "a1111"
        return _build(args, args.model or str(served), (512, 512))

    def generate(
        self, request: GenerationRequest, saver: _Saver, bar: Any, cancel: _RemoteCancel
    ) -> None:
        from sdtui.service import Step

        cancel.action = self.client.interrupt

        def on_progress(fraction: float, step: int, steps: int) -> None:
            if steps:
                image = min(request.count - 1, int(fraction * request.count))
                bar.step(Step("", max(1, step), steps, image, request.count))

        result = self.client.txt2img(request, self.model, on_progress, cancel)
        made_on = {"server": self.client.url, "api": "a1111",
                   "version": result.info.get("version")}
        for index, (image, seed) in enumerate(result.images):
            saver.save(image, seed, index, request, result.model or request.model,
                       {"made_on": made_on})
        if cancel.cancelled:
            raise GenerationCancelled()


class _HFEngine:
    def __init__(self, args: argparse.Namespace) -> None:
        from sdtui.remote.hf import HFBackend

        if not args.model:
            raise ValidationError("model", "--backend hf needs --model HUB_ID or an endpoint URL")
        self.backend = HFBackend(args.model, args.provider)

    def request(self, args: argparse.Namespace) -> GenerationRequest:
        from sdtui.models import resolve_model_name

        entry = None if self.backend.model.startswith("http") else resolve_model_name(
            self.backend.model).entry
        return _build(args, self.backend.model, entry.native_size if entry else (512, 512))

    def generate(
        self, request: GenerationRequest, saver: _Saver, bar: Any, cancel: _RemoteCancel
    ) -> None:
        from sdtui.remote.hf import not_used

        unused = not_used(self.backend.provider, self.backend.model, request)
        if unused:
            print(f"sdtui: {self.backend.provider} does not use: {', '.join(unused)}",
                  file=sys.stderr)
            # Recorded in the image's settings too, so the file does not claim them.
            request = request.replace(extras=(*request.extras, ("Not used", ", ".join(unused))))
        base = request.seed if request.seed is not None else secrets.randbelow(MAX_SEED + 1)
        made_on = {"backend": "hf", "provider": self.backend.provider,
                   "model": self.backend.model, "not_used": unused}
        for index, seed in enumerate(request.image_seeds(base)):
            if cancel.cancelled:
                raise GenerationCancelled()
            bar.status(f"image {index + 1}/{request.count} on {self.backend.provider}")
            image = self.backend.text_to_image(request, seed, unused)
            saver.save(image, seed, index, request, self.backend.model, {"made_on": made_on})
