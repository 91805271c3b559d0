"""Files that may hold patient data or secrets, a SQLite database and a log, are created
readable and writable by their owner only (mode 0600) whatever the process's umask, and a
directory made for them is 0700. SQLite creates a database's ``-wal`` and ``-shm`` files with
the database file's own mode, so they follow.

Only creation is covered: an existing file keeps the mode its owner gave it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

FILE_MODE = 0o600
DIRECTORY_MODE = 0o700


def create_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 (and its directory), unless it exists."""
    path.parent.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)


def open_private_append(path: Path) -> IO[bytes]:
    """``path`` opened for appending; created with mode 0600 if it does not exist."""
    path.parent.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
    return os.fdopen(fd, "ab")
