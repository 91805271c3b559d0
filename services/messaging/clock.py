"""The project's clock: the wall clock for what is recorded, the monotonic clock for what is
measured, and how a jump of the wall clock is told from the passing of time.

Every service reads the time through a :class:`Clock`. Within a process, a duration is
measured on the monotonic clock, which no correction of the wall clock moves. Across
processes (a deadline stored in the database by one router and checked by another, or by
the same router after a restart), :func:`jumped` compares two readings: the wall clock moved
by the monotonic clock's distance, give or take ``JUMP_TOLERANCE_S``, or it jumped by the
difference. Linux's monotonic clock is one clock for every process of a boot, so readings
taken by different processes compare as long as they carry the same :func:`boot_id`.

The sandbox's seam: with ``skew_file`` set, the wall clock is moved by the seconds that file
holds (read at most every ``SKEW_READ_EVERY_S``). A stack gives every one of its services
the same file, so a test moves the whole stack's clock from the outside, as an NTP step
would move a host's, and the monotonic clock does not move. The settings refuse the seam
outside the sandbox (:mod:`services.messaging.settings`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

JUMP_TOLERANCE_S = 2.0  # NTP slews at most 0.5 ms a second: anything above is a step
SKEW_READ_EVERY_S = 0.2
BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")


@dataclass(frozen=True)
class Reading:
    """The wall clock and the monotonic clock, read together."""

    wall: datetime
    monotonic: float


class Clock:
    def __init__(
        self,
        skew_file: Path | None = None,
        *,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._skew_file, self._wall, self._monotonic = skew_file, wall, monotonic
        self._skew_s, self._skew_read_at = 0.0, float("-inf")

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._wall() + self._skew(), UTC)

    def monotonic(self) -> float:
        return self._monotonic()

    def read(self) -> Reading:
        return Reading(wall=self.now(), monotonic=self._monotonic())

    def _skew(self) -> float:
        if self._skew_file is None:
            return 0.0
        at = self._monotonic()
        if at - self._skew_read_at >= SKEW_READ_EVERY_S:
            self._skew_read_at = at
            try:
                self._skew_s = float(self._skew_file.read_text().strip() or 0)
            except FileNotFoundError:
                self._skew_s = 0.0
            except ValueError:  # a half-written file: keep the last value until it is whole
                pass
        return self._skew_s


def jumped(earlier: Reading, later: Reading, *, tolerance_s: float = JUMP_TOLERANCE_S) -> float:
    """Seconds the wall clock jumped between two readings of one boot (positive: forward),
    or 0.0 when it moved as the monotonic clock did, within the tolerance."""
    wall_s = (later.wall - earlier.wall).total_seconds()
    drift = wall_s - (later.monotonic - earlier.monotonic)
    return drift if abs(drift) > tolerance_s else 0.0


@functools.cache
def boot_id() -> str:
    """This boot of this host: readings with the same boot id share one monotonic clock."""
    try:
        return BOOT_ID_FILE.read_text().strip()
    except OSError:  # not Linux: one process's readings only, which the caller still compares
        return f"process-{time.monotonic_ns()}"


def set_skew(skew_file: Path, seconds: float) -> None:
    """Move a sandbox stack's wall clock: written whole, so no reader sees half a number."""
    partial = skew_file.with_suffix(".partial")
    partial.write_text(f"{seconds}\n")
    partial.replace(skew_file)
