"""Where signed checkpoints of the access log go (:mod:`services.router.audit.checkpoints`):
somewhere the database's owner cannot rewrite.

* :class:`FileSink`: a JSON-lines file, opened for append only, mode 0600, each line
  ``fsync``-ed before the write counts. Put it on a volume the database's owner cannot
  write (or ship it off the host): a file beside the database proves little.
* :class:`SyslogSink`: one RFC 5424 message per checkpoint (facility authpriv, severity
  notice, MSGID ``access-log-checkpoint``) to a collector over UDP, or TCP with RFC 6587
  octet-counting framing: the collector's copy is out of the router host's reach.
* :class:`FakeSink`: keeps the lines, for tests.

A sink's ``write`` is blocking and raises :class:`OSError` when the line did not get out;
the caller runs it in a thread and tries again at the next interval.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import urlsplit

APP_NAME = "carebridge-router"
MSG_ID = "access-log-checkpoint"
_PRI = 10 * 8 + 5  # authpriv.notice: audit lines go where only the auditors read


class CheckpointSink(Protocol):
    name: str

    def write(self, line: str) -> None:
        """Deliver one checkpoint line (no newline), or raise OSError."""


@dataclass
class FileSink:
    path: Path
    name: str = "file"

    def write(self, line: str) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.fchmod(fd, 0o600)  # also a file made wider by hand: it is an audit record
            os.write(fd, (line + "\n").encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)

    def lines(self) -> Iterator[str]:
        """The lines written so far (none if the file does not exist yet)."""
        if not self.path.exists():
            return iter(())
        return iter(self.path.read_text(encoding="utf-8").splitlines())


@dataclass
class SyslogSink:
    host: str
    port: int
    transport: Literal["udp", "tcp"] = "udp"
    hostname: str = field(default_factory=socket.gethostname)
    timeout_s: float = 5.0
    name: str = "syslog"

    def message(self, line: str, at: datetime | None = None) -> bytes:
        """RFC 5424: ``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG``."""
        stamp = (at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="microseconds")
        host = (self.hostname or "-")[:255].replace(" ", "-")
        header = f"<{_PRI}>1 {stamp.replace('+00:00', 'Z')} {host} {APP_NAME} {os.getpid()}"
        return f"{header} {MSG_ID} - {line}".encode()

    def write(self, line: str) -> None:
        data = self.message(line)
        if self.transport == "udp":
            with socket.socket(_family(self.host), socket.SOCK_DGRAM) as sock:
                sock.sendto(data, (self.host, self.port))
            return
        with socket.create_connection((self.host, self.port), timeout=self.timeout_s) as sock:
            sock.sendall(f"{len(data)} ".encode() + data)  # RFC 6587 octet counting


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def syslog_sink(url: str) -> SyslogSink:
    """``udp://host:514`` or ``tcp://host:601`` (``ROUTER_AUDIT_CHECKPOINT_SYSLOG``)."""
    parts = urlsplit(url)
    if parts.scheme not in ("udp", "tcp") or not parts.hostname or parts.port is None:
        raise ValueError("a syslog target is udp://host:port or tcp://host:port")
    transport: Literal["udp", "tcp"] = "udp" if parts.scheme == "udp" else "tcp"
    return SyslogSink(parts.hostname, parts.port, transport)


@dataclass
class FakeSink:
    """Keeps every line; ``fail`` makes the next writes raise, as a full disk would."""

    written: list[str] = field(default_factory=list)
    fail: bool = False
    name: str = "fake"

    def write(self, line: str) -> None:
        if self.fail:
            raise OSError("the fake sink is down")
        self.written.append(line)
