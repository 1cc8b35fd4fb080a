"""Runs one job on the worker thread and reports through messages.

The engine (torch, diffusers) is imported here, inside the thread, on first use:
the app paints before any of it is loaded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from textual.message import Message

from sdtui.config import Settings
from sdtui.errors import GenerationCancelled, SaveError, SdtuiError
from sdtui.results import GeneratedImage, GenerationResult
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


def default_engine_factory(
    settings: Settings, preview: str | None = None, options: Any | None = None
) -> Any:
    """The engine with the speed settings `options`, or else those of the config's
    [performance] table and SDTUI_* variables; `preview` None keeps their live
    preview choice (latent by default). It runs in its own process (started now,
    in the background) unless the settings ask for `in_process`."""
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
    )


def default_gallery_factory(settings: Settings) -> Any:
    from sdtui.gallery import Gallery

    return Gallery(settings.gallery)


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
        self._unsaved: list[Unsaved] = []
        self._unsaved_lock = threading.Lock()

    def run(self, job: Job, post: Post) -> None:
        try:
            if job.is_load or job.model != self.loaded_model:
                self._load(job, post)
            if job.request is not None:
                self._generate(job, post)
        except GenerationCancelled:
            post(JobCancelled(job.id))
        except SdtuiError as exc:
            log.warning("job %s failed: %s", job.id, exc, exc_info=exc.__cause__ is not None)
            post(JobFailed(job.id, exc.message, exc.hint))
        except Exception as exc:  # anything else is shown, and the app goes on
            log.exception("job %s failed", job.id)
            post(JobFailed(job.id, f"{type(exc).__name__}: {exc}"))
        finally:
            post(JobFinished(job.id))

    def _load(self, job: Job, post: Post) -> None:
        post(JobStatus(job.id, f"loading {job.model}…"))
        engine = self.engine.get()
        started = time.monotonic()
        self.loaded_model = None
        loaded = engine.load(job.model, on_status=lambda text: post(JobStatus(job.id, str(text))))
        self.loaded_model = job.model
        post(
            ModelLoaded(
                job.id,
                job.model,
                str(getattr(loaded, "device", "?")),
                str(getattr(loaded, "dtype", "?")),
                float(getattr(loaded, "load_seconds", time.monotonic() - started)),
                str(getattr(loaded, "notice", "") or ""),
            )
        )

    def _generate(self, job: Job, post: Post) -> None:
        assert job.request is not None
        started = time.monotonic()
        result = self.engine.get().generate(
            job.request,
            on_progress=lambda p: post(JobProgress(job.id, p)),
            cancel=job.cancel,
            on_image=lambda g: post(ImageReady(job.id, g)),
        )
        if job.cancel.cancelled:  # cancelled after the last step: still save nothing
            raise GenerationCancelled()
        entries, error = self.save([(image, result) for image in result.images])
        post(JobDone(job.id, result, entries, time.monotonic() - started))
        if error is not None:
            post(SaveFailed(job.id, error.message, error.hint, len(self.unsaved)))

    # -- saving, kept in memory when the gallery cannot take it -------------------

    @property
    def unsaved(self) -> list[Unsaved]:
        """Images made but not yet written (disk full, read-only folder), oldest first."""
        with self._unsaved_lock:
            return list(self._unsaved)

    def save(self, items: list[Unsaved]) -> tuple[list[Any], SdtuiError | None]:
        """Save each image; those that fail are kept for `retry_saves`. Returns the
        entries written and the last failure (None when all were saved)."""
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
