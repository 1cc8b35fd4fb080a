"""The gallery as the screen pages through it: one filter, rows fetched a page at a time.

Only the pages that were looked at are held, in a small LRU cache, so memory
stays flat whether the gallery holds a hundred images or a hundred thousand.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

SORTS = ("newest", "oldest")
# (label, days back); None is "any time", 0 is "since midnight".
PERIODS: tuple[tuple[str, int | None], ...] = (
    ("any time", None),
    ("today", 0),
    ("last 7 days", 7),
    ("last 30 days", 30),
    ("last year", 365),
)


@dataclass(frozen=True)
class GalleryFilter:
    """What the list shows: a word search, favourites only, one model, a period, an order."""

    search: str = ""
    favorites: bool = False
    model: str | None = None
    period: int = 0  # index into PERIODS
    sort: str = "newest"

    def since(self, now: datetime | None = None) -> datetime | None:
        days = PERIODS[self.period][1]
        if days is None:
            return None
        now = now or datetime.now().astimezone()
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight - timedelta(days=days)

    def with_changes(self, **changes: Any) -> GalleryFilter:
        return replace(self, **changes)

    def describe(self) -> str:
        """A short line for the filter bar, each part with the key that changes it."""
        parts = [f"o {self.sort} first", f"t {PERIODS[self.period][0]}"]
        parts.append("* favourites only" if self.favorites else "* all images")
        parts.append(f"m model {self.model}" if self.model else "m every model")
        return " · ".join(parts)


class EntryPages:
    """Entries matching one filter, by position; pages are fetched when first needed.

    `rows_fetched` and `queries` count what was read from the index, so the cost
    of scrolling can be checked.
    """

    def __init__(
        self, gallery: Any, filters: GalleryFilter, page_size: int = 100, max_pages: int = 8
    ) -> None:
        self.gallery = gallery
        self.filters = filters
        self.page_size = page_size
        self.max_pages = max_pages
        self._since = filters.since()
        self._pages: OrderedDict[int, list[Any]] = OrderedDict()
        self.rows_fetched = 0
        self.queries = 0
        self.error = ""  # why the last page could not be read
        self.count = int(
            gallery.count(
                search=filters.search,
                favorites=filters.favorites,
                model=filters.model,
                since=self._since,
            )
        )
        self.queries += 1

    def __len__(self) -> int:
        return self.count

    def entry(self, index: int) -> Any | None:
        """The entry at `index` (0 is the first in the chosen order), or None past the end."""
        if not 0 <= index < self.count:
            return None
        number, offset = divmod(index, self.page_size)
        page = self._page(number)
        return page[offset] if offset < len(page) else None

    def cached(self, index: int) -> Any | None:
        """The entry at `index` only if its page is already held (never queries)."""
        number, offset = divmod(index, self.page_size)
        page = self._pages.get(number)
        return page[offset] if page is not None and offset < len(page) else None

    def _page(self, number: int) -> list[Any]:
        page = self._pages.get(number)
        if page is not None:
            self._pages.move_to_end(number)
            return page
        f = self.filters
        try:
            page = self.gallery.list(
                search=f.search,
                favorites=f.favorites,
                model=f.model,
                since=self._since,
                sort=f.sort,
                limit=self.page_size,
                offset=number * self.page_size,
            )
        except Exception as exc:  # drawn as a message in the list; asked again next time
            self.error = str(getattr(exc, "message", exc))
            return []
        self.error = ""
        self.queries += 1
        self.rows_fetched += len(page)
        self._pages[number] = page
        while len(self._pages) > self.max_pages:
            self._pages.popitem(last=False)
        return page

    @property
    def pages_held(self) -> int:
        return len(self._pages)
