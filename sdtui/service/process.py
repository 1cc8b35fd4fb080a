"""`ProcessEngine`: the engine in its own process, with the `Engine` call surface.

The terminal app uses it so typing never shares a GIL with generation and a
crash or out-of-memory kill of the engine fails only the running job. `load`
and `generate` block the calling thread (the app's worker) exactly as
`Engine`'s do and raise the same `SdtuiError`s; callbacks run on that thread.
The child (`sdtui.service.worker`) is started at once, in the background, so
it imports torch while the app paints; one that died is replaced by the next
call. No torch here: images cross as lossless PNG bytes.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn

from sdtui.errors import GenerationCancelled, SdtuiError
from sdtui.params import GenerationRequest
from sdtui.results import CancelToken, GeneratedImage, GenerationResult, StepProgress
from sdtui.service import frames
from sdtui.service.events import Image, Loading, Step, event_from_dict

if TYPE_CHECKING:
    from sdtui.addons import AddonLibrary
    from sdtui.engine.engine import LoadedModel

log = logging.getLogger("sdtui.engine.process")

CLOSE_WAIT = 2.0  # seconds a closing child gets before it is killed
POLL = 0.05  # how often a waiting call looks at its cancel token
_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
# The child must import this very sdtui, not one in its working folder (which
# `python -m` would put first on its path); the folder stays, for relative model paths.
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]
_BOOT = (
    "import sys; sys.path[0:1] = [{root!r}]; "
    "from sdtui.service.worker import main; sys.exit(main())"
)

StatusCallback = Callable[[str], None]
ProgressCallback = Callable[[StepProgress], None]
ImageCallback = Callable[[GeneratedImage], None]


class EngineProcessError(SdtuiError):
    """The engine process stopped (crashed, killed, out of memory) during a call."""


def _decode_png(data: bytes) -> Any:
    from PIL import Image as PILImage

    image = PILImage.open(io.BytesIO(data))
    image.load()
    return image


def _exit_text(code: int | None) -> str:
    if code is None:
        return "the engine process stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        if -code == signal.SIGKILL:
            return f"the engine process was killed ({name}; out of memory?)"
        return f"the engine process was killed ({name})"
    if code == 0:
        return "the engine process stopped (the terminal hung up?)"
    return f"the engine process exited unexpectedly (status {code})"


class _Spawner:
    """One long-lived thread that starts every child.

    PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, so
    children must not be started from short-lived worker threads.
    """

    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[Callable[[], Any], Future[Any]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="sdtui-engine-spawn", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        future: Future[Any] = Future()
        self._jobs.put((fn, future))
        return future

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, future = job
            try:
                future.set_result(fn())
            except BaseException as exc:  # noqa: B036 - handed to the waiting caller
                future.set_exception(exc)

    def stop(self) -> None:
        self._jobs.put(None)


class _Child:
    """One running engine process: its pipes, and threads reading its output."""

    DIED = object()  # put on `frames` when the process's stdout ends

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
        self.frames: queue.Queue[Any] = queue.Queue()
        self._write_lock = threading.Lock()
        assert self.process.stdout is not None and self.process.stderr is not None
        for target, stream, name in (
            (self._read_frames, self.process.stdout, "sdtui-engine-frames"),
            (self._read_log, self.process.stderr, "sdtui-engine-log"),
        ):
            threading.Thread(target=target, args=(stream,), name=name, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def send(self, frame: dict[str, Any]) -> bool:
        """Write a frame; False when the child is gone."""
        try:
            with self._write_lock:
                assert self.process.stdin is not None
                frames.write(self.process.stdin, frame)
            return True
        except (BrokenPipeError, OSError, ValueError):
            return False

    def _read_frames(self, stream: IO[bytes]) -> None:
        try:
            for line in stream:
                try:
                    self.frames.put(frames.decode(line))
                except ValueError:
                    log.error("the engine process sent a malformed frame")
        finally:
            self.frames.put(self.DIED)

    def _read_log(self, stream: IO[bytes]) -> None:
        # The child's stderr must never reach the terminal (Textual draws there).
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip()
            if not line:
                continue
            level, _, rest = line.partition(" ")
            if level in _LEVELS:
                log.log(getattr(logging, level), "engine: %s", rest)
            else:
                log.warning("engine: %s", line)

    def exit_text(self) -> str:
        try:
            code = self.process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            code = None
        return _exit_text(code)

    def close(self, timeout: float = CLOSE_WAIT) -> None:
        """Close its stdin (it exits at once on that), wait `timeout`, then kill."""
        with contextlib.suppress(OSError, ValueError), self._write_lock:
            if self.process.stdin is not None:
                self.process.stdin.close()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout)

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.process.kill()


class ProcessEngine:
    """Loads models and makes images in a child process; one call at a time."""

    def __init__(
        self,
        device: str = "auto",
        dtype: str = "auto",
        allow_pickle: bool = False,
        performance: Any = None,
        preview: str | None = None,
        addons: AddonLibrary | None = None,
        *,
        start: bool = True,
        python: str | None = None,
    ) -> None:
        folders = addons.folders if addons is not None else None
        self.options: dict[str, Any] = {
            # The LoRA and embedding folders: the child builds its own library of them.
            "loras": str(folders.loras) if folders and folders.loras else None,
            "embeddings": str(folders.embeddings) if folders and folders.embeddings else None,
            "device": device,
            "dtype": dtype,
            "allow_pickle": allow_pickle,
            "performance": (
                asdict(performance)
                if is_dataclass(performance) and not isinstance(performance, type)
                else None
            ),
            "preview": preview,
        }
        self.python = python or sys.executable
        self.starts = 0  # children started, for tests and the log
        self._call_lock = threading.Lock()  # one engine call at a time, as `Engine`
        self._state_lock = threading.Lock()
        self._spawner = _Spawner()
        self._child: _Child | None = None
        self._starting: Future[_Child] | None = None
        self._next_call = 0
        self._closed = False
        self._loaded: LoadedModel | None = None
        atexit.register(self.close)
        if start:
            self.start()

    # -- the child's life --------------------------------------------------------

    @property
    def loaded(self) -> LoadedModel | None:
        return self._loaded

    @property
    def pid(self) -> int | None:
        """The running child's process id (None before it started or after it died)."""
        child = self._child
        return child.pid if child is not None and child.alive else None

    def start(self) -> None:
        """Start a child in the background unless one runs or is starting; returns at once."""
        with self._state_lock:
            if self._closed:
                raise EngineProcessError("the engine process was closed")
            if self._starting is None and (self._child is None or not self._child.alive):
                self._starting = self._spawner.submit(self._spawn)

    def _spawn(self) -> _Child:
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        command = [self.python, "-c", _BOOT.format(root=str(_PACKAGE_ROOT)), "--parent"]
        command.append(str(os.getpid()))
        child = _Child(command, env)
        child.send({"op": "init", "engine": self.options})
        self.starts += 1
        log.info("engine process %s started", child.pid)
        return child

    def _ready_child(self) -> _Child:
        """The running child, started (and waited for) when there is none."""
        self.start()
        with self._state_lock:
            starting = self._starting
        if starting is not None:
            try:
                child = starting.result()
            except OSError as exc:
                raise EngineProcessError(
                    f"could not start the engine process: {exc.strerror or exc}"
                ) from exc
            finally:
                with self._state_lock:
                    if self._starting is starting:
                        self._starting = None
            with self._state_lock:
                closed = self._closed
                if not closed:
                    old, self._child = self._child, child
            if closed:  # closed while it started: it must not outlive the engine
                child.close(0)
                raise EngineProcessError("the engine process was closed")
            if old is not None:
                old.kill()
            self._loaded = None  # a new process has nothing loaded
        assert self._child is not None
        return self._child

    def close(self, timeout: float = CLOSE_WAIT) -> None:
        """Stop the child (stdin closed, then killed after `timeout`); idempotent."""
        with self._state_lock:
            if self._closed:
                return
            self._closed = True
            starting, self._starting = self._starting, None
            child, self._child = self._child, None
        if starting is not None:
            with contextlib.suppress(Exception):
                child = starting.result(timeout=timeout) or child
        if child is not None:
            child.close(timeout)
            log.info("engine process %s stopped", child.pid)
        self._spawner.stop()
        atexit.unregister(self.close)

    # -- calls -------------------------------------------------------------------

    def _call(
        self,
        op: str,
        payload: dict[str, Any],
        on_frame: Callable[[dict[str, Any]], object],
        cancel: CancelToken | None = None,
    ) -> dict[str, Any]:
        """Send one call and feed its frames to `on_frame`; returns its final frame."""
        with self._call_lock:
            child = self._ready_child()
            self._next_call += 1
            call = self._next_call
            cancel_sent = False
            if not child.send({"op": op, "call": call, **payload}):
                return self._died(child)
            while True:
                if cancel is not None and cancel.cancelled and not cancel_sent:
                    child.send({"op": "cancel", "call": call})
                    cancel_sent = True
                try:
                    frame = child.frames.get(timeout=POLL)
                except queue.Empty:
                    continue
                if frame is _Child.DIED:
                    return self._died(child)
                if frame.get("call") != call:
                    continue  # a late frame of a call abandoned earlier
                if frame.get("type") == "error":
                    raise frames.error_from_frame(frame)
                if frame.get("type") in frames.FINAL:
                    return frame
                try:
                    on_frame(frame)
                except BaseException:
                    # As in-process: a failing callback ends the call. Stop the child's work.
                    child.send({"op": "cancel", "call": call})
                    raise

    def _died(self, child: _Child) -> NoReturn:
        text = child.exit_text()
        log.error("%s (pid %s)", text, child.pid)
        with self._state_lock:
            if self._child is child:
                self._child = None
        self._loaded = None
        raise EngineProcessError(text, "the next job starts a new engine; the log has details")

    @staticmethod
    def _status_frame(on_status: StatusCallback | None) -> Callable[[dict[str, Any]], bool]:
        def handle(frame: dict[str, Any]) -> bool:
            if frame.get("type") != "loading":
                return False
            event = event_from_dict(frame)
            if on_status is not None and isinstance(event, Loading):
                on_status(event.message)
            return True

        return handle

    def load(self, model: str, on_status: StatusCallback | None = None) -> LoadedModel:
        """Load `model` in the child unless it is already loaded there."""
        from sdtui.engine.engine import LoadedModel
        from sdtui.families import ModelDefaults

        status = self._status_frame(on_status)
        final = self._call("load", {"model": model}, status)
        names = LoadedModel.__dataclass_fields__
        fields: dict[str, Any] = {name: final.get(name) for name in names}
        fields["native_size"] = tuple(fields.get("native_size") or (512, 512))
        fields["notes"] = tuple(fields.get("notes") or ())
        if isinstance(fields.get("defaults"), dict):
            fields["defaults"] = ModelDefaults.from_dict(fields["defaults"])
        self._loaded = LoadedModel(**fields)
        return self._loaded

    def generate(
        self,
        request: GenerationRequest,
        on_progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        on_image: ImageCallback | None = None,
        on_status: StatusCallback | None = None,
    ) -> GenerationResult:
        """Make `request.count` images in the child; raises GenerationCancelled on cancel."""
        if cancel is not None and cancel.cancelled:
            raise GenerationCancelled()
        images: list[GeneratedImage] = []
        status = self._status_frame(on_status)

        def on_frame(frame: dict[str, Any]) -> None:
            if status(frame):
                return
            event = event_from_dict(frame)
            if isinstance(event, Step) and on_progress is not None:
                preview = _decode_png(event.preview_png) if event.preview_png else None
                on_progress(
                    StepProgress(
                        event.step, event.total, event.elapsed, event.image_index,
                        event.image_count, preview,
                    )
                )
            elif isinstance(event, Image):
                generated = GeneratedImage(
                    _decode_png(event.png), event.seed, event.index, request
                )
                images.append(generated)
                if on_image is not None:
                    on_image(generated)

        final = self._call("generate", {"request": request.to_dict()}, on_frame, cancel)
        return GenerationResult(
            request=request,
            images=images,
            model_id=str(final.get("model_id", "")),
            device=str(final.get("device", "")),
            dtype=str(final.get("dtype", "")),
            load_seconds=float(final.get("load_seconds", 0.0)),
            generate_seconds=float(final.get("generate_seconds", 0.0)),
            info=dict(final.get("info") or {}),
        )
