"""The app's key bindings: one table per screen drives its footer, its help screen
and the command palette.

Binding ids are scoped by screen (`main.remix`, `gallery.remix`), so the config's
`[keys]` table rebinds the main screen only and `[keys.gallery]` /
`[keys.detail]` the gallery list and its large view, through Textual's keymap.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from textual.binding import Binding


@dataclass(frozen=True)
class KeyAction:
    action: str  # screen action name; with the screen's scope, the binding id
    key: str  # default key(s), comma separated
    description: str  # short label for the footer and the palette
    help: str  # one line for the help screen and the command palette
    show: bool = True  # shown in the footer (the most used ones); F1 lists all
    # Chords that TextArea/Input do not use are made priority bindings so they
    # work from every field; Escape is not, so dropdowns and dialogs keep it.
    priority: bool = True


MAIN_SCOPE = "main"

# Ctrl+B and Ctrl+A are left alone: they are the tmux and screen prefixes, and
# people run sdtui inside those over SSH. Ctrl+L is the terminal's redraw key.
KEY_ACTIONS: tuple[KeyAction, ...] = (
    KeyAction("generate", "ctrl+g", "Generate", "Queue a generation from the prompt and settings"),
    KeyAction(
        "cancel", "escape", "Cancel", "Stop the running generation (nothing is saved)", True, False
    ),
    KeyAction("help", "f1", "Help", "Show every key"),
    KeyAction("gallery", "ctrl+o", "Gallery", "Open the gallery browser"),
    KeyAction("remix", "f5", "Remix", "Load every setting of the selected history entry"),
    KeyAction("pick_styles", "f7", "Styles", "Choose the styles applied to the prompt", False),
    KeyAction(
        "focus_queue",
        "alt+q",
        "Queue",
        "Move to the queue (x remove, shift+↑/↓ move, enter edit)",
    ),
    KeyAction("quit", "ctrl+q", "Quit", "Quit (asks first while work is queued)", False),
    KeyAction(
        "command_palette", "ctrl+p", "Palette", "Command palette: every action, themes", False
    ),
    KeyAction("redraw", "ctrl+l", "Redraw", "Paint the whole screen again", False),
    KeyAction(
        "variations", "f4", "Variations", "Queue 4 images with the selected entry's settings", False
    ),
    KeyAction("focus_history", "f2", "History", "Move to the history list", False),
    KeyAction("focus_prompt", "f3", "Prompt", "Move to the prompt editor", False),
    KeyAction("expand_prompt", "f6", "Expand", "Grow the prompt with the expander model", False),
    KeyAction(
        "pick_addon", "f10", "LoRAs", "Insert a LoRA or embedding from their folders at the cursor"
    ),
    KeyAction(
        "img2img", "alt+i", "Img2img", "Start from the selected history image (img2img)", False
    ),
    KeyAction("strength_up", "alt+pageup", "Strength+", "Repaint more in img2img", False),
    KeyAction("strength_down", "alt+pagedown", "Strength-", "Repaint less in img2img", False),
    KeyAction("styles_off", "alt+o", "Styles off", "Turn every applied style off", False),
    KeyAction("pick_preset", "f9", "Presets", "Apply a saved set of settings", False),
    KeyAction(
        "save_preset", "ctrl+s", "Save preset", "Save the current settings as a preset", False
    ),
    KeyAction(
        "clear_queue",
        "f8",
        "Clear queue",
        "Drop every request waiting in the queue (undo brings them back)",
        False,
    ),
    KeyAction(
        "undo_queue", "alt+u", "Undo queue", "Put back what was last taken out of the queue", False
    ),
    KeyAction("toggle_pause", "alt+p", "Pause queue", "Pause or resume the queue", False),
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
    KeyAction("reroll_seed", "ctrl+r", "Re-roll", "Pick a new random seed", False),
    KeyAction("toggle_seed_lock", "alt+l", "Lock seed", "Keep the seed between generations", False),
    KeyAction("cycle_scheduler", "ctrl+t", "Scheduler", "Switch to the next scheduler", False),
    KeyAction(
        "cycle_size", "ctrl+n", "Size", "Switch to the next size preset for the model", False
    ),
    KeyAction("prompt_older", "ctrl+up", "Older prompt", "Recall the previous prompt", False),
    KeyAction("prompt_newer", "ctrl+down", "Newer prompt", "Recall the next prompt", False),
    KeyAction(
        "queue_combinations",
        "alt+w",
        "Combinations",
        "Queue every combination of the prompt's wildcards",
        False,
    ),
)

# Keys of the lists on the main screen (not rebindable): shown by F1 as well.
LIST_KEYS: tuple[tuple[str, str], ...] = (
    ("tab / shift+tab", "Move between fields"),
    ("↑ ↓ / j k", "Move in the history and the queue"),
    ("enter / r · v", "In the history: remix · variations"),
    ("x · shift+↑/↓ · enter", "In the queue: remove · move · back into the editor"),
    ("?", "Help, where no text field has the focus"),
)

ACTION_NAMES = frozenset(a.action for a in KEY_ACTIONS)


def binding_id(scope: str, action: str) -> str:
    return f"{scope}.{action}"


def scoped_bindings(scope: str, keys: Iterable[KeyAction], prefix: str = "") -> list[Binding]:
    """Textual bindings for one screen's table; `prefix` is "app." where the actions
    are the app's."""
    return [
        Binding(
            k.key,
            f"{prefix}{k.action}",
            k.description,
            show=k.show,
            priority=k.priority,
            id=binding_id(scope, k.action),
            tooltip=k.help,
        )
        for k in keys
    ]


def screen_bindings() -> list[Binding]:
    """Textual bindings for the main screen, built from KEY_ACTIONS."""
    bindings = scoped_bindings(MAIN_SCOPE, KEY_ACTIONS, prefix="app.")
    # "?" opens help too, but only where it is not typed into a text field.
    bindings.append(Binding("question_mark", "app.help", "Help", show=False))
    return bindings


def keymap_from_config(
    section: Mapping[str, Any], tables: Mapping[str, Sequence[KeyAction]] | None = None
) -> tuple[dict[str, str], list[str]]:
    """Turn the config's [keys] table into a Textual keymap of scoped ids; returns
    (keymap, problems). Plain entries are the main screen's; a sub-table named after
    another screen in `tables` ([keys.gallery]) rebinds that screen's keys only."""
    tables = {MAIN_SCOPE: KEY_ACTIONS, **(tables or {})}
    keymap: dict[str, str] = {}
    problems: list[str] = []

    def add(scope: str, where: str, entries: Mapping[str, Any]) -> None:
        names = {a.action for a in tables[scope]}
        for action, key in entries.items():
            if isinstance(key, Mapping) and scope == MAIN_SCOPE and action in tables:
                add(action, f"[keys.{action}]", key)
            elif action not in names:
                problems.append(
                    f"{where} {action!r} is not an action; known: {', '.join(sorted(names))}"
                )
            elif not isinstance(key, str) or not key.strip():
                problems.append(f'{where} {action} must be a key name such as "ctrl+g"')
            else:
                keys = ",".join(part.strip() for part in key.split(",") if part.strip())
                keymap[binding_id(scope, action)] = keys

    add(MAIN_SCOPE, "[keys]", section)
    return keymap, problems


def keys_for(scope: str, keys: Iterable[KeyAction], keymap: Mapping[str, str]) -> dict[str, str]:
    """action -> key(s) as bound now in one screen (the keymap over the defaults)."""
    return {k.action: keymap.get(binding_id(scope, k.action), k.key) for k in keys}
