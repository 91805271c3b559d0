"""``python -m tests.browser.serve DATABASE_URL PORT [SETTINGS_JSON]``: the router's HTTP app
(API and console) alone, on a real socket, over a database the test has already filled;
SETTINGS_JSON: more sandbox settings (e.g. the OIDC provider's)."""

from __future__ import annotations

import json
import sys

import uvicorn

from services.messaging.db import make_engine, session_factory
from services.router.ops.app import create_app
from services.router.settings import RouterSettings


def main() -> None:
    url, port = sys.argv[1], int(sys.argv[2])
    more = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    settings = RouterSettings(environment="sandbox", database_url=url, port=port, **more)
    app = create_app(settings, sessions=session_factory(make_engine(url)))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
