"""The terminal goes away under the real app: the pseudo-terminal is closed, as when
an SSH link drops or `tmux kill-session` runs. No SIGHUP is sent here (the app is
not the terminal's session leader), so only the closed terminal can tell it."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import gallery_pngs
from PIL import Image

from sdtui.tui.session import load_session

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals")

EXIT_LIMIT = 30  # seconds; a hang detector on a busy machine, not a speed test


class TerminalApp:
    """`sdtui --model demo` in a pseudo-terminal that the test can read, type into
    and finally close."""

    def __init__(self, state_dir: Path) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        env = {**os.environ, "OMP_NUM_THREADS": "1", "TERM": "xterm-256color"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sdtui", "--model", "demo", "--renderer", "halfcell"],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
        )
        os.close(slave)
        self.closed = False
        self.screen = b""

    def pump(self, rounds: int, until: Any = lambda: False) -> None:
        """Read what the app draws (it would block on a full terminal otherwise)."""
        for _ in range(rounds):
            if until():
                return
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    self.screen = (self.screen + os.read(self.master, 65536))[-200_000:]
                except OSError:
                    return

    def type(self, data: bytes) -> None:
        os.write(self.master, data)
        self.pump(3)

    def close_terminal(self) -> float:
        os.close(self.master)
        self.closed = True
        return time.monotonic()

    def wait_exit(self) -> int:
        return self.proc.wait(timeout=EXIT_LIMIT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if not self.closed:
            os.close(self.master)


def _write_session(state_dir: Path, prompt: str, steps: int) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    session = {
        "version": 1,
        "prompt": prompt,
        "negative": "",
        "fields": {"model": "demo", "steps": str(steps), "width": "64", "height": "64"},
        "seed_locked": False,
        "queue": [],
        "clean_exit": True,
    }
    (state_dir / "session.json").write_text(json.dumps(session))


def _complete_pngs(gallery_dir: Path) -> list[Path]:
    files = gallery_pngs(gallery_dir)
    for path in files:
        with Image.open(path) as im:
            im.load()  # a truncated file raises here
            assert im.text["parameters"].startswith("a lighthouse")
    return files


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and ".tmp" in p.name]


def test_closing_the_terminal_mid_generation_saves_finished_images_keeps_the_queue_and_exits(
    gallery_dir: Path, demo_model_dir: Path, isolated_dirs: Path
) -> None:
    state_dir = isolated_dirs / "state"
    _write_session(state_dir, "a lighthouse", steps=30)
    term = TerminalApp(state_dir)
    try:
        term.pump(300, until=lambda: b"ready" in term.screen)
        for _ in range(5):  # five images queued
            term.type(b"\x07")  # ctrl+g
        term.pump(3000, until=lambda: bool(gallery_pngs(gallery_dir)))
        assert gallery_pngs(gallery_dir), "the first image never arrived"
        term.close_terminal()  # the second image is being made now
        assert term.wait_exit() == 0
    finally:
        term.stop()
    files = _complete_pngs(gallery_dir)
    assert 1 <= len(files) < 5
    assert _leftovers(gallery_dir) == []
    session, problem = load_session(state_dir / "session.json")
    assert problem == "" and session is not None
    # The images not made wait in the session, to be resumed at the next start.
    assert len(files) + len(session.queue) == 5
    assert not session.clean_exit
    assert (state_dir / "session.json").stat().st_mode & 0o777 == 0o600


def test_closing_the_terminal_while_idle_with_a_dialog_open_exits(
    gallery_dir: Path, demo_model_dir: Path, isolated_dirs: Path
) -> None:
    state_dir = isolated_dirs / "state"
    _write_session(state_dir, "a lighthouse", steps=4)
    term = TerminalApp(state_dir)
    try:
        term.pump(300, until=lambda: b"ready" in term.screen)
        term.type(b"\x1bOP")  # F1: the help dialog
        term.pump(50, until=lambda: b"sdtui keys" in term.screen)
        assert b"sdtui keys" in term.screen
        term.close_terminal()
        assert term.wait_exit() == 0
    finally:
        term.stop()
    assert gallery_pngs(gallery_dir) == []
    session, _ = load_session(state_dir / "session.json")
    assert session is not None and session.prompt == "a lighthouse"
