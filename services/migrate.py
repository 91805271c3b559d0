"""``python -m services.migrate``: migrate the database at ``CAREBRIDGE_DATABASE_URL`` (or the
URL given as the one argument) to the newest schema, then exit. Compose's ``migrate`` job
runs it before the services start; each service only checks that its schema is current."""

from __future__ import annotations

import sys

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.messaging.db import migrate


class MigrateSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CAREBRIDGE_", extra="ignore")

    database_url: str | None = Field(default=None, repr=False)  # it may hold a password


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    url = args[0] if args else MigrateSettings().database_url
    if not url or len(args) > 1:
        usage = "usage: python -m services.migrate [DATABASE_URL] (or set CAREBRIDGE_DATABASE_URL)"
        print(usage, file=sys.stderr)
        return 2
    migrate(url)
    print("migrated to the newest schema", flush=True)  # never the URL: it holds a password
    return 0


if __name__ == "__main__":
    sys.exit(main())
