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
    total = db.session.scalar(sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery()))
    window = stmt.limit(per_page).offset((page - 1) * per_page)
    rows = db.session.scalars(window).all() if scalars else db.session.execute(window).all()
    return Page(list(rows), page, per_page, total)
