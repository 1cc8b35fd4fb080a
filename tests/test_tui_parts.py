"""The app's plain parts: queue order, prompt recall, size presets, keys, themes."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdtui.errors import ValidationError
from sdtui.params import GenerationRequest
from sdtui.results import StepProgress
from sdtui.tui.history import entry_label
from sdtui.tui.jobs import Job, JobQueue
from sdtui.tui.keys import KEY_ACTIONS, keymap_from_config
from sdtui.tui.recall import PromptRecall
from sdtui.tui.sizes import next_preset, size_presets
from sdtui.tui.status import format_speed
from sdtui.tui.themes import load_themes, remember_theme, remembered_theme, theme_from_toml


def _job(prompt: str) -> Job:
    return Job(model="demo", request=GenerationRequest(prompt, model="demo", seed=1))


def test_queue_hands_out_one_job_at_a_time_in_order() -> None:
    queue = JobQueue()
    a, b, c = (queue.submit(_job(p)) for p in "abc")
    assert queue.start_next() is a
    assert queue.start_next() is None  # one GPU job at a time
    queue.finished(a.id)
    assert queue.start_next() is b
    assert queue.cancel_running() is b and b.cancel.cancelled
    assert queue.cancel_running() is None  # already cancelled
    queue.finished(b.id)
    assert queue.clear() == 1 and queue.start_next() is None
    assert c.cancel.cancelled is False


def test_finished_for_another_job_does_not_free_the_device() -> None:
    queue = JobQueue()
    first = queue.submit(_job("a"))
    queue.start_next()
    queue.finished(first.id + 1000)
    assert queue.running is first


def test_prompt_recall_walks_back_and_returns_to_the_draft() -> None:
    recall = PromptRecall(["old two", "old one"])
    recall.add("new")
    assert recall.newer() is None
    assert recall.older("my draft") == "new"
    assert recall.older("ignored") == "old two"
    assert recall.older("ignored") == "old one"
    assert recall.older("ignored") is None
    assert recall.newer() == "old two"
    assert recall.newer() == "new"
    assert recall.newer() == "my draft"
    recall.add("old one")  # used again: newest, not duplicated
    assert len(recall) == 3 and recall.older("") == "old one"


def test_size_presets_follow_the_model() -> None:
    assert size_presets("sd15")[:3] == [(512, 512), (512, 768), (768, 512)]
    assert size_presets("sdxl")[0] == (1024, 1024)
    assert size_presets("sd21")[0] == (768, 768)
    assert size_presets("demo")[0] == (64, 64)
    assert size_presets("some/unknown-model")[0] == (512, 512)
    for model in ("demo", "sd15", "sdxl", "sd21"):
        for w, h in size_presets(model):
            GenerationRequest("x", width=w, height=h)  # every preset is a valid size
    assert next_preset("sd15", (512, 512)) == (512, 768)
    assert next_preset("sd15", (100, 100)) == (512, 512)


def test_keymap_from_config_checks_names() -> None:
    keymap, problems = keymap_from_config({"generate": "f9, ctrl+enter", "nope": "x", "help": 3})
    assert keymap == {"main.generate": "f9,ctrl+enter"}  # ids scoped by screen
    assert any("'nope'" in p for p in problems) and any("help" in p for p in problems)


def test_every_action_has_a_key_and_a_help_line() -> None:
    keys = [a.key for a in KEY_ACTIONS]
    assert len(keys) == len(set(keys))
    assert all(a.help and a.description for a in KEY_ACTIONS)


def test_history_label_is_literal_text() -> None:
    class Entry:
        id, seed, path, created = 1, 42, Path("x.png"), None
        prompt, width, height = "[red]not red[/red]", 64, 96
        request = None

    label = entry_label(Entry())
    assert "[red]not red[/red]" in label.plain
    assert "seed 42 · 64x96" in label.plain


def test_speed_text() -> None:
    text = format_speed(StepProgress(step=5, total=20, elapsed=2.0, image_index=1, image_count=2))
    assert text.startswith("step 5/20 · image 2/2 · 12.5 it/s")
    assert text.endswith("1s left")


def test_builtin_themes_load_and_a_bad_file_is_explained(tmp_path: Path) -> None:
    themes, problems = load_themes()
    names = {t.name for t in themes}
    assert {"sdtui-dark", "sdtui-light", "sdtui-ember"} <= names and problems == []
    (tmp_path / "bad.toml").write_text('primary = "not a colour"\n')
    with pytest.raises(ValidationError, match="bad colour"):
        theme_from_toml(tmp_path / "bad.toml")
    (tmp_path / "typo.toml").write_text('primary = "#123456"\nprimry = "#000"\n')
    with pytest.raises(ValidationError, match="primry"):
        theme_from_toml(tmp_path / "typo.toml")


def test_theme_state_file_round_trip() -> None:
    assert remembered_theme() is None
    remember_theme("sdtui-light")
    assert remembered_theme() == "sdtui-light"
