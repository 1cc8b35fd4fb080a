"""Reading a server-sent event stream (what `GET /v1/jobs/{id}/events` answers)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any


def parse_sse(lines: Iterable[str]) -> Iterator[tuple[int | None, dict[str, Any]]]:
    """(id, JSON data) of each event in `lines`; comments (keep-alives) are skipped."""
    data: list[str] = []
    event_id: int | None = None
    for line in lines:
        line = line.rstrip("\r\n")
        if not line:
            if data:
                yield event_id, json.loads("\n".join(data))
            data, event_id = [], None
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            elif name == "id" and value.isdigit():
                event_id = int(value)
    if data:
        yield event_id, json.loads("\n".join(data))
