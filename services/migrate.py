"""``python -m services.migrate``: migrate the database at ``CAREBRIDGE_DATABASE_URL`` (or the
URL given as the one argument) to the newest schema, then exit. Compose's ``migrate`` job
runs it before the services start; each service only checks that its schema is current."""

from __future__ import annotations

import os
import sys

from services.messaging.db import migrate

URL_ENV = "CAREBRIDGE_DATABASE_URL"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    url = args[0] if args else os.environ.get(URL_ENV)
    if not url or len(args) > 1:
        print(
            f"usage: python -m services.migrate [DATABASE_URL] (or set {URL_ENV})", file=sys.stderr
        )
        return 2
    migrate(url)
    print("migrated to the newest schema", flush=True)  # never the URL: it holds a password
    return 0


if __name__ == "__main__":
    sys.exit(main())
