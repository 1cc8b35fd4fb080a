"""`EngineService`: one `Engine`, a fair FIFO job queue and one worker thread.

Every front end (the in-process client, `sdtui serve`) talks to the engine
through this class. Jobs wait in one queue per owner and the worker takes them
round-robin between owners, oldest first within each, so one client's long
batch cannot starve the others. Finished jobs keep their events for
`keep_seconds` so a client that lost its connection can read them again.

`JobQueue` is that queue without the engine: `EngineService` runs its jobs on
an engine in this process, `sdtui serve --ray` on the replicas of a Ray Serve
deployment (sdtui/server/ray_backend.py).
"""

from __future__ import annotations

import io
import logging
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sdtui.errors import GenerationCancelled, OutOfMemoryError, SdtuiError, ValidationError
from sdtui.params import GenerationRequest
from sdtui.results import CancelToken, GeneratedImage, GenerationResult, StepProgress
from sdtui.service.events import (
    Done,
    Event,
    Failed,
    Image,
    Loading,
    Queued,
    Step,
)

if TYPE_CHECKING:
    from sdtui.engine.engine import LoadedModel

log = logging.getLogger(__name__)

PREVIEW_MAX_SIDE = 128  # step previews are small frames, not pictures
JOB_STATES = ("queued", "running", "done", "failed")


class QueueFullError(SdtuiError):
    """The queue (or this client's share of it) is full; try again after `retry_after` s."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class JobNotFoundError(SdtuiError):
    """No job with that id belongs to this client (it never existed, or it expired)."""

    exit_code = 2


class ServiceClosedError(SdtuiError):
    """The service is shutting down and takes no new jobs."""


class EngineLike(Protocol):
    """What the service needs of an engine (`sdtui.engine.Engine` has it)."""

    def generate(
        self,
        request: GenerationRequest,
        on_progress: Callable[[StepProgress], None] | None = ...,
        cancel: CancelToken | None = ...,
        on_image: Callable[[GeneratedImage], None] | None = ...,
        on_status: Callable[[str], None] | None = ...,
    ) -> GenerationResult: ...


@dataclass(frozen=True)
class JobInfo:
    """A job as its owner sees it."""

    id: str
    state: str  # one of JOB_STATES
    position: int  # 1 = next; 0 = running or finished
    request: GenerationRequest
    images: int
    created: float  # time.time()
    message: str = ""  # the failure, when state is "failed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "position": self.position,
            "request": self.request.to_dict(),
            "images": self.images,
            "created": self.created,
            "message": self.message,
        }


@dataclass
class _Job:
    id: str
    owner: str
    request: GenerationRequest
    created: float = field(default_factory=time.time)
    state: str = "queued"
    position: int = 0
    events: list[Event] = field(default_factory=list)
    cancel: CancelToken = field(default_factory=CancelToken)
    images: int = 0
    message: str = ""
    finished_at: float | None = None  # monotonic

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")

    def info(self) -> JobInfo:
        return JobInfo(
            self.id, self.state, self.position, self.request, self.images, self.created,
            self.message,
        )


def encode_png(image: Any, pnginfo: Any = None) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=pnginfo)
    return buffer.getvalue()


def _preview_png(image: Any) -> bytes:
    small = image.copy()
    small.thumbnail((PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE))
    return encode_png(small)


def _failure(exc: BaseException, closing: bool) -> Failed:
    """The `Failed` event (job id filled in later) that explains `exc` in one line."""
    if isinstance(exc, GenerationCancelled):
        if closing:
            return Failed("", "the server is shutting down; finished images were kept", "shutdown")
        return Failed("", "cancelled", "cancelled")
    if isinstance(exc, OutOfMemoryError):
        return Failed("", str(exc), "out_of_memory")
    if isinstance(exc, ValidationError):
        return Failed("", str(exc), "invalid")
    if isinstance(exc, SdtuiError):
        return Failed("", str(exc), "error")
    text = (str(exc).strip().splitlines() or [""])[0]
    return Failed("", f"unexpected error: {type(exc).__name__}: {text}", "error")


class JobQueue:
    """Takes jobs from many owners and runs them, `workers` at a time, with `_run`."""

    def __init__(
        self,
        *,
        models: Sequence[str] = (),
        max_queue: int = 64,
        max_per_owner: int = 16,
        keep_seconds: float = 600.0,
        keep_jobs: int = 1000,
        workers: int = 1,
    ) -> None:
        # When set, the only models a request may name (what the server was started with).
        self.models = tuple(models)
        self.max_queue = max_queue
        self.max_per_owner = max_per_owner
        self.keep_seconds = keep_seconds
        self.keep_jobs = keep_jobs
        self._cond = threading.Condition()
        self._jobs: dict[str, _Job] = {}
        self._pending: OrderedDict[str, deque[_Job]] = OrderedDict()  # owner -> jobs, in turn
        self._running: list[_Job] = []
        self._closing = False
        self._durations: deque[float] = deque(maxlen=20)
        self._threads = [
            threading.Thread(target=self._work, name=f"sdtui-engine-{n}", daemon=True)
            for n in range(max(1, workers))
        ]
        for thread in self._threads:
            thread.start()

    # -- submitting and watching ------------------------------------------------

    def submit(self, request: GenerationRequest, owner: str = "local") -> str:
        """Queue `request` for `owner`; returns the new job's (unguessable) id."""
        if self.models and request.model not in self.models:
            raise ValidationError(
                "model", f"this server serves only {', '.join(self.models)}"
            )
        with self._cond:
            if self._closing:
                raise ServiceClosedError("the engine is shutting down and takes no new jobs")
            self._prune()
            waiting = sum(len(jobs) for jobs in self._pending.values())
            mine = len(self._pending.get(owner, ()))
            if waiting >= self.max_queue:
                raise QueueFullError(
                    f"the queue is full ({waiting} jobs waiting)", self._retry_after(waiting)
                )
            if mine >= self.max_per_owner:
                raise QueueFullError(
                    f"you already have {mine} jobs waiting; the limit is {self.max_per_owner}",
                    self._retry_after(waiting),
                )
            job = _Job(secrets.token_urlsafe(18), owner, request)
            self._jobs[job.id] = job
            self._pending.setdefault(owner, deque()).append(job)
            self._update_positions()
            self._cond.notify_all()
            return job.id

    def cancel(self, job_id: str, owner: str = "local") -> bool:
        """Cancel a job of `owner`; False when it had already finished."""
        with self._cond:
            job = self._get(job_id, owner)
            if job.finished:
                return False
            job.cancel.cancel()
            if job.state == "queued":
                self._pending[owner].remove(job)
                if not self._pending[owner]:
                    del self._pending[owner]
                self._finish(job, Failed(job.id, "cancelled", "cancelled"))
                self._update_positions()
            return True

    def job(self, job_id: str, owner: str = "local") -> JobInfo:
        with self._cond:
            return self._get(job_id, owner).info()

    def jobs(self, owner: str = "local") -> list[JobInfo]:
        """`owner`'s jobs, oldest first (finished ones until they expire)."""
        with self._cond:
            self._prune()
            return [job.info() for job in self._jobs.values() if job.owner == owner]

    def wait_events(
        self, job_id: str, owner: str = "local", after: int = 0, timeout: float | None = None
    ) -> tuple[list[Event], bool]:
        """Events of a job from index `after` on (waiting up to `timeout` for one), and
        whether the job has finished."""
        with self._cond:
            job = self._get(job_id, owner)
            self._cond.wait_for(lambda: len(job.events) > after or job.finished, timeout)
            return list(job.events[after:]), job.finished

    def events(self, job_id: str, owner: str = "local", after: int = 0) -> Iterator[Event]:
        """Every event of a job from `after` on, blocking until the last one."""
        while True:
            events, finished = self.wait_events(job_id, owner, after, timeout=1.0)
            yield from events
            after += len(events)
            if finished and not events:
                return

    def status(self) -> dict[str, Any]:
        """Counts for /health (nothing about whose jobs they are)."""
        with self._cond:
            return {
                "queued": sum(len(jobs) for jobs in self._pending.values()),
                "running": bool(self._running),
                "closing": self._closing,
            }

    def running_job(self, owner: str) -> JobInfo | None:
        with self._cond:
            job = next((j for j in self._running if j.owner == owner), None)
            return job.info() if job is not None else None

    def loaded_model(self) -> LoadedModel | None:
        """What the engine has loaded (None before the first load)."""
        return None

    def last_step(self, job_id: str, owner: str) -> Step | None:
        """The newest step event of a job (for progress polls)."""
        with self._cond:
            job = self._get(job_id, owner)
            return next((e for e in reversed(job.events) if isinstance(e, Step)), None)

    def close(self, timeout: float | None = None) -> None:
        """Take no new jobs, fail the waiting ones, stop the running one after its step.

        Images finished before the stop are already in their job's events.
        """
        with self._cond:
            self._closing = True
            for jobs in self._pending.values():
                for job in jobs:
                    self._finish(
                        job, Failed(job.id, "the server is shutting down", "shutdown")
                    )
            self._pending.clear()
            for job in self._running:
                job.cancel.cancel()
            self._cond.notify_all()
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    # -- inside ------------------------------------------------------------------

    def _get(self, job_id: str, owner: str) -> _Job:
        job = self._jobs.get(job_id) if isinstance(job_id, str) else None
        # Another owner's job answers exactly like a job that does not exist.
        if job is None or job.owner != owner:
            raise JobNotFoundError(f"no job {str(job_id)[:40]!r}")
        return job

    def _retry_after(self, waiting: int) -> int:
        average = sum(self._durations) / len(self._durations) if self._durations else 5.0
        return max(1, round(average * max(1, waiting) / 2))

    def _order(self) -> list[_Job]:
        """Waiting jobs in the order the worker will take them (round-robin by owner)."""
        queues = [list(jobs) for jobs in self._pending.values()]
        order: list[_Job] = []
        for turn in range(max((len(q) for q in queues), default=0)):
            order += [q[turn] for q in queues if turn < len(q)]
        return order

    def _update_positions(self) -> None:
        for place, job in enumerate(self._order(), start=1):
            if job.position != place:
                job.position = place
                job.events.append(Queued(job.id, place))

    def _emit(self, job: _Job, event: Event) -> None:
        with self._cond:
            job.events.append(event)
            self._cond.notify_all()

    def _finish(self, job: _Job, event: Failed | Done) -> None:
        if isinstance(event, Failed):
            job.state, job.message = "failed", event.message
            event = Failed(job.id, event.message, event.kind)
        else:
            job.state = "done"
        job.position = 0
        job.events.append(event)
        job.finished_at = time.monotonic()
        self._cond.notify_all()

    def _prune(self) -> None:
        """Forget finished jobs older than keep_seconds, and the oldest beyond keep_jobs."""
        now = time.monotonic()
        finished = [j for j in self._jobs.values() if j.finished_at is not None]
        for index, job in enumerate(finished):
            too_many = len(finished) - index > self.keep_jobs
            if too_many or now - (job.finished_at or now) > self.keep_seconds:
                del self._jobs[job.id]

    def _next(self) -> _Job | None:
        with self._cond:
            self._cond.wait_for(lambda: self._closing or bool(self._pending))
            if self._closing:
                return None
            owner, jobs = next(iter(self._pending.items()))
            job = jobs.popleft()
            # Round-robin: this owner goes to the back of the line.
            del self._pending[owner]
            if jobs:
                self._pending[owner] = jobs
            job.state, job.position = "running", 0
            job.events.append(Queued(job.id, 0))
            self._running.append(job)
            self._update_positions()
            self._cond.notify_all()
            return job

    def _work(self) -> None:
        while True:
            job = self._next()
            if job is None:
                return
            started = time.monotonic()
            try:
                self._run(job)
            finally:
                with self._cond:
                    self._running.remove(job)
                    self._durations.append(time.monotonic() - started)
                    self._cond.notify_all()

    def _run(self, job: _Job) -> None:
        """Run one job to its end, appending its events (with `_emit`, `_finish`)."""
        raise NotImplementedError


class EngineService(JobQueue):
    """Owns one engine; takes jobs from many owners and runs them one at a time.

    `worker`, when given, names this engine in every image's info (and so in
    its PNG's `sdtui` chunk): which replica made it, when there are several.
    """

    def __init__(
        self,
        engine: EngineLike,
        *,
        models: Sequence[str] = (),
        max_queue: int = 64,
        max_per_owner: int = 16,
        keep_seconds: float = 600.0,
        keep_jobs: int = 1000,
        worker: str = "",
    ) -> None:
        self.engine = engine
        self.worker = worker
        super().__init__(
            models=models, max_queue=max_queue, max_per_owner=max_per_owner,
            keep_seconds=keep_seconds, keep_jobs=keep_jobs,
        )

    def loaded_model(self) -> LoadedModel | None:
        return getattr(self.engine, "loaded", None)

    def _run(self, job: _Job) -> None:
        from sdtui.gallery.metadata import png_info

        def on_status(text: str) -> None:
            self._emit(job, Loading(job.id, text))

        def on_progress(progress: StepProgress) -> None:
            preview = _preview_png(progress.preview) if progress.preview is not None else None
            self._emit(
                job,
                Step(
                    job.id, progress.step, progress.total, progress.image_index,
                    progress.image_count, round(progress.elapsed, 3), preview,
                ),
            )

        last = time.perf_counter()

        def on_image(generated: GeneratedImage) -> None:
            nonlocal last
            seconds = time.perf_counter() - last
            loaded = getattr(self.engine, "loaded", None)
            result = GenerationResult(
                request=generated.request,
                images=[generated],
                model_id=getattr(loaded, "model_id", generated.request.model),
                device=str(getattr(self.engine, "device", "")),
                dtype=str(getattr(self.engine, "dtype", "")),
                # The load is part of the first image's time only.
                load_seconds=getattr(loaded, "load_seconds", 0.0) if generated.index == 0 else 0.0,
                generate_seconds=seconds,
                info={"family": getattr(loaded, "family", "")}
                | ({"worker": self.worker} if self.worker else {}),
            )
            png = encode_png(generated.image, png_info(generated, result))
            self._emit(
                job,
                Image(
                    job.id, png, generated.seed, generated.index, generated.request,
                    result.model_id, result.device, result.dtype, result.load_seconds,
                    round(seconds, 3), result.info,
                ),
            )
            with self._cond:
                job.images += 1
            last = time.perf_counter()

        try:
            self.engine.generate(
                job.request,
                on_progress=on_progress,
                cancel=job.cancel,
                on_image=on_image,
                on_status=on_status,
            )
        except BaseException as exc:  # noqa: B036 - the worker must outlive every job
            if not isinstance(exc, (SdtuiError, GenerationCancelled)):
                log.exception("job %s failed", job.id)
            with self._cond:
                self._finish(job, _failure(exc, self._closing))
            if not isinstance(exc, Exception):
                raise
            return
        with self._cond:
            self._finish(job, Done(job.id, job.images))
