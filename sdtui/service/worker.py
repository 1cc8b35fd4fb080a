"""The engine process: `python -m sdtui.service.worker --parent PID`.

The terminal app starts it so generation never shares a GIL with the UI and a
crash or out-of-memory kill here cannot take the UI down. It reads frames
(`sdtui.service.frames`) on stdin, runs one engine call at a time on its main
thread and answers on its own copy of stdout; file descriptor 1 itself points
at stderr, so a library that prints cannot corrupt a frame. Everything logged
goes to stderr, which the parent writes to its log.

It ends as soon as stdin closes (the parent is gone or done), on Linux also
when the parent dies (PR_SET_PDEATHSIG), and when the terminal hangs up, so it
never outlives the app nor holds the device after the user's session ended.
It runs at a lower priority so the UI wins the CPU on a busy machine.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import queue
import select
import signal
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

from sdtui.errors import SdtuiError
from sdtui.params import GenerationRequest
from sdtui.results import CancelToken, GeneratedImage, StepProgress
from sdtui.service import frames
from sdtui.service.events import Image, Loading, Step, event_to_dict
from sdtui.service.service import encode_png

log = logging.getLogger("sdtui.engine.worker")

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
NICE = 5
# Most step reports a second sent to the app. A small model makes hundreds of
# steps a second here (no GIL shared with the UI any more to slow it down), and
# each report wakes the app's threads and redraws its progress bar. The last step
# of each image and every step carrying a preview (the engine throttles those)
# are always sent; cancelling is still checked at every step.
PROGRESS_RATE = 30.0


def die_with_parent(parent: int) -> None:
    """Have the kernel kill this process when `parent` dies (Linux only)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: closing stdin still ends us
            log.warning("PR_SET_PDEATHSIG is not available")
    if parent and os.getppid() != parent:  # the parent died before we asked
        os._exit(0)


def exit_on_hangup() -> None:
    """End when the app's terminal hangs up (the SSH link dropped, `tmux kill-session`),
    even if the app itself is stuck: the device memory must be free for the next login."""
    try:
        tty = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError:
        return  # no terminal (tests, scripts): stdin closing is enough

    def watch() -> None:
        poller = select.poll()
        poller.register(tty, 0)  # only hang-up and error are reported; nothing is read
        while True:
            for _fd, flags in poller.poll():
                if flags & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                    log.warning("the terminal hung up; the engine process ends")
                    os._exit(0)

    threading.Thread(target=watch, name="sdtui-engine-hangup", daemon=True).start()


class Worker:
    """Runs the calls the parent sends; a cancel frame stops the running one within a step."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.calls: queue.Queue[dict[str, Any]] = queue.Queue()
        self.engine: Any = None
        self.engine_error: BaseException | None = None
        self._lock = threading.Lock()
        self._cancelled: set[int] = set()
        self._running: tuple[int, CancelToken] | None = None

    # -- the stdin side (a thread) ---------------------------------------------

    def read(self, stream: IO[bytes]) -> None:
        for line in stream:
            try:
                frame = frames.decode(line)
            except ValueError:
                log.error("ignored a malformed frame from the app")
                continue
            if frame.get("op") == "cancel":
                self.cancel(int(frame.get("call", 0)))
            else:
                self.calls.put(frame)
        # The app closed the pipe or died: nothing here is worth finishing (the app
        # saves the images), and the device memory must be free at once.
        os._exit(0)

    def cancel(self, call: int) -> None:
        with self._lock:
            self._cancelled.add(call)
            if self._running is not None and self._running[0] == call:
                self._running[1].cancel()

    # -- the main thread -------------------------------------------------------

    def send(self, frame: dict[str, Any]) -> None:
        frames.write(self.out, frame)

    def run(self) -> None:
        while True:
            frame = self.calls.get()
            op = frame.get("op")
            call = int(frame.get("call", 0))
            if op == "init":
                self._init(frame.get("engine") or {})
                continue
            token = CancelToken()
            with self._lock:
                if call in self._cancelled:
                    token.cancel()
                self._running = (call, token)
            try:
                if self.engine is None:
                    raise self.engine_error or RuntimeError("the engine was not set up")
                if op == "load":
                    self._load(call, str(frame["model"]))
                elif op == "generate":
                    self._generate(call, GenerationRequest.from_dict(frame["request"]), token)
                else:
                    raise ValueError(f"unknown operation {op!r}")
            except Exception as exc:
                if not isinstance(exc, SdtuiError):
                    log.exception("engine call %s (%s) failed", call, op)
                self.send(frames.error_frame(call, exc))
            finally:
                with self._lock:
                    self._running = None
                    self._cancelled.discard(call)

    def _init(self, options: dict[str, Any]) -> None:
        from sdtui.addons import AddonFolders, AddonLibrary
        from sdtui.engine import Engine
        from sdtui.engine.performance import PerformanceOptions

        try:
            performance = options.get("performance")
            loras, embeddings = options.get("loras"), options.get("embeddings")
            folders = AddonFolders(
                Path(loras) if loras else None, Path(embeddings) if embeddings else None
            )
            self.engine = Engine(
                device=options.get("device", "auto"),
                dtype=options.get("dtype", "auto"),
                allow_pickle=bool(options.get("allow_pickle", False)),
                performance=PerformanceOptions(**performance) if performance else None,
                preview=options.get("preview"),
                addons=AddonLibrary(folders),
            )
        except Exception as exc:  # reported to every call, so the app shows why
            traceback = not isinstance(exc, SdtuiError)  # ours explain themselves
            log.warning("the engine could not be set up: %s", exc, exc_info=traceback)
            self.engine_error = exc

    def _status(self, call: int) -> Any:
        return lambda text: self.send(
            {"call": call, **event_to_dict(Loading(str(call), str(text)))}
        )

    def _load(self, call: int, model: str) -> None:
        loaded = self.engine.load(model, on_status=self._status(call))
        fields = asdict(loaded)
        if loaded.defaults is not None:  # in its JSON form (no sets, no tuples)
            fields["defaults"] = loaded.defaults.to_dict()
        self.send({"call": call, "type": "loaded", **fields})

    def _generate(self, call: int, request: GenerationRequest, cancel: CancelToken) -> None:
        engine = self.engine
        last_sent = float("-inf")

        def on_progress(progress: StepProgress) -> None:
            nonlocal last_sent
            now = time.monotonic()
            due = now - last_sent >= 1.0 / PROGRESS_RATE
            if not (due or progress.preview is not None or progress.step >= progress.total):
                return
            last_sent = now
            preview = encode_png(progress.preview) if progress.preview is not None else None
            step = Step(
                str(call), progress.step, progress.total, progress.image_index,
                progress.image_count, progress.elapsed, preview,
            )
            self.send({"call": call, **event_to_dict(step)})

        def on_image(generated: GeneratedImage) -> None:
            loaded = engine.loaded
            image = Image(
                str(call), encode_png(generated.image), generated.seed, generated.index,
                generated.request, getattr(loaded, "model_id", ""), str(engine.device),
                str(engine.dtype),
            )
            self.send({"call": call, **event_to_dict(image)})

        result = engine.generate(
            request, on_progress=on_progress, cancel=cancel, on_image=on_image,
            on_status=self._status(call),
        )
        self.send(
            {
                "call": call,
                "type": "result",
                "model_id": result.model_id,
                "device": result.device,
                "dtype": result.dtype,
                "load_seconds": result.load_seconds,
                "generate_seconds": result.generate_seconds,
                "info": result.info,
            }
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="sdtui's engine process (started by the app)")
    parser.add_argument("--parent", type=int, default=0, help="exit when this process dies")
    args = parser.parse_args(argv)

    # Frames get a private copy of stdout; fd 1 (print, C libraries) goes to stderr.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    die_with_parent(args.parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the app decides when a job stops
    exit_on_hangup()
    try:
        os.nice(NICE)
    except OSError:
        pass
    worker = Worker(out)
    threading.Thread(
        target=worker.read, args=(sys.stdin.buffer,), name="sdtui-engine-stdin", daemon=True
    ).start()
    worker.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
