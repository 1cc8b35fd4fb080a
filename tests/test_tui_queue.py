"""The queue as a user works with it: focus it, remove, reorder, edit back, clear and
undo, pause; and the session (prompt, fields, queue) kept across a restart."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from helpers import gallery_pngs, idle, wait_until
from test_tui_app import GatedEngine, type_prompt

from sdtui.config import load_settings
from sdtui.errors import ModelNotFoundError
from sdtui.tui import app as app_module
from sdtui.tui.app import SdtuiApp
from sdtui.tui.session import load_session, session_path

SIZE = (120, 40)


@pytest.fixture
def engines() -> list[GatedEngine]:
    return []


@pytest.fixture
def make_app(demo_model_dir: Path, engines: list[GatedEngine]):  # noqa: ANN201
    def make(**overrides: Any) -> SdtuiApp:
        def factory(settings: Any) -> GatedEngine:
            engine = GatedEngine(settings, "off")
            engines.append(engine)
            return engine

        return SdtuiApp(load_settings({"model": "demo", **overrides}), engine_factory=factory)

    return make


def queue_rows(app: SdtuiApp) -> list[str]:
    """The queue pane's rows as shown."""
    queue = app.queue_list
    return [str(queue.get_option_at_index(i).prompt) for i in range(queue.option_count)]


def notices(app: SdtuiApp) -> list[str]:
    """The notifications on screen now."""
    return [n.message for n in app._notifications]


def waiting_prompts(app: SdtuiApp) -> list[str]:
    return [j.request.prompt for j in app.jobs.pending if j.request is not None]


async def queue_words(pilot: Any, app: SdtuiApp, words: list[str]) -> None:
    """Hold the device with the first word and queue the others behind it."""
    app.params.set_value("steps", "2")
    for word in words:
        await type_prompt(pilot, app, word)
        await pilot.press("ctrl+g")
    await wait_until(pilot, lambda: len(app.jobs.pending) == len(words) - 1)


async def test_the_queue_takes_the_focus_and_its_keys_remove_move_and_edit(
    make_app: Any, engines: list
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        engines[0].gate.clear()
        await queue_words(pilot, app, ["running", "one", "two", "three"])
        assert [row.split(" · ")[0] for row in queue_rows(app)] == ["1. one", "2. two", "3. three"]
        await pilot.press("alt+q")
        assert app.focused is app.queue_list
        await pilot.press("shift+down")  # "one" goes after "two"
        assert waiting_prompts(app) == ["two", "one", "three"]
        assert app.queue_list.selected_job.request.prompt == "one"
        await pilot.press("k", "x")  # up to "two", remove it
        assert waiting_prompts(app) == ["one", "three"]
        await pilot.press("alt+u")  # back where it was
        assert waiting_prompts(app) == ["two", "one", "three"]
        await pilot.press("j", "j", "enter")  # "three" back into the editor
        assert waiting_prompts(app) == ["two", "one"]
        assert app.prompt_editor.text == "three"
        assert app.focused is app.prompt_editor
        engines[0].gate.set()
        await idle(pilot, app)
        assert engines[0].prompts == ["running", "two", "one"]


async def test_clearing_the_queue_can_be_undone(make_app: Any, engines: list) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        engines[0].gate.clear()
        await queue_words(pilot, app, ["running", "kept one", "kept two"])
        await pilot.press("f8")
        assert app.jobs.pending == []
        assert any("alt+u puts them back" in text for text in notices(app))
        await pilot.press("alt+u")
        assert waiting_prompts(app) == ["kept one", "kept two"]
        engines[0].gate.set()
        await idle(pilot, app)
        assert engines[0].prompts == ["running", "kept one", "kept two"]


async def test_a_long_queue_says_how_many_are_out_of_view(make_app: Any, engines: list) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        engines[0].gate.clear()
        await queue_words(pilot, app, ["running"] + [f"job {n}" for n in range(8)])
        await pilot.pause()
        queue = app.queue_list
        shown = queue.scrollable_content_region.height
        assert 0 < shown < 8
        assert queue.border_subtitle == f"+{8 - shown} more"
        assert "8 waiting" in str(queue.border_title)
        engines[0].gate.set()
        await pilot.press("f8")
        await idle(pilot, app)


async def test_prompt_fields_and_queue_come_back_paused_at_the_next_start(
    make_app: Any, engines: list, gallery_dir: Path
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        engines[0].gate.clear()
        app.negative_editor.load_text("blurry")
        app.params.set_value("cfg", "5.5")
        await queue_words(pilot, app, ["held", "later one", "later two"])
        await type_prompt(pilot, app, "still being written")
        await pilot.press("ctrl+q", "ctrl+q")  # asked, then confirmed
        engines[0].gate.set()
    assert gallery_pngs(gallery_dir) == []  # the running one was cancelled
    path = session_path()
    assert path.stat().st_mode & 0o777 == 0o600

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.status.state.startswith("ready"))
        await pilot.pause()
        assert app.prompt_editor.text == "still being written"
        assert app.negative_editor.text == "blurry"
        assert app.params.value("cfg") == "5.5"
        assert waiting_prompts(app) == ["held", "later one", "later two"]
        assert app.jobs.paused and "paused" in str(app.queue_list.border_title)
        assert app.jobs.running is None and engines[-1].prompts == []
        await pilot.press("alt+p")
        await wait_until(pilot, lambda: len(app.history.entries) == 3)
        await idle(pilot, app)
        assert engines[-1].prompts == ["held", "later one", "later two"]


async def test_a_damaged_session_file_is_set_aside_with_a_message(make_app: Any) -> None:
    path = session_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"version": 1, "queue": [{"prompt": ""}]')  # cut short
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        assert "saved session could not be read" in app.last_error
        aside = list(path.parent.glob("session.damaged-*.json"))
        assert len(aside) == 1 and aside[0].read_text().startswith('{"version": 1')
        await type_prompt(pilot, app, "a fresh start")
        await pilot.pause(1.5)  # the session is saved a moment after typing
    session, problem = load_session()
    assert problem == "" and session is not None and session.prompt == "a fresh start"


async def test_a_bad_queued_request_in_the_session_is_refused_as_a_whole(make_app: Any) -> None:
    path = session_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    bad = {"version": 1, "prompt": "x", "queue": [{"prompt": "p", "model": "demo", "steps": 0}]}
    path.write_text(json.dumps(bad))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        assert "a queued request is bad" in app.last_error
        assert app.jobs.pending == [] and app.prompt_editor.text == ""


async def test_a_model_that_fails_to_load_fails_the_jobs_behind_it_at_once(
    make_app: Any, engines: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        engine = engines[0]
        loads: list[str] = []
        gate = threading.Event()

        def failing_load(model: str, on_status: Any = None) -> Any:
            loads.append(model)
            gate.wait(30)
            raise ModelNotFoundError("no-such/model", "check the name")

        engine.load = failing_load
        app.params.set_value("model", "no-such/model")
        for n in range(4):
            await type_prompt(pilot, app, f"try {n}")
            await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: len(app.jobs.pending) == 3)
        gate.set()
        await idle(pilot, app)
        assert loads == ["no-such/model"]  # tried once, not once per job
        assert "3 queued requests for it failed too" in app.last_error
        assert app.jobs.pending == []


async def test_a_hang_up_during_a_model_load_ends_the_process_soon(
    make_app: Any, engines: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_module, "HARD_EXIT_SECONDS", 0.3)
    app = make_app()
    ended = threading.Event()
    app.hard_exit = ended.set
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        release = threading.Event()

        def stuck_load(model: str, on_status: Any = None) -> Any:
            release.wait(30)
            raise ModelNotFoundError(model)

        engines[0].load = stuck_load
        app.params.set_value("model", "sd15")
        await type_prompt(pilot, app, "never made")
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: app.jobs.running is not None)
        app.hangup()
        await wait_until(pilot, ended.is_set)
        release.set()
    session, _ = load_session()
    assert session is not None and [r.prompt for r in session.queue] == ["never made"]


async def test_the_model_asked_for_now_wins_over_the_one_in_the_session(make_app: Any) -> None:
    path = session_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = {"model": "sd15", "width": "512", "height": "512", "steps": "7"}
    path.write_text(json.dumps({"version": 1, "prompt": "kept", "fields": fields}))
    app = make_app()  # --model demo
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot, app)
        assert app.prompt_editor.text == "kept" and app.params.value("steps") == "7"
        assert app.params.value("model") == "demo"
        assert (app.params.value("width"), app.params.value("height")) == ("64", "64")


# -- the parts, without the app ------------------------------------------------------


def _job(prompt: str) -> Any:
    from sdtui.params import GenerationRequest
    from sdtui.tui.jobs import Job

    return Job(model="demo", request=GenerationRequest(prompt=prompt, model="demo", seed=1))


def test_the_queue_moves_never_ahead_of_a_waiting_load_and_pauses() -> None:
    from sdtui.tui.jobs import Job, JobQueue

    queue = JobQueue()
    load = queue.submit(Job(model="demo"))
    a, b, c = (queue.submit(_job(p)) for p in "abc")
    assert not queue.move(a.id, -1)  # the load stays first
    assert queue.move(c.id, -5) and [j.id for j in queue.pending] == [load.id, c.id, a.id, b.id]
    queue.paused = True
    assert queue.start_next() is load  # a model load runs even while paused
    queue.finished(load.id)
    assert queue.start_next() is None
    taken = queue.take_all()
    assert [j.id for j in taken] == [c.id, a.id, b.id] and queue.pending == []
    queue.put_back(taken[1:], 0)
    queue.put_back(taken[:1], 0)
    assert [j.id for j in queue.pending] == [c.id, a.id, b.id]
    assert queue.remove(a.id) is a and queue.remove(a.id) is None


def test_a_session_round_trips_privately_and_a_bad_one_is_set_aside(tmp_path: Path) -> None:
    from sdtui.tui.session import Session, save_session

    path = tmp_path / "state" / "session.json"
    session = Session("a prompt", "a negative", {"steps": "9"}, True, ["cinematic"])
    session.queue = [_job("queued").request]
    save_session(session, path)
    assert path.stat().st_mode & 0o777 == 0o600
    again, problem = load_session(path)
    assert problem == "" and again == session
    assert list(path.parent.iterdir()) == [path]  # no temporary file left
    path.write_text("[1, 2")
    gone, problem = load_session(path)
    assert gone is None and "kept as session.damaged-" in problem
    assert not path.exists() and len(list(path.parent.glob("session.damaged-*"))) == 1


async def test_a_generation_saved_just_before_the_hang_up_is_not_queued_again(
    make_app: Any, gallery_dir: Path
) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await idle(pilot, app)
        saved, release = threading.Event(), threading.Event()
        real_save = app.runner.save

        def save_then_hold(items: Any, job_id: Any = None) -> Any:
            result = real_save(items, job_id)
            saved.set()
            release.wait(30)  # the word that it is done has not reached the screen yet
            return result

        app.runner.save = save_then_hold
        await type_prompt(pilot, app, "a lighthouse")
        await pilot.press("ctrl+g", "ctrl+g")
        await wait_until(pilot, saved.is_set)
        assert len(gallery_pngs(gallery_dir)) == 1 and app.jobs.running is not None
        # What a hang-up would keep: the one still waiting, not the one already saved.
        assert len(app.current_session(clean=False).queue) == 1
        app.runner.save = real_save
        release.set()
        await idle(pilot, app)
