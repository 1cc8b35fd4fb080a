"""`ServerEngine`: the app's engine calls (`load`, `generate`) answered by a running `sdtui serve`.

`sdtui --server URL` hands this to the app in place of its own engine: the
server owns the GPU and one queue shared by everyone's apps, and the app shows
the job's progress and previews and saves each image in the user's own gallery,
as it does with a local engine.
"""

from __future__ import annotations

import io
import threading
import time
from typing import TYPE_CHECKING, Any

from sdtui.errors import GenerationCancelled, OutOfMemoryError, SdtuiError, ValidationError
from sdtui.params import GenerationRequest
from sdtui.remote.sdtui_server import HttpClient
from sdtui.results import CancelToken, GeneratedImage, GenerationResult, StepProgress

if TYPE_CHECKING:
    from PIL.Image import Image

    from sdtui.engine.engine import LoadedModel
    from sdtui.engine.protocols import ImageCallback, ProgressCallback, StatusCallback

CANCEL_POLL_SECONDS = 0.1  # how soon a cancel in the app reaches the server


def _decode(png: bytes) -> Image:
    from PIL import Image

    image = Image.open(io.BytesIO(png))
    image.load()
    return image


class ServerEngine:
    """One app's view of a server's engine; one call at a time, as the runner makes them."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.client = HttpClient(url, token)
        self.url = self.client.url
        self.device = self.url
        self.dtype = ""
        self.loaded: LoadedModel | None = None

    def served_model(self) -> str:
        """The name of the model the server serves (what the app's model field shows)."""
        return str(self.client.models()["models"][0]["name"])

    def load(self, model: str, on_status: StatusCallback | None = None) -> LoadedModel:
        from sdtui import families
        from sdtui.engine.engine import LoadedModel

        if on_status is not None:
            on_status(f"asking {self.url}")
        served = self.client.models()["models"][0]
        name = str(served["name"])
        if model != name:
            raise ValidationError("model", f"the server at {self.url} serves {name}, not {model}")
        family = str(served.get("family") or "sd1")
        width, height = (int(v) for v in served.get("native_size") or (512, 512))
        known = family in families.FAMILIES
        defaults = families.model_defaults(family, (width, height)) if known else None
        self.loaded = LoadedModel(
            model_id=name,
            requested=model,
            family=family,
            device=self.url,
            dtype="",
            load_seconds=0.0,
            native_size=(width, height),
            defaults=defaults,
        )
        return self.loaded

    def generate(
        self,
        request: GenerationRequest,
        on_progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        on_image: ImageCallback | None = None,
        on_status: StatusCallback | None = None,
    ) -> GenerationResult:
        """Run `request` on the server; raises GenerationCancelled when cancelled."""
        from sdtui.service import Done, Failed, Loading, Queued, Step
        from sdtui.service import Image as ImageEvent

        started = time.monotonic()
        job = self.client.submit(request)
        finished = threading.Event()
        if cancel is not None:
            threading.Thread(
                target=self._cancel_when_asked, args=(job, cancel, finished), daemon=True
            ).start()
        images: list[GeneratedImage] = []
        info: dict[str, Any] = {"made_on": {"server": self.url, "api": "sdtui", "job": job}}
        model_id, device, dtype = request.model, self.url, ""
        try:
            for event in self.client.events(job):
                if isinstance(event, Queued) and on_status is not None:
                    where = "running" if event.position == 0 else f"queued: {event.position}"
                    on_status(f"{where} on {self.url}")
                elif isinstance(event, Loading) and on_status is not None:
                    on_status(event.message)
                elif isinstance(event, Step) and on_progress is not None:
                    preview = _decode(event.preview_png) if event.preview_png else None
                    on_progress(
                        StepProgress(
                            event.step, event.total, event.elapsed, event.image_index,
                            event.image_count, preview,
                        )
                    )
                elif isinstance(event, ImageEvent):
                    model_id, device, dtype = event.model_id, event.device, event.dtype
                    info["made_on"]["device"] = event.device
                    generated = GeneratedImage(
                        _decode(event.png), event.seed, event.index, event.request
                    )
                    images.append(generated)
                    if on_image is not None:
                        on_image(generated)
                elif isinstance(event, Failed):
                    if event.kind == "cancelled":
                        raise GenerationCancelled()
                    if event.kind == "out_of_memory":
                        raise OutOfMemoryError(f"the server ran out of memory: {event.message}")
                    raise SdtuiError(f"the server failed the job: {event.message}")
                elif isinstance(event, Done):
                    break
        finally:
            finished.set()
        return GenerationResult(
            request=request,
            images=images,
            model_id=model_id,
            device=device,
            dtype=dtype,
            generate_seconds=time.monotonic() - started,
            info=info,
        )

    def _cancel_when_asked(self, job: str, cancel: CancelToken, finished: threading.Event) -> None:
        while not finished.wait(CANCEL_POLL_SECONDS):
            if cancel.cancelled:
                try:
                    self.client.cancel(job)
                except SdtuiError:
                    pass  # the job ended or the server went away: the event stream says which
                return

    def unload(self) -> None:
        """The server keeps its model; nothing is held here."""

    def close(self) -> None:
        self.client.close()
