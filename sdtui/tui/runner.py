"""Runs one job on the worker thread and reports through messages.

The engine (torch, diffusers) is imported here, inside the thread, on first use:
the app paints before any of it is loaded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from textual.message import Message

from sdtui.config import Settings
from sdtui.errors import GenerationCancelled, SaveError, SdtuiError
from sdtui.params import GenerationRequest
from sdtui.results import CancelToken, GeneratedImage, GenerationResult, StepProgress
from sdtui.tui.jobs import Job
from sdtui.tui.messages import (
    ImageReady,
    JobCancelled,
    JobDone,
    JobFailed,
    JobFinished,
    JobProgress,
    JobStatus,
    ModelLoaded,
    SaveFailed,
)

log = logging.getLogger(__name__)

Post = Callable[[Message], Any]
Unsaved = tuple[GeneratedImage, GenerationResult]


class EngineClient(Protocol):
    """The two engine calls the runner makes: the one seam between the app and
    the engine, so one running in another process can stand in for it."""

    def load(self, model: str, on_status: Callable[[str], Any] | None = None) -> Any: ...

    def generate(
        self,
        request: GenerationRequest,
        on_progress: Callable[[StepProgress], Any] | None = None,
        cancel: CancelToken | None = None,
        on_image: Callable[[GeneratedImage], Any] | None = None,
    ) -> GenerationResult: ...


def default_engine_factory(
    settings: Settings, preview: str | None = None, options: Any | None = None
) -> Any:
    """The engine with the speed settings `options`, or else those of the config's
    [performance] table and SDTUI_* variables; `preview` None keeps their live
    preview choice (latent by default). It runs in its own process (started now,
    in the background) unless the settings ask for `in_process`."""
    from sdtui.addons import AddonFolders, AddonLibrary
    from sdtui.engine import Engine, performance
    from sdtui.service.process import ProcessEngine

    if options is None:
        options = performance.performance_from_settings(settings)
    return (Engine if settings.in_process else ProcessEngine)(
        device=settings.device,
        dtype=settings.dtype,
        allow_pickle=settings.allow_pickle,
        performance=options,
        preview=preview,
        addons=AddonLibrary(AddonFolders.from_settings(settings)),
    )


def default_gallery_factory(settings: Settings) -> Any:
    from sdtui.gallery import Gallery

    return Gallery(settings.gallery)


def _size(value: Any) -> tuple[int, int] | None:
    try:
        width, height = value
        return int(width), int(height)
    except (TypeError, ValueError):
        return None


class Lazy:
    """Builds a shared object once, on whichever thread first asks for it."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._value: Any = None
        self._lock = threading.Lock()

    def get(self) -> Any:
        with self._lock:
            if self._value is None:
                self._value = self._factory()
            return self._value

    @property
    def ready(self) -> Any:
        return self._value


class JobRunner:
    """Holds the engine and the gallery; `run` executes one job on the calling thread."""

    def __init__(self, engine: Lazy, gallery: Lazy) -> None:
        self.engine = engine
        self.gallery = gallery
        self.loaded_model: str | None = None  # the model name as the user wrote it
        self.loaded_defaults: Any = None  # that model's ModelDefaults, to fit requests to it
        self._unsaved: list[Unsaved] = []
        self._unsaved_lock = threading.Lock()
        self.saving = threading.Lock()  # held while PNGs are written
        # Jobs whose images are written (or kept to retry): the session never runs them again.
        self.finished_jobs: set[int] = set()

    def client(self) -> EngineClient:
        """The engine, built on first use."""
        return self.engine.get()

    def run(self, job: Job, post: Post) -> None:
        loading = False
        try:
            # A value still equal to the previous model's default follows the new model.
            previous = self.loaded_defaults
            if job.is_load or job.model != self.loaded_model:
                loading = True
                self._load(job, post)
                loading = False
            if job.request is not None:
                self._generate(job, post, previous)
        except GenerationCancelled:
            post(JobCancelled(job.id))
        except SdtuiError as exc:
            log.warning("job %s failed: %s", job.id, exc, exc_info=exc.__cause__ is not None)
            post(JobFailed(job.id, exc.message, exc.hint, job.model if loading else None))
        except Exception as exc:  # anything else is shown, and the app goes on
            log.exception("job %s failed", job.id)
            error = f"{type(exc).__name__}: {exc}"
            post(JobFailed(job.id, error, "", job.model if loading else None))
        finally:
            post(JobFinished(job.id))

    def _load(self, job: Job, post: Post) -> None:
        post(JobStatus(job.id, f"loading {job.model}…"))
        engine = self.client()
        started = time.monotonic()
        self.loaded_model = None
        loaded = engine.load(job.model, on_status=lambda text: post(JobStatus(job.id, str(text))))
        self.loaded_model = job.model
        self.loaded_defaults = getattr(loaded, "defaults", None)
        post(
            ModelLoaded(
                job.id,
                job.model,
                str(getattr(loaded, "device", "?")),
                str(getattr(loaded, "dtype", "?")),
                float(getattr(loaded, "load_seconds", time.monotonic() - started)),
                str(getattr(loaded, "notice", "") or ""),
                getattr(loaded, "defaults", None),
                _size(getattr(loaded, "native_size", None)),
            )
        )

    def _generate(self, job: Job, post: Post, previous: Any = None) -> None:
        assert job.request is not None
        started = time.monotonic()
        request = self._fit(job, post, previous)
        result = self.client().generate(
            request,
            on_progress=lambda p: post(JobProgress(job.id, p)),
            cancel=job.cancel,
            on_image=lambda g: post(ImageReady(job.id, g)),
        )
        if job.cancel.cancelled:  # cancelled after the last step: still save nothing
            raise GenerationCancelled()
        entries, error = self.save([(image, result) for image in result.images], job.id)
        post(JobDone(job.id, result, entries, time.monotonic() - started))
        if error is not None:
            post(SaveFailed(job.id, error.message, error.hint, len(self.unsaved)))

    def _fit(self, job: Job, post: Post, previous: Any = None) -> GenerationRequest:
        """The job's request fitted to the loaded model, with notices of what changed.

        Fields still holding `previous` (the last model's defaults) were not set
        by hand: they take the loaded model's. Others stay unless it cannot use them.
        """
        from sdtui.families import FOLLOWING_FIELDS, fit_request

        wanted = job.request
        assert wanted is not None  # only generations are fitted, never model loads
        defaults = self.loaded_defaults
        if defaults is None:
            return wanted
        set_by_user = {
            name
            for name in FOLLOWING_FIELDS
            if previous is None or getattr(wanted, name) != getattr(previous, name)
        }
        request, notices = fit_request(wanted, defaults, set_by_user)
        for notice in notices:
            post(JobStatus(job.id, notice))
        return request

    # -- saving, kept in memory when the gallery cannot take it -------------------

    @property
    def unsaved(self) -> list[Unsaved]:
        """Images made but not yet written (disk full, read-only folder), oldest first."""
        with self._unsaved_lock:
            return list(self._unsaved)

    def save(
        self, items: list[Unsaved], job_id: int | None = None
    ) -> tuple[list[Any], SdtuiError | None]:
        """Save each image; those that fail are kept for `retry_saves`. Returns the
        entries written and the last failure (None when all were saved). `job_id`'s
        job counts as finished from then on, under the same lock."""
        with self.saving:
            saved = self._save(items)
            if job_id is not None:
                self.finished_jobs.add(job_id)
            return saved

    def _save(self, items: list[Unsaved]) -> tuple[list[Any], SdtuiError | None]:
        entries: list[Any] = []
        error: SdtuiError | None = None
        kept: list[Unsaved] = []
        try:
            gallery = self.gallery.get()
        except SdtuiError as exc:
            gallery, error = None, exc
        except OSError as exc:
            gallery = None
            error = SaveError(f"cannot open the gallery: {exc.strerror or exc}")
        for item in items:
            if gallery is None:
                kept.append(item)
                continue
            try:
                entries.append(gallery.save(*item))
            except SdtuiError as exc:
                error = exc
                if getattr(exc, "written", None) is None:  # else the PNG is safe on disk
                    kept.append(item)
            except Exception as exc:  # an unforeseen failure must not lose the image either
                log.exception("saving an image failed")
                error = SaveError(f"could not save the image: {type(exc).__name__}: {exc}")
                kept.append(item)
        if error is not None:
            log.warning("%d image(s) kept in memory, not saved: %s", len(kept), error)
        with self._unsaved_lock:
            self._unsaved.extend(kept)
        return entries, error

    def retry_saves(self) -> tuple[list[Any], SdtuiError | None]:
        """Try again to write every image kept in memory."""
        with self._unsaved_lock:
            items, self._unsaved = self._unsaved, []
        return self.save(items)
