"""Pages of query results: the one way list endpoints count and cut their rows (`page`/`per_page`)."""

from __future__ import annotations

import sqlalchemy as sa

from app.extensions import db


def page_of(stmt: sa.Select, *, page: int, per_page: int, scalars: bool = True) -> tuple[list, int]:
    """Page `page` (from 1) of the ordered `stmt`, and how many rows it has in all.

    `scalars` gives the first column of each row (the entity); otherwise whole rows (entity plus joined columns).
    """
    total = db.session.scalar(sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery()))
    window = stmt.limit(per_page).offset((page - 1) * per_page)
    rows = db.session.scalars(window).all() if scalars else db.session.execute(window).all()
    return list(rows), total
