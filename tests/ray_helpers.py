"""A local Ray on CPU with the demo engine deployed on two replicas, for the `ray` tests.

Ray binds some of its services to this machine's outside address even when told
127.0.0.1, so these tests only run inside a private network namespace, where
nothing but loopback exists: tests/test_ray_netns.py starts them there (with
SDTUI_RAY_NETNS=1). Anywhere else they are skipped.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

IN_NETNS = os.environ.get("SDTUI_RAY_NETNS") == "1"
NETNS_REASON = "Ray tests run inside a private network namespace (tests/test_ray_netns.py)"
REPLICAS = 2


def ray_installed() -> bool:
    return importlib.util.find_spec("ray") is not None


@pytest.fixture(scope="session")
def ray_deployment(demo_model_dir: Path) -> Iterator[Any]:
    """Ray started here (2 CPUs, its own temp folder) with two CPU replicas of the demo."""
    if not IN_NETNS:
        pytest.skip(NETNS_REASON)
    if not ray_installed():
        pytest.skip("Ray is not installed: pip install 'sdtui[ray]'")
    from sdtui.server.ray_backend import RayDeployment, RaySettings
    from sdtui.server.ray_replica import EngineOptions

    # Short: Ray's socket paths must fit in 107 characters.
    temp_dir = tempfile.mkdtemp(prefix="sdtui-ray-", dir="/tmp")
    settings = RaySettings(
        replicas=REPLICAS, gpus_per_replica=0, cpus_per_replica=1, local_cpus=2,
        temp_dir=temp_dir,
    )
    engine = EngineOptions(device="cpu", dtype="fp32", preview="latent")
    deployment = RayDeployment(settings, engine, str(demo_model_dir))
    deployment.start()
    try:
        yield deployment
    finally:
        deployment.close()  # only this Ray: it was started here, in this namespace
        shutil.rmtree(temp_dir, ignore_errors=True)


def make_ray_app(deployment: Any, model_dir: Path, token: str | None = None, **limits: Any) -> Any:
    """Like server_helpers.make_app, with the jobs run by the Ray deployment's replicas."""
    from sdtui.server.app import create_app
    from sdtui.server.common import ServerConfig

    service_limits = {k: limits.pop(k) for k in ("max_queue", "max_per_owner") if k in limits}
    service = deployment.queue(**service_limits)
    config = ServerConfig(model=str(model_dir), token=token, aliases=("demo",), **limits)
    return create_app(service, config)


def backend_params() -> list[Any]:
    """The two job backends the API tests run against: in-process, and Ray."""
    return ["local", pytest.param("ray", marks=pytest.mark.ray)]


def app_for(request: pytest.FixtureRequest, engine: Any, model_dir: Path, **limits: Any) -> Any:
    from server_helpers import make_app

    if request.param == "ray":
        return make_ray_app(request.getfixturevalue("ray_deployment"), model_dir, **limits)
    return make_app(engine, model_dir, **limits)
