"""Pages of query results: the one way list endpoints count and cut their rows (`page`/`per_page`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa

from app.extensions import db


@dataclass(frozen=True)
class Page:
    """One page of a list: what the `…PageSchema`s present."""

    items: list
    page: int
    per_page: int
    total: int

    def map(self, function: Callable[[Any], Any]) -> Page:
        """The same page with each item passed through `function`."""
        return replace(self, items=[function(item) for item in self.items])

    @classmethod
    def empty(cls, *, page: int, per_page: int) -> Page:
        return cls([], page, per_page, 0)


@dataclass(frozen=True)
class CursorPage:
    """A page of records in order, with the cursor that continues after its last (null at the end): for logs,
    where a count would be slow and offsets shift while records are appended."""

    items: list
    next_cursor: str | None


def page_of(stmt: sa.Select, *, page: int, per_page: int, scalars: bool = True) -> Page:
    """Page `page` (from 1) of the ordered `stmt`, with how many rows it has in all.

    `scalars` gives the first column of each row (the entity); otherwise whole rows (entity plus joined columns).
    """
    offset = (page - 1) * per_page
    if not scalars:
        total = _count(stmt)
        return Page(list(db.session.execute(stmt.limit(per_page).offset(offset)).all()), page, per_page, total)
    # The total rides on the page's own rows (a window count over the whole result, before LIMIT): one query
    # instead of two for every page that has rows, which is every list a phone opens (the second query was a
    # round trip and a scan of its own on each request: docs/benchmarks.md, "The authenticated hot path").
    rows = db.session.execute(stmt.add_columns(sa.func.count().over().label(TOTAL))
                              .limit(per_page).offset(offset)).all()
    if rows:
        return Page([row[0] for row in rows], page, per_page, rows[0][-1])
    return Page([], page, per_page, 0 if page == 1 else _count(stmt))


TOTAL = "zsb_total_rows"


def _count(stmt: sa.Select) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery()))
