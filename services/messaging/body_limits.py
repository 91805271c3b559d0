"""An ASGI middleware with the intake's body limits for a JSON API that parses bodies
through FastAPI models (the router's ``/api/``): a size limit (declared and actual), JSON
media types only, and a nesting-depth limit, all before the body reaches a parser.

Refusals come in the app's shape (:mod:`services.messaging.problems`): 413 too large, 415
not JSON, 400 nested too deep. Requests without a body, other methods and paths outside
``prefix`` pass untouched.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.messaging.http import JSON_MEDIA_TYPES, MAX_JSON_DEPTH
from services.messaging.input_limits import json_depth_exceeds
from services.messaging.problems import ErrorShape

_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


class JsonBodyLimits:
    def __init__(
        self,
        app: ASGIApp,
        *,
        prefix: str,
        shape: ErrorShape,
        max_bytes: int,
        max_depth: int = MAX_JSON_DEPTH,
    ) -> None:
        self.app = app
        self.shape = shape
        self.prefix = prefix
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in _WITH_BODY
            or not str(scope["path"]).startswith(self.prefix)
        ):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(413, f"body exceeds {self.max_bytes} bytes", scope, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body.extend(message.get("body", b""))
            if len(body) > self.max_bytes:
                text = f"body exceeds {self.max_bytes} bytes"
                await self._refuse(413, text, scope, send)
                return
            if not message.get("more_body", False):
                break
        if body:
            media_type = headers.get("content-type", "").split(";")[0].strip().lower()
            if media_type not in JSON_MEDIA_TYPES:
                text = "Content-Type must be application/json or application/fhir+json"
                await self._refuse(415, text, scope, send)
                return
            if json_depth_exceeds(bytes(body), self.max_depth):
                text = f"JSON nests deeper than {self.max_depth} levels"
                await self._refuse(400, text, scope, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, status: int, text: str, scope: Scope, send: Send) -> None:
        response = self.shape(status, text)
        await response(scope, self._no_receive, send)

    @staticmethod
    async def _no_receive() -> Message:
        return {"type": "http.disconnect"}
