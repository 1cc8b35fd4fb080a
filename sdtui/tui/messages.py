"""Messages from the worker thread to the UI (`post_message` is thread-safe)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message

from sdtui.families import ModelDefaults
from sdtui.results import GeneratedImage, GenerationResult, StepProgress


@dataclass
class JobStatus(Message):
    """A status line from the worker (loading, loaded, ...)."""

    job_id: int
    text: str


@dataclass
class ModelLoaded(Message):
    job_id: int
    model: str
    device: str
    dtype: str
    seconds: float
    notice: str = ""
    defaults: ModelDefaults | None = None  # what the form shows for this model
    native_size: tuple[int, int] | None = None  # the size the model was trained at


@dataclass
class JobProgress(Message):
    job_id: int
    progress: StepProgress


@dataclass
class ImageReady(Message):
    """One image of a batch finished (shown at once; saved when the batch is done)."""

    job_id: int
    generated: GeneratedImage


@dataclass
class JobDone(Message):
    job_id: int
    result: GenerationResult
    entries: list[Any]  # gallery entries, one per image saved
    seconds: float


@dataclass
class SaveFailed(Message):
    """Images could not be written; they are kept in memory for a retry."""

    job_id: int  # 0 for a retry of earlier saves
    error: str
    hint: str
    kept: int  # images now waiting in memory


@dataclass
class SavesRetried(Message):
    """Images kept in memory were written on a retry."""

    entries: list[Any]


@dataclass
class JobCancelled(Message):
    job_id: int


@dataclass
class JobFailed(Message):
    job_id: int
    error: str
    hint: str = ""
    # The model that could not be loaded, when the job failed while loading it:
    # the jobs queued behind it for the same model fail with it at once.
    failed_model: str | None = None


@dataclass
class JobFinished(Message):
    """Always the last word of a job, sent from `finally`: the device is free again."""

    job_id: int


@dataclass
class HistoryLoaded(Message):
    entries: list[Any]
    gallery: Any


@dataclass
class HistoryFailed(Message):
    error: str
