"""`sdtui serve --ray`: the job queue of `sdtui serve`, run on a Ray Serve deployment.

The HTTP app, its owners, limits and fair queue stay in the `sdtui serve`
process, unchanged (`RayJobQueue` is a `JobQueue` like `EngineService`). Up
to `workers` jobs at a time are handed to the `EngineReplica` deployment
(sdtui/server/ray_replica.py) through a streaming deployment handle; Ray
Serve picks a free replica, preferring one that has the model loaded, and
scales the deployment between its minimum and maximum on the requests
waiting for a replica. Jobs beyond that wait here, in sdtui's round-robin.

A replica that dies mid-job (its process killed, or out of host memory) is
restarted by Ray. Its job is tried once more on another replica when none of
its images had reached the client yet; otherwise it fails with a message
that says how many images were kept, so nothing is lost and nothing is made
twice.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import ray
from ray import serve
from ray.exceptions import RayActorError, RayTaskError, TaskCancelledError
from ray.serve.exceptions import DeploymentUnavailableError, ReplicaUnavailableError

from sdtui.errors import GenerationCancelled, SdtuiError, ValidationError
from sdtui.server.ray_replica import EngineOptions, EngineReplica
from sdtui.service.events import Done, Failed, Image, Loading
from sdtui.service.service import JobQueue, _failure, _Job

if TYPE_CHECKING:
    from ray.serve.handle import DeploymentHandle, DeploymentResponseGenerator

    from sdtui.engine.engine import LoadedModel

log = logging.getLogger(__name__)

APP_NAME = "sdtui"
DEPLOYMENT_NAME = "engine"
CANCEL_POLL_SECONDS = 0.2
# A replica's process went away: Ray restarts it, the job may run again elsewhere.
REPLICA_LOST = (RayActorError, ReplicaUnavailableError, DeploymentUnavailableError)


@dataclass(frozen=True)
class RaySettings:
    """Where Ray runs and how the deployment scales."""

    address: str | None = None  # None: start a Ray instance on this machine
    replicas: int | None = None  # a fixed count; None: autoscale (or one per GPU)
    min_replicas: int | None = None
    max_replicas: int | None = None
    gpus_per_replica: float = 1.0  # 0: replicas run on CPU
    cpus_per_replica: float = 1.0
    # Only for a Ray started here: its CPU count and its own temp folder.
    local_cpus: int | None = None
    temp_dir: str | None = None

    def __post_init__(self) -> None:
        """Bad counts are refused before Ray starts."""
        if self.replicas is not None and (
            self.min_replicas is not None or self.max_replicas is not None
        ):
            raise ValidationError("replicas", "give --replicas or --min/--max-replicas, not both")
        for name in ("replicas", "min_replicas", "max_replicas"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValidationError(name.replace("_", "-"), f"must be at least 1, got {value}")
        if self.min_replicas and self.max_replicas and self.max_replicas < self.min_replicas:
            raise ValidationError(
                "max-replicas", f"is {self.max_replicas}, below --min-replicas {self.min_replicas}"
            )
        if self.gpus_per_replica < 0 or self.cpus_per_replica < 0:
            raise ValidationError("ray-gpus-per-replica", "must not be negative")

    def scaling(self, gpus_in_cluster: float) -> tuple[int, int]:
        """(min, max) replicas; a fixed count is min == max. Unset: one replica per GPU."""
        if self.replicas is not None:
            return self.replicas, self.replicas
        per_gpu = int(gpus_in_cluster // self.gpus_per_replica) if self.gpus_per_replica else 1
        if self.min_replicas is None and self.max_replicas is None:
            return max(1, per_gpu), max(1, per_gpu)
        low = self.min_replicas or 1
        return low, self.max_replicas or max(low, per_gpu)


class RayJobQueue(JobQueue):
    """sdtui's job queue whose jobs run on the replicas of a Ray Serve deployment."""

    def __init__(
        self,
        handle: DeploymentHandle,
        *,
        loaded: LoadedModel | None = None,
        workers: int = 1,
        models: tuple[str, ...] = (),
        max_queue: int = 64,
        max_per_owner: int = 16,
        keep_seconds: float = 600.0,
    ) -> None:
        self.handle = handle
        self._loaded = loaded
        self._workers: dict[str, str] = {}  # job id -> the replica that ran it last
        super().__init__(
            models=models, max_queue=max_queue, max_per_owner=max_per_owner,
            keep_seconds=keep_seconds, workers=workers,
        )

    def loaded_model(self) -> LoadedModel | None:
        return self._loaded

    def worker_of(self, job_id: str, owner: str = "local") -> str:
        """The replica that runs (or last ran) a job; "" before one took it."""
        with self._cond:
            self._get(job_id, owner)
            return self._workers.get(job_id, "")

    def _run(self, job: _Job) -> None:
        lost = self._attempt(job)
        if lost and job.images == 0 and not job.cancel.cancelled and not self._closing:
            self._emit(job, Loading(job.id, f"{lost}; trying again on another replica"))
            lost = self._attempt(job)
        if lost:
            kept = f"; its {job.images} finished image(s) were sent" if job.images else ""
            with self._cond:
                self._finish(job, Failed(job.id, f"{lost}{kept}", "error"))

    def _attempt(self, job: _Job) -> str:
        """Run the job once; "" when it ended (done or failed), else why the replica was lost."""
        response = cast(
            "DeploymentResponseGenerator",
            self.handle.options(stream=True, multiplexed_model_id=job.request.model)
            .run.remote(job.request),
        )
        stop = threading.Event()
        watcher = threading.Thread(
            target=self._cancel_when_asked, args=(job, response, stop), daemon=True
        )
        watcher.start()
        worker = ""
        try:
            for item in response:
                if isinstance(item, str):
                    worker = item
                    with self._cond:
                        # Forget the jobs the queue has forgotten (expired).
                        self._workers = {k: v for k, v in self._workers.items() if k in self._jobs}
                        self._workers[job.id] = worker
                    self._emit(job, Loading(job.id, f"running on {worker}"))
                elif isinstance(item, Done):
                    with self._cond:
                        self._finish(job, Done(job.id, job.images))
                    return ""
                elif isinstance(item, Failed):
                    with self._cond:
                        self._finish(job, item)
                    return ""
                else:
                    if isinstance(item, Image):
                        with self._cond:
                            job.images += 1
                    self._emit(job, dataclasses.replace(item, job=job.id))
            return f"replica {worker or '?'} ended the job without a result"
        except REPLICA_LOST as exc:
            log.warning("job %s: replica %s lost: %s", job.id, worker, type(exc).__name__)
            return f"replica {worker or '?'} stopped mid-job"
        except TaskCancelledError:  # also serve's RequestCancelledError
            with self._cond:
                self._finish(job, _failure(GenerationCancelled(), self._closing))
            return ""
        except Exception as exc:  # a replica's own error arrives wrapped in RayTaskError
            cause = exc.cause if isinstance(exc, RayTaskError) and exc.cause else exc
            if not isinstance(cause, SdtuiError):
                log.exception("job %s failed on %s", job.id, worker)
            with self._cond:
                self._finish(job, _failure(cause, self._closing))
            return ""
        finally:
            stop.set()

    @staticmethod
    def _cancel_when_asked(
        job: _Job, response: DeploymentResponseGenerator, stop: threading.Event
    ) -> None:
        """Cancel the Ray request when the job is cancelled (Ray tells the replica)."""
        while not stop.wait(CANCEL_POLL_SECONDS):
            if job.cancel.cancelled:
                response.cancel()
                return


class RayDeployment:
    """Ray (local or a cluster's) and the engine deployment on it, for one `sdtui serve`."""

    def __init__(self, settings: RaySettings, engine: EngineOptions, model: str) -> None:
        self.settings = settings
        self.engine = engine
        self.model = model
        self.handle: DeploymentHandle | None = None
        self.loaded: LoadedModel | None = None
        self.scale: tuple[int, int] = (1, 1)
        self.startup_seconds = 0.0
        self._started_ray = False

    def start(self, on_status: Callable[[str], None] = lambda _text: None) -> None:
        """Connect to (or start) Ray, deploy the replicas, and load the model on them."""
        began = time.monotonic()
        if self.settings.address:
            on_status(f"connecting to the Ray cluster at {self.settings.address}")
            ray.init(address=self.settings.address, log_to_driver=False)
        else:
            on_status("starting Ray on this machine")
            ray.init(
                address="local",
                num_cpus=self.settings.local_cpus,
                _temp_dir=self.settings.temp_dir,
                include_dashboard=False,
                log_to_driver=False,
            )
            self._started_ray = True
        try:
            self._deploy(on_status)
        except BaseException:
            self.close()
            raise
        self.startup_seconds = time.monotonic() - began

    def _deploy(self, on_status: Callable[[str], None]) -> None:
        gpus = float(ray.cluster_resources().get("GPU", 0))
        if self.settings.gpus_per_replica and gpus < self.settings.gpus_per_replica:
            raise SdtuiError(
                "this Ray cluster has no GPU for a replica",
                "add --ray-gpus-per-replica 0 to run the replicas on CPU",
            )
        low, high = self.scale = self.settings.scaling(gpus)
        scaling: dict[str, Any] = (
            {"num_replicas": low}
            if low == high
            else {
                "autoscaling_config": {
                    "min_replicas": low,
                    "initial_replicas": low,
                    "max_replicas": high,
                    # One job per replica: scale up while jobs wait for a replica.
                    "target_ongoing_requests": 1,
                    "downscale_delay_s": 300,
                }
            }
        )
        deployment = serve.deployment(
            name=DEPLOYMENT_NAME,
            max_ongoing_requests=1,
            ray_actor_options={
                "num_gpus": self.settings.gpus_per_replica,
                "num_cpus": self.settings.cpus_per_replica,
            },
            health_check_period_s=5,
            graceful_shutdown_timeout_s=30,
            **scaling,
        )(EngineReplica)
        on_status(
            f"deploying {low} replica(s)" + (f", up to {high}" if high > low else "")
        )
        serve.start(proxy_location="Disabled")  # sdtui's own HTTP app is the front door
        self.handle = serve.run(
            deployment.bind(self.engine), name=APP_NAME, route_prefix=None, blocking=False
        )
        on_status(f"loading {self.model} on the replicas")
        # Warm every first replica, so the first jobs do not wait for a load.
        warm = self.handle.options(multiplexed_model_id=self.model)
        answers = [warm.describe.remote() for _ in range(low)]
        try:
            self.loaded = [answer.result() for answer in answers][0]
        except RayTaskError as exc:  # the replica's own error, e.g. a model that is not there
            if isinstance(exc.cause, SdtuiError):
                raise exc.cause from None
            raise

    def queue(self, **limits: Any) -> RayJobQueue:
        """The job queue for the HTTP app; one dispatcher per replica there may be."""
        if self.handle is None:
            raise RuntimeError("start() the deployment first")
        return RayJobQueue(
            self.handle, loaded=self.loaded, workers=self.scale[1], models=(self.model,),
            **limits,
        )

    def close(self) -> None:
        """Remove the deployment; stop Ray only when it was started here."""
        if not ray.is_initialized():
            return
        try:
            if self._started_ray:
                serve.shutdown()
            else:
                serve.delete(APP_NAME)
        except Exception as exc:  # Ray going down at the same time is not our error
            log.warning("removing the deployment: %s", exc)
        finally:
            ray.shutdown()
