"""What every response model of the ops API shares.

The read models (:mod:`services.router.ops.queries` and friends) build plain dicts that the
console and the CLI use too; the API declares their shape with these models, so the OpenAPI
document says what each JSON answer holds. A model forbids unknown fields: a field the read
model gains but the response model lacks is a 500 in the tests, never a field FastAPI drops
without a word.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class ResponseModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Times stay the strings the read models write (``datetime.isoformat()``, with the offset):
# a ``datetime`` field would write UTC as ``Z`` and so change every answer.
Timestamp = Annotated[
    str, Field(json_schema_extra={"format": "date-time"}, description="ISO 8601 with offset")
]
