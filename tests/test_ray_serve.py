"""`sdtui serve --ray`: jobs spread over two CPU replicas, cancel, and replicas that die.

Runs inside a private network namespace (tests/test_ray_netns.py starts it);
the API tests of test_server_api.py and test_server_compat.py also run against
this deployment through their parametrised `app` fixture.
"""

from __future__ import annotations

import base64
import io
import json
import signal
import subprocess
import sys

import httpx
import pytest
from PIL import Image as PILImage
from ray_helpers import REPLICAS, make_ray_app
from server_helpers import client_for, demo_request, read_events

from sdtui.params import STEPS_RANGE
from sdtui.service import Done, Failed, Image, Loading, Step

pytestmark = pytest.mark.ray


@pytest.fixture
def app(ray_deployment, demo_model_dir):
    app = make_ray_app(ray_deployment, demo_model_dir)
    yield app
    app.state.service.close(timeout=60)


def _wait_for(service, job, owner, test, limit=600):
    """Events of a job until `test(events)` holds (or it ends)."""
    events: list = []
    for _ in range(limit):
        new, finished = service.wait_events(job, owner, len(events), 0.5)
        events += new
        if test(events) or finished:
            return events
    raise AssertionError(f"the job never got there: {[e.type for e in events]}")


def service_owner(client) -> str:
    """The owner key the server gives a test client's jobs."""
    from sdtui.server.auth import owner_of

    return owner_of(client.headers.get("x-sdtui-client"), "127.0.0.1")


def _kill_replica(worker: str) -> None:
    """Kill the replica's process as an OOM killer would; Ray's controller restarts it."""
    import ray

    tag = worker.split("@")[0]
    names = [a for a in ray.util.list_named_actors(all_namespaces=True) if tag in a["name"]]
    assert len(names) == 1, names
    ray.kill(ray.get_actor(names[0]["name"], namespace=names[0]["namespace"]), no_restart=False)


def test_jobs_spread_over_both_replicas_and_each_image_names_its_replica(app):
    clients = [client_for(app, "alice"), client_for(app, "bob")]
    jobs = [
        (client, client.post("/v1/jobs", json=demo_request(steps=6, seed=seed)).json()["job"])
        for seed in (1, 2)
        for client in clients
    ]
    events = [e for client, job in jobs for e in read_events(client, job)]
    images = [e for e in events if isinstance(e, Image)]
    workers = {image.info["worker"] for image in images}
    assert len(images) == 4 and len(workers) == REPLICAS
    # Progress with previews came back from the replicas.
    steps = [e for e in events if isinstance(e, Step)]
    assert len(steps) == 4 * 6
    assert all(any(e.preview_png for e in steps if e.job == job) for _, job in jobs)
    # The PNG's sdtui chunk names the replica too.
    for image in images:
        record = json.loads(PILImage.open(io.BytesIO(image.png)).text["sdtui"])
        assert record["info"]["worker"] == image.info["worker"]
    # And so does the A1111 answer's info.
    answer = clients[0].post("/sdapi/v1/txt2img", json={"prompt": "x", "steps": 2,
                                                        "width": 64, "height": 64})
    info = json.loads(answer.json()["info"])
    assert info["worker"] in workers
    png = base64.b64decode(answer.json()["images"][0])
    assert json.loads(PILImage.open(io.BytesIO(png)).text["sdtui"])["info"]["worker"] == (
        info["worker"]
    )


def test_cancel_reaches_the_replica_and_frees_it(app):
    service = app.state.service
    alice = client_for(app, "alice")
    job = alice.post("/v1/jobs", json=demo_request(steps=STEPS_RANGE[1], count=4)).json()["job"]
    _wait_for(service, job, service_owner(alice), lambda ev: any(isinstance(e, Step) for e in ev))
    assert alice.delete(f"/v1/jobs/{job}").json() == {"cancelled": True}
    assert read_events(alice, job)[-1].kind == "cancelled"
    # The replica stopped the job: two new jobs at once run on both replicas, which
    # they could not if the cancelled job still held one (one job per replica).
    second = [
        alice.post("/v1/jobs", json=demo_request(steps=8, seed=s)).json()["job"] for s in (3, 4)
    ]
    ends = [read_events(alice, j) for j in second]
    assert all(isinstance(events[-1], Done) for events in ends)
    assert len({service.worker_of(j, service_owner(alice)) for j in second}) == REPLICAS


def test_a_replica_killed_before_its_first_image_runs_the_job_again_once(app):
    service = app.state.service
    alice = client_for(app, "alice")
    owner = service_owner(alice)
    job = alice.post("/v1/jobs", json=demo_request(steps=40, count=2)).json()["job"]
    _wait_for(service, job, owner, lambda ev: any(isinstance(e, Step) for e in ev))
    killed = service.worker_of(job, owner)
    _kill_replica(killed)
    events = read_events(alice, job)
    images = [e for e in events if isinstance(e, Image)]
    retried = [e for e in events if isinstance(e, Loading) and "trying again" in e.message]
    assert len(retried) == 1 and killed in retried[0].message
    assert isinstance(events[-1], Done) and events[-1].images == 2
    # Each image exactly once, made by the replica that took over.
    assert [i.index for i in images] == [0, 1] and [i.seed for i in images] == [11, 12]
    assert {i.info["worker"] for i in images} == {service.worker_of(job, owner)} != {killed}


def test_a_replica_killed_after_an_image_fails_the_job_and_keeps_that_image(app):
    service = app.state.service
    alice = client_for(app, "alice")
    owner = service_owner(alice)
    job = alice.post("/v1/jobs", json=demo_request(steps=20, count=3)).json()["job"]
    _wait_for(service, job, owner, lambda ev: any(isinstance(e, Image) for e in ev))
    _kill_replica(service.worker_of(job, owner))
    events = read_events(alice, job)
    end = events[-1]
    assert isinstance(end, Failed) and "stopped mid-job" in end.message
    assert "finished image(s) were sent" in end.message
    images = [e for e in events if isinstance(e, Image)]
    assert 1 <= len(images) < 3 and [i.index for i in images] == list(range(len(images)))
    assert not any(isinstance(e, Loading) and "trying again" in e.message for e in events)
    # The queue goes on: the next job finishes on a live replica.
    after = alice.post("/v1/jobs", json=demo_request(steps=2)).json()["job"]
    assert isinstance(read_events(alice, after)[-1], Done)


def test_the_dispatchers_match_the_replicas(ray_deployment):
    queue = ray_deployment.queue()
    try:
        assert len(queue._threads) == REPLICAS and ray_deployment.scale == (REPLICAS, REPLICAS)
        assert queue.loaded_model() is not None and queue.loaded_model().family == "sd1"
    finally:
        queue.close()


def test_sdtui_serve_ray_on_an_existing_cluster_serves_and_stops_cleanly(
    ray_deployment, demo_model_dir
):
    """The real command against this Ray (`--ray-address`); it takes the deployment over,
    so it runs last."""
    import ray
    from ray import serve

    address = ray.get_runtime_context().gcs_address
    proc = subprocess.Popen(
        [sys.executable, "-m", "sdtui", "serve", "--ray", "--ray-address", address,
         "--min-replicas", "1", "--max-replicas", "2", "--ray-gpus-per-replica", "0",
         "--model", str(demo_model_dir), "--device", "cpu", "--dtype", "fp32", "--port", "0"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )
    lines: list[str] = []
    try:
        for line in proc.stderr:
            lines.append(line)
            if "listening on" in line:
                break
        url = lines[-1].split()[-1]
        assert url.startswith("http://127.0.0.1:"), "".join(lines)
        answer = httpx.post(f"{url}/sdapi/v1/txt2img", timeout=120,
                            json={"prompt": "x", "steps": 2, "width": 64, "height": 64})
        assert answer.status_code == 200, answer.text
        assert json.loads(answer.json()["info"])["worker"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        lines += proc.stderr.readlines()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    text = "".join(lines)
    assert "connecting to the Ray cluster" in text and "stopped" in text
    assert "with 1 to 2 replica(s)" in text  # autoscaled between the two
    # It removed its deployment and left the cluster (and its Serve) running.
    assert "sdtui" not in serve.status().applications
    assert ray.is_initialized() and ray.cluster_resources().get("CPU") == 2
