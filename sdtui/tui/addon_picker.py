"""The LoRA and embedding picker: search both folders as you type, see each file's
family, size and trigger words, and insert `<lora:name:1>` (or an embedding's name)
at the prompt editor's cursor.

`AddonPickerMixin` goes before `App` in the app's bases; it needs the app's
`settings`, `prompt_editor`, `negative_editor` and `notify`.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from sdtui.addons import (
    LORA_HASHES,
    TI_HASHES,
    AddonFile,
    AddonFolders,
    AddonLibrary,
    family_name,
    restore_addons,
)
from sdtui.params import GenerationRequest
from sdtui.prompts.loras import LORA_TAG, format_lora_tag


def _size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / 1024 / 1024:.1f} MB"
    return f"{size / 1024:.0f} KB" if size >= 1024 else f"{size} B"


def insertion(item: AddonFile) -> str:
    """What picking `item` writes into the prompt."""
    return format_lora_tag(item.name) if item.kind == "lora" else item.name


def matches(item: AddonFile, query: str) -> bool:
    """Every word of `query` is in the name, path, family or trigger words (any case)."""
    haystack = " ".join(
        [item.name, str(item.path), family_name(item.family) if item.family else ""]
        + list(item.triggers)
    ).lower()
    return all(word in haystack for word in query.lower().split())


class AddonPickerScreen(ModalScreen["AddonFile | None"]):
    """Type to search; ↑/↓ choose; Enter inserts; Escape leaves the prompt alone."""

    DEFAULT_CSS = """
    AddonPickerScreen { align: center middle; }
    AddonPickerScreen > Vertical {
        width: 90%; max-width: 120; height: auto; max-height: 90%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    AddonPickerScreen OptionList { height: auto; max-height: 18; }
    AddonPickerScreen #addon-detail { color: $text-muted; height: auto; max-height: 4; }
    """
    BINDINGS = [
        Binding("escape", "close", "Cancel"),
        Binding("down", "move(1)", show=False, priority=True),
        Binding("up", "move(-1)", show=False, priority=True),
        Binding("enter", "pick", "Insert", priority=True),
    ]

    def __init__(self, files: list[AddonFile], folders: AddonFolders) -> None:
        super().__init__()
        self.files = files
        self.folders = folders
        self.shown: list[AddonFile] = list(files)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("LoRAs and embeddings  (type to search · enter inserts · escape cancels)")
            yield Input(placeholder="search names and trigger words", id="addon-search")
            yield OptionList(id="addon-list")
            yield Static("", id="addon-detail", markup=False)

    def on_mount(self) -> None:
        self._fill()
        self.query_one(Input).focus()

    def _fill(self) -> None:
        options = self.query_one(OptionList)
        options.clear_options()
        if not self.shown:
            where = f"{self.folders.loras} or {self.folders.embeddings}"
            text = "no match" if self.files else f"nothing in {where}"
            options.add_option(Option(Text(text), disabled=True))
            self._detail(None)
            return
        options.add_options(Option(self._line(item)) for item in self.shown)
        options.highlighted = 0
        self._detail(self.shown[0])

    def _line(self, item: AddonFile) -> Text:
        kind = "LoRA " if item.kind == "lora" else "embed"
        family = family_name(item.family) if item.family else "?"
        line = Text(f"{kind}  ", style="dim")
        line.append(item.name, style="bold")
        line.append(f"  {family}  {_size(item.size)}", style="dim")
        if item.error:
            line.append(f"  {item.error}", style="red")
        elif item.triggers:
            line.append("  " + ", ".join(item.triggers[:5]))
        return line

    def _detail(self, item: AddonFile | None) -> None:
        text = ""
        if item is not None:
            text = str(item.path)
            if item.triggers:
                text += "\ntriggers: " + ", ".join(item.triggers)
        self.query_one("#addon-detail", Static).update(text)

    def on_input_changed(self, event: Input.Changed) -> None:
        self.shown = [item for item in self.files if matches(item, event.value)]
        self._fill()

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if 0 <= event.option_index < len(self.shown):
            self._detail(self.shown[event.option_index])

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.action_pick()

    def action_move(self, delta: int) -> None:
        options = self.query_one(OptionList)
        if self.shown:
            current = options.highlighted or 0
            options.highlighted = max(0, min(len(self.shown) - 1, current + delta))

    def action_pick(self) -> None:
        index = self.query_one(OptionList).highlighted
        if self.shown and index is not None and 0 <= index < len(self.shown):
            self.dismiss(self.shown[index])

    def action_close(self) -> None:
        self.dismiss(None)


class AddonPickerMixin:
    """Action `pick_addon`, the app's `addon_library`, and `relink_addons_for_remix`."""

    _addon_library: AddonLibrary | None = None

    @property
    def addon_library(self) -> AddonLibrary:
        if self._addon_library is None:
            app: Any = self
            self._addon_library = AddonLibrary(AddonFolders.from_settings(app.settings))
        return self._addon_library

    def lora_name_known(self, tag: str) -> bool:
        """Whether a `<lora:name...>` tag names a file of the LoRA folder (the editor flags
        the others as you type). File names only: no header is read."""
        match = LORA_TAG.fullmatch(tag)
        if match is None:
            return True
        name = match.group(1).partition(":")[0].strip().lower()
        return name in self.addon_library.names("lora")

    def action_pick_addon(self) -> None:
        app: Any = self
        library = self.addon_library
        files = library.files("lora") + library.files("embedding")
        files.sort(key=lambda f: f.name.lower())
        target = app.negative_editor if app.focused is app.negative_editor else app.prompt_editor
        app.push_screen(
            AddonPickerScreen(files, library.folders),
            callback=lambda item: self._insert_addon(item, target),
        )

    def _insert_addon(self, item: AddonFile | None, target: Any) -> None:
        app: Any = self
        if item is None:
            return
        if item.kind == "lora":
            target = app.prompt_editor  # LoRA tags work in the prompt only
        text = insertion(item)
        before = target.text[: _offset(target)] if target.text else ""
        if before and not before[-1].isspace():
            text = " " + text
        target.insert(text)
        target.focus()

    def relink_addons_for_remix(self, request: GenerationRequest) -> None:
        """Find the LoRAs and embeddings a remixed image names: by name, else by the hash
        its metadata recorded. Hashing reads whole files, so it runs on a worker; the
        editors then take the local names, unless they were edited meanwhile, and the
        files found neither way are named."""
        extras = dict(request.extras)
        if not (LORA_TAG.search(request.prompt) or LORA_HASHES in extras or TI_HASHES in extras):
            return
        self._relink_addons(request)

    @work(thread=True, exit_on_error=False, group="relink-addons", exclusive=True)
    def _relink_addons(self, request: GenerationRequest) -> None:
        app: Any = self
        try:
            restored, missing = restore_addons(request, self.addon_library)
        except Exception as exc:  # a remix must never fail for want of a LoRA folder
            app.call_from_thread(
                app.notify, f"LoRAs not checked: {exc}", severity="warning", markup=False
            )
            return
        app.call_from_thread(self._relinked, request, restored, missing)

    def _relinked(
        self, original: GenerationRequest, restored: GenerationRequest, missing: list[str]
    ) -> None:
        app: Any = self
        untouched = (app.prompt_editor.text, app.negative_editor.text) == (
            original.prompt,
            original.negative_prompt,
        )
        if untouched and restored is not original:
            app.prompt_editor.load_text(restored.prompt)
            app.negative_editor.load_text(restored.negative_prompt)
        if missing:
            app.notify("Not found here: " + ", ".join(missing), severity="warning", markup=False)


def _offset(area: Any) -> int:
    """The cursor's position in `area.text` as a character offset."""
    row, column = area.cursor_location
    lines = area.text.split("\n")
    return sum(len(line) + 1 for line in lines[:row]) + column
