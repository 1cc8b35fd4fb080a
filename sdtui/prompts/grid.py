"""X/Y grids: vary one or two settings over lists of values and lay the images out, labelled.

`parse_axis("steps=4,8,16")` reads an axis; `plan_grid` turns a request and
axes into one request per cell (all with the same seed unless seed is an
axis); `assemble_grid` puts the finished images into one labelled picture;
`save_grid` files it in the gallery with the grid described in its metadata.
Pillow is imported only when a grid is drawn.
"""

from __future__ import annotations

import csv
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sdtui.errors import ValidationError
from sdtui.params import MAX_SEED, GenerationRequest

if TYPE_CHECKING:
    from PIL.Image import Image

    from sdtui.gallery.entry import GalleryEntry
    from sdtui.gallery.store import GalleryStore
    from sdtui.results import GenerationResult

MAX_CELLS = 100
GRID_KEY = "XY grid"
CELL_KEY = "XY cell"

# axis name -> (request field, label); "prompt" is search and replace in the prompt.
AXES: dict[str, tuple[str, str]] = {
    "seed": ("seed", "Seed"),
    "steps": ("steps", "Steps"),
    "cfg": ("cfg", "CFG"),
    "scheduler": ("scheduler", "Sampler"),
    "prompt": ("prompt", "Prompt S/R"),
    "width": ("width", "Width"),
    "height": ("height", "Height"),
}
_ALIASES = {
    "sampler": "scheduler",
    "cfg scale": "cfg",
    "guidance": "cfg",
    "prompt s/r": "prompt",
    "sr": "prompt",
    "s/r": "prompt",
}


@dataclass(frozen=True)
class Axis:
    """One varied setting. For "prompt", values[0] is the text searched for in the prompt."""

    name: str
    values: tuple[str, ...]

    @property
    def label(self) -> str:
        return AXES[self.name][1]

    def describe(self) -> str:
        return f"{self.name}=" + ",".join(_quote(v) for v in self.values)

    def apply(self, request: GenerationRequest, value: str) -> GenerationRequest:
        field = AXES[self.name][0]
        if self.name == "prompt":
            return request.replace(prompt=request.prompt.replace(self.values[0], value))
        return request.replace(**{field: value})

    def cell_label(self, value: str) -> str:
        return f"{self.label}: {value}" if self.name != "prompt" else value


def _quote(value: str) -> str:
    return f'"{value}"' if "," in value or '"' in value else value


def parse_axis(text: str) -> Axis:
    """Read `name=v1,v2,...` (values may be quoted: `prompt="a cat","a dog, small"`)."""
    name, sep, rest = str(text).partition("=")
    key = " ".join(name.strip().lower().split())
    key = _ALIASES.get(key, key)
    if not sep or key not in AXES:
        raise ValidationError(
            "xy",
            f"{text!r} is not NAME=VALUES; NAME is one of {', '.join(AXES)} (e.g. steps=10,20,30)",
        )
    try:
        row = next(csv.reader([rest], skipinitialspace=True), [])
    except csv.Error as exc:
        raise ValidationError("xy", f"cannot read the values of {name.strip()}: {exc}") from None
    values = tuple(v.strip() for v in row if v.strip())
    if not values:
        raise ValidationError("xy", f"{name.strip()} has no values (e.g. {key}=1,2,3)")
    if len(set(values)) != len(values):
        raise ValidationError("xy", f"{name.strip()} lists a value twice")
    if key == "prompt" and len(values) < 2:
        raise ValidationError("xy", "prompt S/R needs the text to find and at least one other")
    return Axis(key, values)


@dataclass(frozen=True)
class GridCell:
    x: int
    y: int
    request: GenerationRequest


@dataclass(frozen=True)
class GridPlan:
    base: GenerationRequest
    x: Axis
    y: Axis | None
    cells: tuple[GridCell, ...]  # row by row: y outer, x inner

    @property
    def columns(self) -> int:
        return len(self.x.values)

    @property
    def rows(self) -> int:
        return len(self.y.values) if self.y else 1

    def describe(self) -> str:
        text = f"X: {self.x.describe()}"
        return text + (f"; Y: {self.y.describe()}" if self.y else "")


def plan_grid(base: GenerationRequest, x: Axis, y: Axis | None = None) -> GridPlan:
    """One single-image request per cell; a bad value is refused naming its axis."""
    if y is not None and y.name == x.name:
        raise ValidationError("xy", f"X and Y both vary {x.name}; choose two different settings")
    cells_count = len(x.values) * (len(y.values) if y else 1)
    if cells_count > MAX_CELLS:
        raise ValidationError("xy", f"the grid has {cells_count} cells; the limit is {MAX_CELLS}")
    for axis in (x, y):
        if axis is not None and axis.name == "prompt" and axis.values[0] not in base.prompt:
            raise ValidationError(
                "xy", f"prompt S/R: {axis.values[0]!r} does not occur in the prompt"
            )
    seed = base.seed if base.seed is not None else secrets.randbelow(MAX_SEED + 1)
    start = base.replace(seed=seed, count=1)
    cells = []
    for yi, y_value in enumerate(y.values if y else [""]):
        for xi, x_value in enumerate(x.values):
            request = start
            try:
                request = x.apply(request, x_value)
                if y is not None:
                    request = y.apply(request, y_value)
            except ValidationError as exc:
                raise ValidationError("xy", f"{exc}") from None
            extras = dict(request.extras)
            cell = x.cell_label(x_value) + (f", {y.cell_label(y_value)}" if y else "")
            extras[CELL_KEY] = cell
            cells.append(GridCell(xi, yi, request.replace(extras=tuple(extras.items()))))
    return GridPlan(start, x, y, tuple(cells))


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _wrap(text: str, font: Any, width: int) -> list[str]:
    """Lines of `text` no wider than `width` pixels (long words are cut)."""
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if font.getlength(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        while font.getlength(word) > width and len(word) > 1:
            cut = len(word)
            while cut > 1 and font.getlength(word[:cut]) > width:
                cut -= 1
            lines.append(word[:cut])
            word = word[cut:]
        current = word
    if current:
        lines.append(current)
    return lines or [""]


def assemble_grid(plan: GridPlan, images: Sequence[Image]) -> Image:
    """The cells' images (in `plan.cells` order) in one picture with X labels on top
    and Y labels on the left, drawn with Pillow's default font."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    if len(images) != len(plan.cells):
        raise ValueError(f"the grid has {len(plan.cells)} cells but {len(images)} images")
    cell_w = max(im.width for im in images)
    cell_h = max(im.height for im in images)
    size = max(12, min(32, cell_w // 10))
    font = _font(size)
    line_h = int(size * 1.25)
    pad = max(4, size // 3)
    x_lines = [_wrap(plan.x.cell_label(v), font, cell_w - 2 * pad) for v in plan.x.values]
    top = pad * 2 + line_h * max(len(lines) for lines in x_lines)
    left = 0
    y_lines: list[list[str]] = []
    if plan.y is not None:
        label_w = max(cell_w, 8 * size)
        y_lines = [_wrap(plan.y.cell_label(v), font, label_w) for v in plan.y.values]
        widest = max(font.getlength(line) for lines in y_lines for line in lines)
        left = int(widest) + 2 * pad
    grid = PILImage.new("RGB", (left + cell_w * plan.columns, top + cell_h * plan.rows), "white")
    draw = ImageDraw.Draw(grid)
    for xi, lines in enumerate(x_lines):
        for n, line in enumerate(lines):
            x0 = left + xi * cell_w + (cell_w - font.getlength(line)) / 2
            draw.text((x0, pad + n * line_h), line, fill="black", font=font)
    for yi, lines in enumerate(y_lines):
        y0 = top + yi * cell_h + (cell_h - line_h * len(lines)) / 2
        for n, line in enumerate(lines):
            draw.text(
                (left - pad - font.getlength(line), y0 + n * line_h), line, fill="black", font=font
            )
    for cell, image in zip(plan.cells, images, strict=True):
        grid.paste(image.convert("RGB"), (left + cell.x * cell_w, top + cell.y * cell_h))
    return grid


def grid_request(plan: GridPlan) -> GenerationRequest:
    """The request recorded with the grid picture: the base settings and the axes."""
    extras = dict(plan.base.extras)
    extras[GRID_KEY] = plan.describe()
    return plan.base.replace(extras=tuple(extras.items()))


def save_grid(
    gallery: GalleryStore, plan: GridPlan, grid: Image, results: Sequence[GenerationResult]
) -> GalleryEntry:
    """File the grid picture in the gallery (the cells are saved as they finish)."""
    from sdtui.results import GeneratedImage, GenerationResult

    first = results[0]
    request = grid_request(plan)
    assert request.seed is not None  # plan_grid always fixes the seed
    generated = GeneratedImage(image=grid, seed=request.seed, index=0, request=request)
    result = GenerationResult(
        request=request,
        images=[generated],
        model_id=first.model_id,
        device=first.device,
        dtype=first.dtype,
        generate_seconds=sum(r.generate_seconds for r in results),
        info={"grid": plan.describe()},
    )
    return gallery.save(generated, result)
