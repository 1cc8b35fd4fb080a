"""The app's key bindings: one table drives the footer, the help screen and the palette.

Each action has a binding id equal to its name, so `[keys]` in the config file
can rebind it through Textual's keymap (`action = "key"`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from textual.binding import Binding


@dataclass(frozen=True)
class KeyAction:
    action: str  # screen action name, also the binding id used by [keys]
    key: str  # default key(s), comma separated
    description: str  # short label for the footer
    help: str  # one line for the help screen and the command palette
    show: bool = True  # shown in the footer
    # Chords that TextArea/Input do not use are made priority bindings so they
    # work from every field; Escape is not, so dropdowns and dialogs keep it.
    priority: bool = True


# Ctrl+B and Ctrl+A are left alone: they are the tmux and screen prefixes, and
# people run sdtui inside those over SSH.
KEY_ACTIONS: tuple[KeyAction, ...] = (
    KeyAction("generate", "ctrl+g", "Generate", "Queue a generation from the prompt and settings"),
    KeyAction(
        "cancel", "escape", "Cancel", "Stop the running generation (nothing is saved)", True, False
    ),
    KeyAction("help", "f1", "Help", "Show every key"),
    KeyAction("redraw", "ctrl+l", "Redraw", "Paint the whole screen again", False),
    KeyAction("gallery", "ctrl+o", "Gallery", "Open the gallery browser"),
    KeyAction(
        "clear_queue", "f8", "Clear queue", "Drop every request waiting in the queue (undo: alt+u)"
    ),
    KeyAction(
        "undo_queue", "alt+u", "Undo", "Put back what was last removed from the queue", False
    ),
    KeyAction("toggle_pause", "alt+p", "Pause", "Pause or resume the queue", False),
    KeyAction(
        "focus_queue",
        "alt+q",
        "Queue",
        "Move to the queue (x remove, shift+↑/↓ move, enter edit)",
        False,
    ),
    KeyAction(
        "retry_save",
        "alt+s",
        "Save again",
        "Save again the images kept in memory when the gallery could not take them",
        False,
    ),
    KeyAction("steps_up", "alt+up", "Steps+", "Add 1 step", False),
    KeyAction("steps_down", "alt+down", "Steps-", "Remove 1 step", False),
    KeyAction("cfg_up", "alt+right", "CFG+", "Raise guidance by 0.5", False),
    KeyAction("cfg_down", "alt+left", "CFG-", "Lower guidance by 0.5", False),
    KeyAction("reroll_seed", "ctrl+r", "Re-roll", "Pick a new random seed"),
    KeyAction("toggle_seed_lock", "alt+l", "Lock seed", "Keep the seed between generations"),
    KeyAction("cycle_scheduler", "ctrl+t", "Scheduler", "Switch to the next scheduler"),
    KeyAction("cycle_size", "ctrl+n", "Size", "Switch to the next size preset for the model"),
    KeyAction("prompt_older", "ctrl+up", "Older prompt", "Recall the previous prompt", False),
    KeyAction("prompt_newer", "ctrl+down", "Newer prompt", "Recall the next prompt", False),
    KeyAction("remix", "f5", "Remix", "Load every setting of the selected history entry"),
    KeyAction(
        "variations", "f4", "Variations", "Queue 4 images with the selected entry's settings"
    ),
    KeyAction("focus_history", "f2", "History", "Move to the history list", False),
    KeyAction("focus_prompt", "f3", "Prompt", "Move to the prompt editor", False),
    KeyAction("expand_prompt", "f6", "Expand", "Grow the prompt with the expander model"),
    KeyAction("pick_styles", "f7", "Styles", "Choose the styles applied to the prompt"),
    KeyAction("pick_preset", "f9", "Presets", "Apply a saved set of settings", False),
    KeyAction(
        "save_preset", "ctrl+s", "Save preset", "Save the current settings as a preset", False
    ),
    KeyAction(
        "queue_combinations",
        "alt+w",
        "Combinations",
        "Queue every combination of the prompt's wildcards",
        False,
    ),
)

ACTION_NAMES = frozenset(a.action for a in KEY_ACTIONS)


def screen_bindings() -> list[Binding]:
    """Textual bindings for the main screen, built from KEY_ACTIONS."""
    bindings = [
        Binding(
            a.key,
            f"app.{a.action}",
            a.description,
            show=a.show,
            priority=a.priority,
            id=a.action,
            tooltip=a.help,
        )
        for a in KEY_ACTIONS
    ]
    # "?" opens help too, but only where it is not typed into a text field.
    bindings.append(Binding("question_mark", "app.help", "Help", show=False))
    return bindings


def keymap_from_config(section: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Turn the config's [keys] table into a Textual keymap; returns (keymap, problems)."""
    keymap: dict[str, str] = {}
    problems: list[str] = []
    for action, key in section.items():
        if action not in ACTION_NAMES:
            problems.append(
                f"[keys] {action!r} is not an action; known: {', '.join(sorted(ACTION_NAMES))}"
            )
        elif not isinstance(key, str) or not key.strip():
            problems.append(f'[keys] {action} must be a key name such as "ctrl+g"')
        else:
            keymap[action] = ",".join(part.strip() for part in key.split(",") if part.strip())
    return keymap, problems
