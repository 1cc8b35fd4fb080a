"""The engine as a service: typed job events, a fair queue, and the client protocol."""

from sdtui.service.client import EngineClient, InProcessClient
from sdtui.service.events import (
    Done,
    Event,
    Failed,
    Image,
    Loading,
    Queued,
    Step,
    event_from_dict,
    event_to_dict,
)
from sdtui.service.service import (
    EngineService,
    JobInfo,
    JobNotFoundError,
    JobQueue,
    QueueFullError,
    ServiceClosedError,
)

__all__ = [
    "Done",
    "EngineClient",
    "EngineService",
    "Event",
    "Failed",
    "Image",
    "InProcessClient",
    "JobInfo",
    "JobNotFoundError",
    "JobQueue",
    "Loading",
    "QueueFullError",
    "Queued",
    "ServiceClosedError",
    "Step",
    "event_from_dict",
    "event_to_dict",
]
