"""The sdtui terminal app: prompt editor, parameters, preview, history, queue, status.

Nothing here imports torch or diffusers: the engine is imported by the job
runner inside its worker thread, so the first frame never waits for it.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from rich.text import Text
from textual import events, work
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.markup import escape
from textual.screen import Screen
from textual.theme import Theme
from textual.widgets import Label, OptionList, TextArea
from textual.worker import Worker, WorkerState

from sdtui.config import Settings, load_settings
from sdtui.display import one_line
from sdtui.errors import ValidationError
from sdtui.logging_setup import redact
from sdtui.params import MAX_SEED, GenerationRequest
from sdtui.tui import themes
from sdtui.tui.addon_picker import AddonPickerMixin
from sdtui.tui.footer import FittingFooter
from sdtui.tui.gallery_keys import SCOPES as GALLERY_SCOPES
from sdtui.tui.help_screen import HelpScreen
from sdtui.tui.history import HistoryList
from sdtui.tui.jobs import Job, JobQueue
from sdtui.tui.keys import (
    KEY_ACTIONS,
    MAIN_SCOPE,
    keymap_from_config,
    keys_for,
    screen_bindings,
)
from sdtui.tui.messages import (
    HistoryFailed,
    HistoryLoaded,
    ImageReady,
    JobCancelled,
    JobDone,
    JobFailed,
    JobFinished,
    JobProgress,
    JobStatus,
    ModelLoaded,
    SaveFailed,
    SavesRetried,
)
from sdtui.tui.model_defaults import apply_model_defaults
from sdtui.tui.params_pane import ParamsPane
from sdtui.tui.preview import PreviewPane
from sdtui.tui.prompt_craft import PromptCraftMixin
from sdtui.tui.prompt_editor import PromptEditor
from sdtui.tui.queue_pane import QueueList
from sdtui.tui.recall import PromptRecall
from sdtui.tui.runner import (
    JobRunner,
    Lazy,
    default_engine_factory,
    default_gallery_factory,
)
from sdtui.tui.session import Session, load_session, save_session
from sdtui.tui.status import StatusPanel
from sdtui.tui.terminal import driver_class

VARIATIONS = 4  # images queued by the variations key
LONG_JOB_SECONDS = 10.0  # ring the bell when a job took longer than this
HISTORY_LIMIT = 500
NARROW_WIDTH = 72  # below this the preview and history give their room to the fields
SHORT_HEIGHT = 30  # below this the editors are smaller
HANGUP_GRACE_SECONDS = 2.5  # after a hang-up, how long the running job gets to stop
HARD_EXIT_SECONDS = 3.5  # then the process leaves, even with a model load under way
QUIT_CONFIRM_SECONDS = 5.0  # a second quit within this long leaves with work queued
SESSION_SAVE_DELAY = 1.0  # typing is saved this long after the last key

log = logging.getLogger(__name__)


class StudioScreen(Screen[None]):
    """The main screen. Its bindings call the app's actions, so keys, footer,
    help and palette all come from one table (sdtui.tui.keys)."""

    BINDINGS = [b for b in screen_bindings()]

    def __init__(self, settings: Settings, renderer: str) -> None:
        super().__init__()
        self.settings = settings
        self.renderer = renderer

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            with VerticalScroll(id="left"):
                yield Label("Prompt  (ctrl+g generate)", classes="title")
                yield PromptEditor(id="prompt", soft_wrap=True, show_line_numbers=False)
                yield Label("Negative prompt", classes="title")
                yield PromptEditor(id="negative", soft_wrap=True, show_line_numbers=False)
                yield ParamsPane(self.settings.model, id="params")
                yield QueueList(id="queue")
            with Vertical(id="right"):
                yield PreviewPane(self.renderer, id="preview")
                yield Label("History (enter remix, v variations)", classes="title")
                yield HistoryList(id="history")
        yield StatusPanel(
            self.settings.model, self.settings.device, str(self.settings.gallery), id="status"
        )
        yield FittingFooter(compact=True)

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < NARROW_WIDTH, "narrow")
        self.set_class(event.size.height < SHORT_HEIGHT, "short")

    def on_mount(self) -> None:
        self.query_one("#prompt", TextArea).focus()
        # Start loading once the first frame is out: the torch import in the worker
        # would otherwise compete with the first paint for the interpreter.
        self.app.call_after_refresh(self.app.studio_ready)  # type: ignore[attr-defined]


def _while_shown(handler: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
    """Skip a worker's message that arrives while the app is shutting down: the
    widgets it would update are already gone."""

    @functools.wraps(handler)
    def guarded(app: Any, message: Any) -> None:
        if app.is_shutting_down():
            return
        handler(app, message)

    return guarded


def _entry_prompt(entry: Any) -> str:
    prompt = getattr(entry, "prompt", "")
    if not prompt and entry.request is not None:
        prompt = entry.request.prompt
    return prompt


def _key_prefix(binding_keys: str) -> str:
    return binding_keys.split(",")[0]


class SdtuiApp(AddonPickerMixin, PromptCraftMixin, App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "sdtui"
    ENABLE_COMMAND_PALETTE = True

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        theme: str | None = None,
        renderer: str | None = None,
        engine_factory: Callable[[Settings], Any] | None = None,
        gallery_factory: Callable[[Settings], Any] | None = None,
    ) -> None:
        super().__init__(driver_class=driver_class())
        self.settings = settings or load_settings()
        self.renderer = renderer or self.settings.renderer
        self._requested_theme = theme
        make_engine = engine_factory or default_engine_factory
        make_gallery = gallery_factory or default_gallery_factory
        self.runner = JobRunner(
            Lazy(lambda: make_engine(self.settings)), Lazy(lambda: make_gallery(self.settings))
        )
        self.jobs = JobQueue()
        self.recall = PromptRecall()
        self.keys: dict[str, str] = {a.action: a.key for a in KEY_ACTIONS}  # main screen now
        self.keymap_now: dict[str, str] = {}  # scoped binding id -> key(s) from the config
        self._active_styles: list[str] = []
        self.last_error = ""
        self._hung_up = False
        self._quit_warned = False
        self._started: dict[int, float] = {}
        self._quit_armed_at = 0.0
        self._last_step: tuple[int, int] = (0, 0)  # the running job's step, as the bar shows
        self._picture_step: int | None = None  # the step the preview picture comes from
        self._undo: list[tuple[list[Job], int | None]] = []  # queue removals to undo
        self._session_timer: Any = None
        self._session_final = False
        # Called when a hang-up outlasts HARD_EXIT_SECONDS (the command line ends the
        # process there); None in tests, where the app simply exits.
        self.hard_exit: Callable[[], None] | None = None
        self._deadline: threading.Timer | None = None
        self._deadline_lock = threading.Lock()
        self.studio = StudioScreen(self.settings, self.renderer)

    # -- start-up ------------------------------------------------------------

    def get_default_screen(self) -> Screen:
        return self.studio

    def on_mount(self) -> None:
        self._setup_themes()
        self._setup_keys()

    def studio_ready(self) -> None:
        """The main screen is on: restore the last session, load the model and the
        history in the background."""
        queued = self._restore_session()
        self.jobs.submit(Job(model=self.params.value("model") or self.settings.model))
        for request in queued:
            self.jobs.submit(Job(model=request.model, request=request))
        self._update_queue()
        self._pump()
        self._load_history()
        self._save_session_now(clean=False)

    # -- the session file ------------------------------------------------------

    def _restore_session(self) -> list[GenerationRequest]:
        """Put the last session's prompt and fields back; returns its queue, which
        waits paused."""
        session, problem = load_session()
        if problem:
            self.show_error(problem)
        if session is None:
            return []
        self.prompt_editor.load_text(session.prompt)
        self.negative_editor.load_text(session.negative)
        fields = dict(session.fields)
        if fields.get("model", "").strip() != self.settings.model:
            # The model asked for now (flag, config) wins over last time's; its own
            # size comes with it.
            for name in ("model", "width", "height"):
                fields.pop(name, None)
        self.params.restore(fields, session.seed_locked)
        self.active_styles = session.styles
        if session.queue:
            self.jobs.paused = True  # nothing runs on the device before the user says so
            count = len(session.queue)
            how = "" if session.clean_exit else " (the last run ended without quitting)"
            key = _key_prefix(self.keys.get("toggle_pause", "alt+p"))
            self.notify(
                f"{count} queued request{'s' * (count != 1)} restored{how}, paused: "
                f"{key} runs them.",
                markup=False,
                timeout=10,
            )
        return session.queue

    def current_session(self, clean: bool) -> Session:
        """The prompt, fields and queue as they are now; the running generation goes
        first in the queue (it is cancelled on the way out), unless its images were
        saved already and only the word of it has not reached the screen yet."""
        queued = [j.request for j in self.jobs.pending if j.request is not None]
        running = self.jobs.running
        with self.runner.saving:  # a save in progress decides which it is
            if (
                running is not None
                and running.request is not None
                and running.id not in self.runner.finished_jobs
            ):
                queued.insert(0, running.request)
        fields, locked = self.params.snapshot()
        return Session(
            styles=list(self._active_styles),
            prompt=self.prompt_editor.text,
            negative=self.negative_editor.text,
            fields=fields,
            seed_locked=locked,
            queue=queued,
            clean_exit=clean,
        )

    def _save_session_now(self, clean: bool = False, final: bool = False) -> None:
        if self._session_timer is not None:
            self._session_timer.stop()
            self._session_timer = None
        if self._session_final:  # leaving: the last word is written already
            return
        self._session_final = final
        try:
            save_session(self.current_session(clean))
        except Exception as exc:  # never stop the app for it; say it once
            log.warning("could not save the session: %s", exc)
            if not getattr(self, "_session_warned", False):
                self._session_warned = True
                self.show_error(f"cannot save the session: {exc}")

    def session_changed(self) -> None:
        """Something worth keeping changed: save it soon (typing is batched)."""
        if self._session_final or self.is_shutting_down():
            return
        if self._session_timer is not None:
            self._session_timer.stop()
        self._session_timer = self.set_timer(SESSION_SAVE_DELAY, self._save_session_now)

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        self.session_changed()

    def on_input_changed(self, event: Any) -> None:
        self.session_changed()

    def _setup_themes(self) -> None:
        loaded, problems = themes.load_themes()
        for theme in loaded:
            self.register_theme(theme)
        for problem in problems:
            self.show_error(problem)
        wanted = self._requested_theme or themes.remembered_theme() or self.settings.theme
        if wanted not in self.available_themes:
            self.show_error(f"theme {wanted!r} is unknown; using {themes.DEFAULT_THEME}")
            wanted = themes.DEFAULT_THEME
            if wanted not in self.available_themes:  # the theme files are missing
                wanted = "textual-dark"
        self._start_theme: str | None = wanted
        self.theme = wanted
        # What was applied: a broken remembered theme falls back, and is not forgotten.
        self._start_theme = self.theme
        self.theme_changed_signal.subscribe(self, self._remember_theme)

    def validate_theme(self, name: str) -> str:
        """A theme whose variables break the CSS is refused with a message: the app
        keeps its current theme (or the default at start) instead of failing."""
        theme = self.available_themes.get(name)
        problem = None if theme is None else themes.css_problem(self, theme)
        if problem is None:
            return name
        self.show_error(f"theme {name!r} cannot be used: {problem}")
        self.unregister_theme(name)
        # At start the app's own default; later, the theme in use stays.
        fallback = self.theme if getattr(self, "_start_theme", None) is None else ""
        if fallback == name or fallback not in self.available_themes:
            fallback = themes.DEFAULT_THEME
        return fallback if fallback in self.available_themes else "textual-dark"

    def _remember_theme(self, theme: Theme) -> None:
        if theme.name == self._start_theme:  # the choice made at start, not a change
            self._start_theme = None
            return
        self._start_theme = None
        if theme.name != themes.remembered_theme():
            themes.remember_theme(theme.name)

    def _setup_keys(self) -> None:
        keymap, problems = keymap_from_config(self.settings.section("keys"), GALLERY_SCOPES)
        for problem in problems:
            self.show_error(problem)
        if keymap:
            self.set_keymap(keymap)
        self.keymap_now = keymap
        self.keys = keys_for(MAIN_SCOPE, KEY_ACTIONS, keymap)

    def reload_history(self) -> None:
        """Read the history from the gallery again (after it changed elsewhere)."""
        self._load_history()

    @work(thread=True, exit_on_error=False, group="history", name="history")
    def _load_history(self) -> None:
        try:
            gallery = self.runner.gallery.get()
            gallery.sync()
            entries = gallery.list(limit=HISTORY_LIMIT)
        except Exception as exc:
            self.post_message(HistoryFailed(f"gallery: {exc}"))
            return
        self.post_message(HistoryLoaded(entries, gallery))

    # -- widgets -------------------------------------------------------------

    @property
    def prompt_editor(self) -> TextArea:
        return self.studio.query_one("#prompt", TextArea)

    @property
    def negative_editor(self) -> TextArea:
        return self.studio.query_one("#negative", TextArea)

    @property
    def params(self) -> ParamsPane:
        return self.studio.query_one(ParamsPane)

    @property
    def history(self) -> HistoryList:
        return self.studio.query_one(HistoryList)

    @property
    def preview(self) -> PreviewPane:
        return self.studio.query_one(PreviewPane)

    @property
    def status(self) -> StatusPanel:
        return self.studio.query_one(StatusPanel)

    @property
    def gallery(self) -> Any:
        """The gallery (built on first use)."""
        return self.runner.gallery.get()

    def is_shutting_down(self) -> bool:
        """True once the app is leaving (messages from workers may still arrive)."""
        return self._exit or not self.studio.is_mounted or not self.studio.query(StatusPanel)

    # -- errors --------------------------------------------------------------

    def show_error(self, message: str) -> None:
        """Show a failure without stopping anything: a notification and the status line."""
        message = redact(message)  # a library's error text may quote the hub token
        self.last_error = message
        self.notify(message, title="Error", severity="error", markup=False, timeout=8)
        try:
            self.status.show_error(message)
        except Exception:  # before the screen is mounted: the notification is enough
            pass

    def clear_error(self) -> None:
        """The last failure's cause is gone: take it off the status line."""
        self.last_error = ""
        try:
            self.status.clear_error()
        except Exception:
            pass

    # -- building requests ---------------------------------------------------

    def build_request(self) -> GenerationRequest:
        """The request the editor and fields describe; ValidationError when a value is bad."""
        fields = self.params.read()
        return GenerationRequest(
            prompt=self.prompt_editor.text,
            negative_prompt=self.negative_editor.text,
            **fields,
        )

    def submit(self, request: GenerationRequest) -> Job:
        job = self.jobs.submit(Job(model=request.model, request=request))
        self._update_queue()
        self._pump()
        if self.jobs.paused:
            key = _key_prefix(self.keys.get("toggle_pause", "alt+p"))
            self.status.set_state(f"queued; the queue is paused ({key} resumes)")
        return job

    def remix_request(self, request: GenerationRequest) -> None:
        """Load every setting of `request` into the editor and fields (public: the
        gallery screen uses it too)."""
        request = self.restore_prompt_craft(request)  # prompt as written, its styles
        self.prompt_editor.load_text(request.prompt)
        self.negative_editor.load_text(request.negative_prompt)
        self.params.load(request)
        self.relink_addons_for_remix(request)  # LoRAs renamed here, found by hash, on a worker
        self.prompt_editor.focus()
        self.status.set_state("settings loaded from history")

    # -- the job queue -------------------------------------------------------

    def _pump(self) -> None:
        job = self.jobs.start_next()
        if job is None:
            return
        self._started[job.id] = time.monotonic()
        self._update_queue()
        self.status.clear_error()
        self.status.reset_progress()
        self._last_step, self._picture_step = (0, 0), None
        self.status.set_state(f"loading {job.model}…" if job.is_load else "generating…")
        self._run_job(job)

    @work(thread=True, exit_on_error=False, group="gpu")
    def _run_job(self, job: Job) -> None:
        self.runner.run(job, self.post_message)

    @property
    def queue_list(self) -> QueueList:
        return self.studio.query_one(QueueList)

    def _update_queue(self) -> None:
        pending = [j for j in self.jobs.pending if not j.is_load]
        self.status.set_queue(len(pending), paused=self.jobs.paused)
        queue = self.queue_list
        had_focus = queue.has_focus
        queue.set_jobs(pending, paused=self.jobs.paused)
        if had_focus and not pending:
            self.prompt_editor.focus()
        self.call_after_refresh(queue.update_title)  # "+N more" needs the new size
        self.session_changed()

    def on_queue_list_remove(self, message: QueueList.Remove) -> None:
        position = [j.id for j in self.jobs.pending if not j.is_load].index(message.job_id)
        job = self.jobs.remove(message.job_id)
        if job is None:
            return
        self._undo.append(([job], position))
        self._update_queue()
        key = _key_prefix(self.keys.get("undo_queue", "alt+u"))
        self.notify(f"Removed from the queue: {job.label()} ({key} puts it back).", markup=False)

    def on_queue_list_move(self, message: QueueList.Move) -> None:
        if self.jobs.move(message.job_id, message.delta):
            self._update_queue()
            self.queue_list.highlight_job(message.job_id)

    def on_queue_list_edit(self, message: QueueList.Edit) -> None:
        job = self.jobs.remove(message.job_id)
        if job is None or job.request is None:
            return
        self._update_queue()
        self.remix_request(job.request)
        self.status.set_state("queued request back in the editor (ctrl+g queues it again)")

    @_while_shown
    def on_job_status(self, message: JobStatus) -> None:
        self.status.set_state(message.text)

    @_while_shown
    def on_model_loaded(self, message: ModelLoaded) -> None:
        device = f"{message.device} {message.dtype}".strip()
        self.status.set_model(message.model, device)
        if message.native_size is not None:
            self.params.model_loaded(message.model, message.native_size)
        self.status.set_state(f"ready (loaded in {message.seconds:.1f}s)")
        if message.notice:
            self.notify(message.notice, markup=False)
        for notice in apply_model_defaults(self.params, message.model, message.defaults):
            self.notify(notice, markup=False)

    @_while_shown
    def on_job_progress(self, message: JobProgress) -> None:
        progress = message.progress
        self.status.show_progress(progress)
        self.status.set_state("generating…")
        self._last_step = (progress.step, progress.total)
        if progress.preview is not None:
            self._picture_step = progress.step
            self._preview(progress.preview, self._step_caption())
        elif self._picture_step is not None:
            # Previews are throttled: the caption follows the bar's step all the same.
            self.preview.set_caption(self._step_caption())

    def _step_caption(self, prefix: str = "step") -> str:
        step, total = self._last_step
        caption = f"{prefix} {step}/{total}"
        if self._picture_step is not None and self._picture_step != step:
            caption += f" · picture from step {self._picture_step}"
        return caption

    @_while_shown
    def on_image_ready(self, message: ImageReady) -> None:
        generated = message.generated
        self._preview(generated.image, f"seed {generated.seed} · {generated.request.prompt}")

    def _preview(self, image: Any, caption: str) -> None:
        """Show an image; a picture the renderer cannot draw is reported, never fatal."""
        try:
            self.preview.show(image, caption)
        except Exception as exc:
            log.exception("preview failed")
            self.show_error(f"cannot show the preview: {type(exc).__name__}: {exc}")

    @_while_shown
    def on_job_done(self, message: JobDone) -> None:
        result = message.result
        if message.entries:
            self.history.add_newest(message.entries)
        if not self.params.seed_locked and result.seeds:
            self.params.set_value("seed", result.seeds[0])
        count = len(result.images)
        summary = f"done: {count} image{'s' * (count != 1)} in {message.seconds:.1f}s"
        self.status.set_state(summary)
        if message.seconds > LONG_JOB_SECONDS:
            self.bell()
            self.notify(summary, title="sdtui")

    @_while_shown
    def on_job_cancelled(self, message: JobCancelled) -> None:
        self.status.set_state("cancelled: nothing saved")
        if self._picture_step is not None:
            self.preview.set_caption(self._step_caption("cancelled at step"))
        self.notify("Generation cancelled; nothing was saved.", markup=False)

    @_while_shown
    def on_job_failed(self, message: JobFailed) -> None:
        text = f"{message.error} ({message.hint})" if message.hint else message.error
        self.status.set_state("failed")
        if message.failed_model is not None:
            # The jobs behind it would wait out the same failure, one after another.
            dropped = self._fail_jobs_for(message.failed_model)
            if dropped:
                text += f"; {dropped} queued request{'s' * (dropped != 1)} for it failed too"
        self.show_error(text)

    def _fail_jobs_for(self, model: str) -> int:
        """Take every waiting job for `model` out of the queue (undo brings them back)."""
        waiting = [j for j in self.jobs.pending if j.model == model]
        for job in waiting:
            self.jobs.remove(job.id)
        requests = [j for j in waiting if not j.is_load]
        if requests:
            self._undo.append((requests, 0))
        self._update_queue()
        return len(requests)

    def on_save_failed(self, message: SaveFailed) -> None:
        if not message.kept:  # written, but not indexed: the next start lists it
            self.show_error(message.error)
            return
        key = _key_prefix(self.keys.get("retry_save", "alt+s"))
        kept = f"{message.kept} image{'s' * (message.kept != 1)} kept in memory"
        hint = f"; {message.hint}" if message.hint else ""
        self.status.set_state(f"not saved: {kept}")
        self.show_error(f"{message.error} ({kept}{hint}; press {key} to save again)")

    def on_saves_retried(self, message: SavesRetried) -> None:
        if not self.runner.unsaved:
            self.clear_error()  # the save error is no longer true
        if message.entries:
            self.history.add_newest(message.entries)
            count = len(message.entries)
            self.status.set_state(f"saved {count} kept image{'s' * (count != 1)}")
            self.notify(f"Saved {count} image{'s' * (count != 1)}.", markup=False)

    @_while_shown
    def on_job_finished(self, message: JobFinished) -> None:
        self._started.pop(message.job_id, None)
        self.jobs.finished(message.job_id)
        if self._hung_up:
            self._leave()
            return
        # The bar keeps the finished job's last step until the next job starts.
        self._update_queue()
        self._pump()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # The runner reports its own failures; this catches anything that escaped it.
        if event.state == WorkerState.ERROR and event.worker.group == "gpu":
            log.error("worker failed", exc_info=event.worker.error)
            self.show_error(f"worker failed: {event.worker.error}")
            if self.jobs.running is not None:
                self.post_message(JobFinished(self.jobs.running.id))

    # -- history -------------------------------------------------------------

    @_while_shown
    def on_history_loaded(self, message: HistoryLoaded) -> None:
        entries = message.entries
        self.history.gallery = message.gallery  # thumbnails come from its cache
        if [e.id for e in entries] == [e.id for e in self.history.entries]:
            return
        self.history.set_entries(entries)
        self.recall.extend_older(_entry_prompt(e) for e in entries)
        if entries:
            self._show_entry(entries[0])

    @_while_shown
    def on_history_failed(self, message: HistoryFailed) -> None:
        self.show_error(message.error)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_list is self.history:
            entry = self.history.selected_entry
            if entry is not None:
                self._show_entry(entry)

    def _show_entry(self, entry: Any) -> None:
        prompt = _entry_prompt(entry)
        self._preview(entry.path, f"seed {entry.seed} · {one_line(prompt)}")

    # -- actions (keys in sdtui.tui.keys) --------------------------------------

    def action_generate(self) -> None:
        # The binding runs before keys typed just ahead of it reach the focused
        # editor (they wait in its queue); read the fields once it has caught up.
        target = self.focused or self.screen
        target.call_later(self._generate_now)

    def _generate_now(self) -> None:
        try:
            request = self.build_request()
            # Styles applied and wildcards resolved: one request per image seed.
            requests = self.prepare_for_queue(request)
        except ValidationError as exc:
            self.show_error(f"Not queued: {exc}")
            return
        self.status.clear_error()
        self.recall.add(request.prompt)
        for item in requests:
            self.submit(item)

    def action_cancel(self) -> None:
        job = self.jobs.cancel_running()
        if job is not None and not job.is_load:
            self.status.set_state("cancelling…")

    def action_retry_save(self) -> None:
        if not self.runner.unsaved:
            self.notify("Every image is saved.", markup=False)
            return
        self.status.set_state("saving the kept images…")
        self._retry_saves()

    @work(thread=True, exit_on_error=False, group="save", exclusive=True)
    def _retry_saves(self) -> None:
        entries, error = self.runner.retry_saves()
        self.post_message(SavesRetried(entries))
        if error is not None:
            self.post_message(SaveFailed(0, error.message, error.hint, len(self.runner.unsaved)))

    @property
    def hung_up(self) -> bool:
        return self._hung_up

    def terminal_lost(self) -> None:
        """The driver saw the terminal go away (end-of-file, EIO, POLLHUP)."""
        self.hangup()

    def hangup(self) -> None:
        """The terminal went away (SIGHUP, or the pty closed): keep the queue in the
        session file, stop the running image without saving a partial one, and quit
        once the device is free, or after HANGUP_GRACE_SECONDS whatever it does."""
        if self._hung_up:
            return
        self._hung_up = True
        self._save_session_now(clean=False, final=True)  # restored paused next time
        self.jobs.take_all()
        self.jobs.cancel_running()
        self.start_exit_deadline()
        if not self.jobs.busy:
            self._leave()
        else:
            self.set_timer(HANGUP_GRACE_SECONDS, self._leave)

    def start_exit_deadline(self) -> None:
        """From any thread, as soon as the terminal is known gone: a model load cannot
        be interrupted and the process must not linger holding the device, so the
        command line's `hard_exit` ends it after HARD_EXIT_SECONDS."""
        with self._deadline_lock:
            if self.hard_exit is None or self._deadline is not None:
                return
            self._deadline = threading.Timer(HARD_EXIT_SECONDS, self._hard_exit_now)
            self._deadline.daemon = True
            self._deadline.start()

    def _hard_exit_now(self) -> None:
        with self.runner.saving:  # never in the middle of writing a PNG
            if self.hard_exit is not None:
                log.warning("leaving after the hang-up without waiting for the worker")
                self.hard_exit()

    def _leave(self) -> None:
        if not self._exit:
            self.exit()

    async def action_quit(self) -> None:
        """Quit. With work queued or running, the first press only says so (a second
        within a few seconds leaves); the queue is kept in the session file for the
        next start, and the running image stops within a step."""
        unsaved = len(self.runner.unsaved)
        if unsaved and not self._quit_warned:
            # Images the gallery could not take live only in memory: ask once.
            self._quit_warned = True
            key = _key_prefix(self.keys.get("retry_save", "alt+s"))
            self.show_error(
                f"{unsaved} image{'s' * (unsaved != 1)} not saved yet: {key} saves again; "
                "quit again to leave without them"
            )
            return
        waiting = len([j for j in self.jobs.pending if not j.is_load])
        running = self.jobs.running is not None and not self.jobs.running.is_load
        now = time.monotonic()
        if (waiting or running) and now - self._quit_armed_at > QUIT_CONFIRM_SECONDS:
            self._quit_armed_at = now
            what = [f"{waiting} waiting"] if waiting else []
            if running:
                what.append("1 generating")
            self.notify(
                f"Work in the queue ({', '.join(what)}): press ctrl+q again to quit. "
                "The queue is kept for the next start; the running image is stopped.",
                title="Quit?",
                severity="warning",
                markup=False,
            )
            return
        self._save_session_now(clean=True, final=True)
        self.jobs.take_all()
        self.jobs.cancel_running()
        self.exit()

    def action_clear_queue(self) -> None:
        dropped = self.jobs.take_all()
        if not dropped:
            self.notify("The queue is empty.", markup=False)
            return
        self._undo.append((dropped, 0))
        self._update_queue()
        key = _key_prefix(self.keys.get("undo_queue", "alt+u"))
        self.notify(
            f"Queue cleared ({len(dropped)} dropped): {key} puts them back.", markup=False
        )

    def action_undo_queue(self) -> None:
        if not self._undo:
            self.notify("Nothing to put back in the queue.", markup=False)
            return
        jobs, position = self._undo.pop()
        self.jobs.put_back(jobs, position)
        self._update_queue()
        self.queue_list.highlight_job(jobs[0].id)
        self.notify(f"{len(jobs)} request{'s' * (len(jobs) != 1)} back in the queue.",
                    markup=False)
        self._pump()

    def action_toggle_pause(self) -> None:
        self.jobs.paused = not self.jobs.paused
        self._update_queue()
        self.status.set_state("queue paused" if self.jobs.paused else "queue running")
        self._pump()

    def action_focus_queue(self) -> None:
        if self.queue_list.jobs:
            self.queue_list.focus()
        else:
            self.notify("The queue is empty.", markup=False)

    def action_redraw(self) -> None:
        """Clear the terminal and paint every cell again (after line noise over SSH)."""
        driver = self._driver
        if driver is not None and not self.is_headless:
            driver.write("\x1b[2J")
        self.screen.refresh(layout=True)

    def action_steps_up(self) -> None:
        self.params.bump_steps(1)

    def action_steps_down(self) -> None:
        self.params.bump_steps(-1)

    def action_cfg_up(self) -> None:
        self.params.bump_cfg(0.5)

    def action_cfg_down(self) -> None:
        self.params.bump_cfg(-0.5)

    def action_reroll_seed(self) -> None:
        self.params.reroll_seed()

    # -- styles: always visible while they apply ------------------------------

    @property
    def active_styles(self) -> list[str]:
        return self._active_styles

    @active_styles.setter
    def active_styles(self, names: list[str]) -> None:
        self._active_styles = list(names)
        self._show_styles()

    def _show_styles(self) -> None:
        try:
            editor = self.prompt_editor
        except Exception:  # before the screen is mounted: shown once it is
            return
        if self._active_styles:
            key = _key_prefix(self.keys.get("styles_off", "alt+o"))
            editor.border_title = Text(
                f"styles on: {', '.join(self._active_styles)} ({key} off)", style="bold"
            )
        else:
            editor.border_title = None
        self.session_changed()

    def action_styles_off(self) -> None:
        if not self._active_styles:
            self.notify("No style is applied.", markup=False)
            return
        self.active_styles = []
        self.notify("Styles off: the prompt is used as written.", markup=False)

    def action_toggle_seed_lock(self) -> None:
        params = self.params
        if not params.seed_locked and params.value("seed") in ("", "-1"):
            params.reroll_seed()  # locking nothing would refuse the next generate
        params.seed_locked = not params.seed_locked

    def action_cycle_scheduler(self) -> None:
        self.params.cycle_scheduler()

    def action_cycle_size(self) -> None:
        self.params.cycle_size()

    def action_prompt_older(self) -> None:
        prompt = self.recall.older(self.prompt_editor.text)
        if prompt is not None:
            self._set_prompt(prompt)

    def action_prompt_newer(self) -> None:
        prompt = self.recall.newer()
        if prompt is not None:
            self._set_prompt(prompt)

    def _set_prompt(self, text: str) -> None:
        editor = self.prompt_editor
        editor.load_text(text)
        editor.move_cursor(editor.document.end)

    def _entry_gone(self, entry: Any) -> bool:
        """True when the entry's image has left the gallery (deleted in the gallery
        browser or by hand): it leaves the history too, and the user is told."""
        path = getattr(entry, "path", None)
        if entry is None or path is None or path.exists():
            return False
        self.history.set_entries([e for e in self.history.entries if e is not entry])
        self.show_error(f"{path.name} is no longer in the gallery; taken off the history")
        return True

    def action_remix(self) -> None:
        entry = self.history.selected_entry
        if self._entry_gone(entry):
            return
        if entry is None or entry.request is None:
            self.show_error("Pick a history entry with settings first (f2 moves to the history).")
            return
        self.remix_request(entry.request.replace(seed=entry.remix_seed, count=1))

    def action_variations(self) -> None:
        entry = self.history.selected_entry
        if self._entry_gone(entry):
            return
        if entry is None or entry.request is None:
            self.show_error("Pick a history entry with settings first (f2 moves to the history).")
            return
        for _ in range(VARIATIONS):
            self.submit(entry.request.replace(seed=random.randint(0, MAX_SEED), count=1))
        self.notify(f"{VARIATIONS} variations queued.", markup=False)

    def action_img2img(self) -> None:
        entry = self.history.selected_entry
        if entry is None:
            self.show_error("Pick a history image first (f2 moves to the history).")
            return
        self.img2img_from(entry)

    def img2img_from(self, entry: Any) -> None:
        """Load an image's settings with the image itself as the init image (the gallery too)."""
        from sdtui.images import open_image, snap_size

        try:
            size = snap_size(*open_image(entry.path, "image").size)  # its pixels, not settings
            request = (entry.request or self.build_request()).replace(
                init_image=str(entry.path), init_image_sha256=None, mask=None, mask_sha256=None,
                outpaint=(), hires_scale=None, count=1, width=size[0], height=size[1],
                strength=self.params.value("strength") or 0.75,  # the chosen strength stays
            )  # fmt: skip
        except ValidationError as exc:
            self.show_error(str(exc))
            return
        self.remix_request(request)
        self.status.set_state(f"img2img from {entry.path.name}")

    def action_strength_up(self) -> None:
        self.params.bump_strength(0.05)

    def action_strength_down(self) -> None:
        self.params.bump_strength(-0.05)

    def action_focus_history(self) -> None:
        self.history.focus()

    def action_focus_prompt(self) -> None:
        self.prompt_editor.focus()

    def action_gallery(self) -> None:
        if importlib.util.find_spec("sdtui.tui.gallery_screen") is None:
            self.notify("The gallery browser is not installed.", severity="warning")
            return
        from sdtui.tui import gallery_screen

        self.push_screen(gallery_screen.GalleryScreen())

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(dict(self.keys)))

    # -- command palette -----------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Each action of the main screen's table once, with its key; of Textual's own,
        those the table does not already hold (its Quit and Keys would double ours)."""
        ours = screen is self.studio
        for command in super().get_system_commands(screen):
            if not (ours and command.title in ("Quit", "Keys")):
                yield command
        if not ours:
            return
        for action in KEY_ACTIONS:
            if action.action == "command_palette":
                continue
            key = _key_prefix(self.keys.get(action.action, action.key))
            yield SystemCommand(
                action.description,
                escape(f"{action.help}  [{key}]"),  # help is markup: keep the brackets
                partial(self.run_action, action.action),
            )
