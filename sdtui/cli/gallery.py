"""`sdtui gallery list|show|rebuild|import`: the gallery from scripts and the shell."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from sdtui.cli import common
from sdtui.display import json_for_terminal, path_text, printable
from sdtui.errors import ValidationError

MAX_LIMIT = 1_000_000
MAX_OFFSET = 2**62  # SQLite integers are 64-bit


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="gallery_command", metavar="ACTION", required=True)

    listing = sub.add_parser("list", help="newest images first, optionally filtered")
    listing.add_argument("--search", metavar="WORDS", default="", help="words in the prompt")
    listing.add_argument("--favorites", action="store_true", help="only favourites")
    listing.add_argument("--model", metavar="M", help="only images made with this model")
    listing.add_argument("--limit", metavar="N", default="50", help="at most N (50)")
    listing.add_argument("--offset", metavar="N", default="0", help="skip the first N")
    listing.add_argument(
        "--sort", choices=("newest", "oldest", "relevance"), default="newest", help="order"
    )
    listing.add_argument("--json", action="store_true", help="one JSON object per line")

    show = sub.add_parser("show", help="the settings of one image, by id or path")
    show.add_argument("target", metavar="ID|PATH")
    show.add_argument("--json", action="store_true", help="print JSON")

    sub.add_parser("rebuild", help="make the index again from the image files")

    imp = sub.add_parser("import", help="copy images from other tools into the gallery")
    imp.add_argument("paths", metavar="PATH", nargs="+", help="image files or folders")
    imp.add_argument("--json", action="store_true", help="print the imported entries as JSON")

    for action in (listing, show, sub.choices["rebuild"], imp):
        common.add_gallery_argument(action)


def _open(args: argparse.Namespace, create: bool = False) -> Any:
    """The gallery of the settings; only `import` may create a folder that is not there."""
    from sdtui.gallery import Gallery

    settings = common.settings_from_args(args)
    common.check_gallery_folder(settings)
    root = settings.gallery
    if not create and not root.is_dir():
        raise ValidationError("gallery", f"no gallery folder at {root}")
    return Gallery(root)


def _short(text: str, width: int) -> str:
    text = " ".join(printable(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _list(args: argparse.Namespace) -> int:
    args.limit = common.whole_number("--limit", args.limit, 1, MAX_LIMIT)
    args.offset = common.whole_number("--offset", args.offset, 0, MAX_OFFSET)
    from sdtui.gallery import DiskFullError

    with _open(args) as gallery:
        try:
            gallery.sync()
        except DiskFullError as exc:  # reading still works: list what the index holds
            print(f"sdtui: not updating the index: {exc}", file=sys.stderr)
        filters = {"search": args.search, "favorites": args.favorites, "model": args.model}
        entries = gallery.list(**filters, sort=args.sort, limit=args.limit, offset=args.offset)
        total = gallery.count(**filters)
    if args.json:
        for entry in entries:
            print(json_for_terminal(json.dumps(entry.to_json_dict(), ensure_ascii=False)))
        return 0
    if not entries:
        print("no images match" if total == 0 else f"no images past {args.offset} ({total} match)")
        return 0
    print(f"{'ID':>6}  {'CREATED':16}  {'*':1}  {'SEED':>10}  {'MODEL':18}  PROMPT")
    for e in entries:
        seed = "" if e.seed is None else str(e.seed)
        print(
            f"{e.id:>6}  {e.created:%Y-%m-%d %H:%M}  {'*' if e.favorite else ' '}  {seed:>10}  "
            f"{_short(e.model or '-', 18):18}  {_short(e.prompt or path_text(e.path.name), 60)}"
        )
    if total > len(entries) + args.offset:
        print(f"({len(entries)} of {total}; --offset {args.offset + len(entries)} for more)")
    return 0


def _show(args: argparse.Namespace) -> int:
    from sdtui.gallery import EntryNotFoundError, read_metadata

    target = args.target
    path = Path(target).expanduser()
    with _open(args) as gallery:
        if target.isascii() and target.isdigit() and not _exists(path):
            entry = gallery.get(int(target)) if len(target) <= 19 else None
            if entry is None:
                shown = target if len(target) <= 20 else f"{target[:19]}…"
                raise EntryNotFoundError(f"no image with id {shown} in the gallery")
            path = entry.path
        else:
            if not _exists(path):
                raise ValidationError("image", f"no such file or gallery id: {path_text(target)}")
            entry = gallery.entry_for_path(path)
    data = read_metadata(path).to_json_dict()
    data["path"] = str(path)
    if entry is not None:
        data.update(id=entry.id, favorite=entry.favorite, created=entry.to_json_dict()["created"])
    if args.json:
        print(json_for_terminal(json.dumps(data, ensure_ascii=False)))
        return 0
    if entry is not None:
        print(f"Id: {entry.id}{'  (favourite)' if entry.favorite else ''}")
        print(f"Created: {data['created']}")
    print(f"Path: {path_text(path)}")
    print("\n".join(_settings_lines(data)))
    return 0


def _exists(path: Path) -> bool:
    """Like Path.exists, but a name too long for the file system just does not exist."""
    try:
        return os.path.lexists(path)
    except (OSError, ValueError):
        return False


_LABELS = (
    ("prompt", "Prompt"),
    ("negative_prompt", "Negative prompt"),
    ("steps", "Steps"),
    ("sampler", "Sampler"),
    ("cfg_scale", "CFG scale"),
    ("seed", "Seed"),
    ("width", "Width"),
    ("height", "Height"),
    ("model", "Model"),
)


def _settings_lines(data: dict[str, Any]) -> list[str]:
    lines = []
    for key, label in _LABELS:
        value = data.get(key)
        if value is None or value == "":
            continue
        text = f"{value:g}" if isinstance(value, float) else str(value)
        lines.append(f"{label}: {printable(text).replace(chr(10), chr(10) + '  ')}")
    extras = (data.get("extras") or {}).items()
    lines += [printable(f"{key}: {value}").replace("\n", " ") for key, value in extras]
    lines.append(f"Written by: {data.get('source', 'none')}")
    return lines


def _rebuild(args: argparse.Namespace) -> int:
    with _open(args) as gallery:
        report = gallery.rebuild()
        total = gallery.count()
    for path, reason in report.skipped:
        print(f"skipped {path_text(path)}: {printable(reason)}", file=sys.stderr)
    print(f"indexed {total} images in {path_text(gallery.root)} ({len(report.skipped)} skipped)")
    return 0


def _import(args: argparse.Namespace) -> int:
    with _open(args, create=True) as gallery:
        report = gallery.import_paths([Path(p) for p in args.paths])
    for path, reason in report.skipped:
        print(f"skipped {path_text(path)}: {printable(reason)}", file=sys.stderr)
    if args.json:
        for entry in report.entries:
            print(json_for_terminal(json.dumps(entry.to_json_dict(), ensure_ascii=False)))
    else:
        for entry in report.entries:
            print(f"{entry.id:>6}  {path_text(entry.path)}  ({entry.source})")
        already = f" ({report.unchanged} already in the gallery)" if report.unchanged else ""
        print(f"imported {len(report.entries)}{already}, skipped {len(report.skipped)}")
    if report.skipped and not report.entries:
        # Nothing importable is bad input, unless a copy itself failed (disk full, ...).
        failed = any(reason.startswith("could not") for _, reason in report.skipped)
        return 1 if failed else 2
    return 0


def run(args: argparse.Namespace) -> int:
    actions = {"list": _list, "show": _show, "rebuild": _rebuild, "import": _import}
    return actions[args.gallery_command](args)
