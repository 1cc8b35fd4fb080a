"""Shell-like recall of earlier prompts: older/newer, with the unsent draft kept."""

from __future__ import annotations

from collections.abc import Iterable


class PromptRecall:
    """Prompts newest first; `older()`/`newer()` walk them, the draft is the end stop."""

    def __init__(self, prompts: Iterable[str] = ()) -> None:
        self._prompts: list[str] = []
        self._pos = -1  # -1: editing the draft
        self._draft = ""
        self.extend_older(prompts)

    def extend_older(self, prompts: Iterable[str]) -> None:
        """Add prompts older than every known one (e.g. from the gallery, newest first)."""
        for prompt in prompts:
            if prompt and prompt not in self._prompts:
                self._prompts.append(prompt)

    def add(self, prompt: str) -> None:
        """Remember a prompt just sent; it becomes the newest, and recall restarts."""
        if not prompt.strip():
            return
        if prompt in self._prompts:
            self._prompts.remove(prompt)
        self._prompts.insert(0, prompt)
        self._pos = -1

    def older(self, current: str) -> str | None:
        """The prompt before the one shown, or None at the oldest."""
        if self._pos + 1 >= len(self._prompts):
            return None
        if self._pos == -1:
            self._draft = current
        self._pos += 1
        return self._prompts[self._pos]

    def newer(self) -> str | None:
        """The prompt after the one shown; the saved draft after the newest; None at the draft."""
        if self._pos == -1:
            return None
        self._pos -= 1
        return self._draft if self._pos == -1 else self._prompts[self._pos]

    def __len__(self) -> int:
        return len(self._prompts)
