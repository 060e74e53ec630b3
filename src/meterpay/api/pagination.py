"""Paging for every list operation: ``?limit=`` (1 to 500, default 50), ``?offset=`` (0 to 10**9).

Bounded so that a wild value is a 422 for the client, not an integer overflow in the database.
The answer is ``{"items": [...], "count": N}``.
"""

from __future__ import annotations

from ninja import Field, Schema
from ninja.pagination import LimitOffsetPagination

MAX_LIMIT = 500
MAX_OFFSET = 1_000_000_000


class LimitOffset(LimitOffsetPagination):
    class Input(Schema):
        limit: int = Field(50, ge=1, le=MAX_LIMIT)
        offset: int = Field(0, ge=0, le=MAX_OFFSET)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(max_limit=MAX_LIMIT, **kwargs)  # type: ignore[arg-type]
