"""A terminal driver that notices when the terminal goes away.

When an SSH link drops or `tmux kill-session` closes the pseudo-terminal, the
kernel hangs it up: reads return end-of-file, writes fail with EIO, and poll
reports POLLHUP. Textual's own driver then spins its input thread on the
end-of-file and its writer thread dies on the first EIO, after which the app
blocks for ever on the writer's full queue. This driver drops every write once
the terminal is gone, stops the input thread, and tells the app (its
`terminal_lost` method) so it can cancel the running job and leave.
"""

from __future__ import annotations

import asyncio
import logging
import os
import select
import sys
import threading
from typing import IO, Any

log = logging.getLogger(__name__)

HANGUP_POLL_MS = 250  # how often the watcher looks at the terminal


class GuardedOutput:
    """A text file that swallows writes after the first failure (the terminal is
    gone) and reports that failure once."""

    def __init__(self, file: IO[str], on_lost: Any) -> None:
        self._file = file
        self._on_lost = on_lost
        self.lost = False

    def write(self, text: str) -> int:
        if not self.lost:
            try:
                return self._file.write(text)
            except (OSError, ValueError) as exc:
                self._lose(exc)
        return len(text)

    def flush(self) -> None:
        if not self.lost:
            try:
                self._file.flush()
            except (OSError, ValueError) as exc:
                self._lose(exc)

    def _lose(self, exc: BaseException) -> None:
        self.lost = True
        self._on_lost(f"write failed: {exc}")

    def fileno(self) -> int:
        return self._file.fileno()

    def isatty(self) -> bool:
        return not self.lost and self._file.isatty()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


def driver_class() -> type | None:
    """The hang-up aware driver where Textual uses its Linux driver; None elsewhere."""
    if sys.platform == "win32":
        return None
    from textual.drivers.linux_driver import LinuxDriver

    class HangupAwareDriver(LinuxDriver):
        def __init__(self, app: Any, **kwargs: Any) -> None:
            super().__init__(app, **kwargs)
            output = self._file
            assert output is not None  # Textual writes to the process's stderr
            self._output = GuardedOutput(output, self._terminal_lost)
            # Textual types its output as the process's text file; the guard stands in
            # for it by delegation (write, flush, fileno and the rest).
            self._file = self._output  # type: ignore[assignment]
            self._lost_lock = threading.Lock()
            self._lost = False
            self._event_loop: asyncio.AbstractEventLoop | None = None
            self._watcher: threading.Thread | None = None
            self._closing = False

        def start_application_mode(self) -> None:
            self._event_loop = asyncio.get_running_loop()
            super().start_application_mode()
            if os.isatty(self.fileno) and self._watcher is None:
                self._watcher = threading.Thread(
                    target=self._watch, name="sdtui-hangup-watch", daemon=True
                )
                self._watcher.start()

        def run_input_thread(self) -> None:
            try:
                super().run_input_thread()
            except OSError as exc:  # EIO: the terminal is gone
                self._terminal_lost(f"read failed: {exc}")

        def _watch(self) -> None:
            poller = select.poll()
            poller.register(self.fileno, select.POLLHUP)
            while not self._lost and not self._closing:
                try:
                    events = poller.poll(HANGUP_POLL_MS)
                except OSError:
                    events = [(self.fileno, select.POLLNVAL)]
                if any(
                    mask & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _, mask in events
                ):
                    self._terminal_lost("hung up")
                    return

        def close(self) -> None:
            self._closing = True
            super().close()

        def _terminal_lost(self, why: str) -> None:
            with self._lost_lock:
                if self._lost:
                    return
                self._lost = True
            log.warning("the terminal went away (%s)", why)
            self._output.lost = True
            self.exit_event.set()  # ends the input thread, which would spin on end-of-file
            deadline = getattr(self._app, "start_exit_deadline", None)
            if deadline is not None:  # from this thread: the event loop may be busy
                deadline()
            loop = self._event_loop
            on_lost = getattr(self._app, "terminal_lost", None)
            if loop is not None and on_lost is not None:
                try:
                    loop.call_soon_threadsafe(on_lost)
                except RuntimeError:  # the loop has closed: the app is leaving anyway
                    pass

    return HangupAwareDriver
