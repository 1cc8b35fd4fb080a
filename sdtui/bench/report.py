"""The benchmark's results as a plain-text table for people."""

from __future__ import annotations

from typing import Any


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _mb(value: Any) -> str:
    return "-" if value is None else f"{value:,.0f} MB"


def _noise(row: dict[str, Any]) -> str:
    """Half the spread between the fastest and slowest run, as a +- percentage."""
    return f"{row['spread_pct'] / 2:.1f}%"


def _pct(value: float) -> str:
    return f"{value:+.2f}%"


def format_report(report: dict[str, Any]) -> str:
    lines: list[str] = []
    what = f"--arch {report['arch']} (random weights)" if report.get("arch") else report["model"]
    lines.append(f"sdtui bench: {what}")
    lines.append(
        f"  {report['family']} on {report['device']} ({report['dtype']}, torch {report['torch']}),"
        f" {report['size']}, {report['steps']} steps, {report['scheduler']},"
        f" median of {report['repeats']} interleaved runs"
    )
    lines.append(
        f"  model load {report['load_seconds']:.2f} s;"
        f" first image {report['first_image_seconds']:.3f} s;"
        f" second image (warm) {report['second_image_seconds']:.3f} s"
    )
    lines.append("")
    header = (
        f"  {'':26}{'s/image':>10}{'cpu s':>10}{'±noise':>8}{'it/s':>9}"
        f"{'vs plain':>10}{'target':>11}  peak memory"
    )
    lines.append(header)
    rows = (
        ("plain diffusers", "plain"),
        ("sdtui engine", "engine"),
        ("sdtui engine + previews", "engine_previews"),
    )
    for label, key in rows:
        row = report[key]
        if key == "plain":
            ratio, target = "1.000", ""
        else:
            ratio = _pct(row["overhead_pct"])
            mark = "ok" if row["within_target"] else "OVER"
            target = f"<{row['target_pct']:g}% {mark}"
        lines.append(
            f"  {label:26}{_num(row['seconds_per_image'], 4):>10}"
            f"{_num(row['cpu_seconds_per_image'], 4):>10}{_noise(row):>8}"
            f"{_num(row['it_per_s'], 2):>9}{ratio:>10}{target:>11}  {_mb(row['peak_memory_mb'])}"
        )
    same = report["engine"].get("same_image_as_plain")
    lines.append(f"  same pixels as plain diffusers for the same seed: {'yes' if same else 'NO'}")
    cost = report["preview_cost"]
    lines.append(
        f"  one latent preview frame: {cost['ms_per_frame']:.3f} ms"
        f" = {cost['pct_of_step']:.2f}% of a step"
        f" ({report['engine_previews']['preview_frames']:g} frames an image)"
    )
    lines.append(
        f"  ratios compare {report['compared_by']}; peak memory is {report['memory_measure']}"
    )
    if report["fast_paths"]:
        lines.extend(_fast_path_lines(report["fast_paths"]))
    lines.append("")
    tui = report.get("tui", {})
    if "note" in tui:
        lines.append(f"  TUI: {tui['note']}")
    else:
        lines.append("  TUI (benchmarks/tui_latency.py):")
        lines.extend(f"    {name}: {value}" for name, value in tui.items())
    return "\n".join(lines)


def _fast_path_lines(paths: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    lines.append("")
    lines.append(
        f"  {'fast path':26}{'s/image':>10}{'cpu s':>10}{'±noise':>8}{'it/s':>9}{'time':>10}"
        "  peak memory"
    )
    lines.append(f"  {'(vs the default pipeline)':26}{'':>28}{'':>9}{'ratio':>10}")
    for mode, row in paths.items():
        if row.get("status") != "measured":
            lines.append(f"  {mode:26}{row['status']}")
            continue
        lines.append(
            f"  {mode:26}{_num(row['seconds_per_image'], 4):>10}"
            f"{_num(row['cpu_seconds_per_image'], 4):>10}{_noise(row):>8}"
            f"{_num(row['it_per_s'], 2):>9}{_num(row['time_ratio']):>10}"
            f"  {_mb(row['peak_memory_mb'])}"
            f" (default {_mb(row['default_peak_memory_mb'])})"
        )
        if "compile_seconds" in row:
            lines.append(f"  {'':26}compiling took {row['compile_seconds']:.1f} s")
        if row.get("note"):
            lines.append(f"  {'':26}{row['note']}")
    return lines
