"""`sdtui --server URL`: the app generating on a running sdtui serve, as two people on one box."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import gallery_pngs, idle, wait_until
from PIL import Image
from server_helpers import make_app

from sdtui.config import load_settings
from sdtui.engine import Engine
from sdtui.errors import ValidationError
from sdtui.params import GenerationRequest
from sdtui.remote.app_engine import ServerEngine
from sdtui.server.run import ServerThread

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def engine(demo_model_dir: Path) -> Engine:
    engine = Engine(device="cpu", dtype="fp32", preview="latent")
    engine.load(str(demo_model_dir))
    return engine


@pytest.fixture
def server(engine: Engine, demo_model_dir: Path):
    app = make_app(engine, demo_model_dir)
    with ServerThread(app, app.state.service) as running:
        yield running
    app.state.service.close(timeout=30)


def test_the_server_engine_paints_what_the_local_engine_paints(engine, server) -> None:
    remote = ServerEngine(server.url)
    name = remote.served_model()
    loaded = remote.load(name)
    assert loaded.native_size == (64, 64) and loaded.defaults is not None
    request = GenerationRequest(
        prompt="a red fox", model=name, steps=3, width=64, height=64, seed=5, count=2,
        scheduler="Euler",
    )
    steps, shown = [], []
    result = remote.generate(
        request, on_progress=steps.append, on_image=lambda g: shown.append(g.seed)
    )
    local = engine.generate(request.replace(model=engine.loaded.model_id))
    assert result.seeds == shown == [5, 6] == local.seeds
    for ours, theirs in zip(result.images, local.images, strict=True):
        assert ours.image.convert("RGB").tobytes() == theirs.image.convert("RGB").tobytes()
    assert [(p.image_index, p.step) for p in steps][-1] == (1, 3)
    assert result.info["made_on"]["server"] == server.url
    with pytest.raises(ValidationError, match="serves"):
        remote.load("sdxl")
    remote.close()


async def test_two_apps_share_one_server_and_each_saves_its_own_images(
    server, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sdtui.tui.app import SdtuiApp

    loads = engine.load_count
    apps = []
    for who in ("alice", "bob"):
        remote = ServerEngine(server.url)
        settings = load_settings(
            {"model": remote.served_model(), "gallery": str(tmp_path / who)}
        )
        apps.append((who, SdtuiApp(settings, engine_factory=lambda _s, r=remote: r)))
    for who, app in apps:
        # Two people: each their own gallery and their own session (state folder).
        monkeypatch.setenv("SDTUI_STATE_DIR", str(tmp_path / f"{who}-state"))
        async with app.run_test(size=(120, 40)) as pilot:
            await idle(pilot, app)
            app.prompt_editor.load_text(f"{who}'s lighthouse")
            app.params.set_value("steps", "3")
            app.prompt_editor.focus()
            await pilot.press("ctrl+g")
            await wait_until(pilot, lambda app=app: len(app.history.entries) == 1)
            await idle(pilot, app)
            assert app.last_error == ""
        files = gallery_pngs(tmp_path / who)
        assert len(files) == 1
        record = json.loads(Image.open(files[0]).text["sdtui"])
        assert record["request"]["prompt"] == f"{who}'s lighthouse"
        assert record["info"]["made_on"]["server"] == server.url
    assert engine.load_count == loads  # the model was loaded once, by the server
