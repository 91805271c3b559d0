"""Parameter types of the ops API that the database must be able to hold.

A row id is a signed 64-bit integer in every backend (``BIGINT`` on PostgreSQL, ``INTEGER``
on SQLite). An id outside that range can name no row; it is refused with 422 at the edge,
before the driver would fail to bind it (SQLite raises ``OverflowError``, PostgreSQL a
``DataError``), which would otherwise answer 500.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

MAX_ROW_ID = 2**63 - 1

AlertIdPath = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="the alert's id")]
AlertIdQuery = Annotated[
    int | None, Query(ge=1, le=MAX_ROW_ID, description="only this alert's notifications")
]
