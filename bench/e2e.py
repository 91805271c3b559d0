"""End-to-end throughput and latency of the whole broker, against a bare-Kafka baseline.

    .venv/bin/python bench/e2e.py [--messages 5000] [--concurrency 48]     (make bench)
    .venv/bin/python bench/e2e.py --scale                 scale curve 1k / 10k / 100k
    .venv/bin/python bench/e2e.py --drain 50000           Treserva down while 50k pile up
    .venv/bin/python bench/e2e.py --scale-out             one router vs two (PostgreSQL)
    --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test   (a private database
    is created beside it and dropped afterwards; SQLite files in a temp dir by default)

Every phase starts a real stack (sandbox.stack: Tansu, router, both adapters, the three
simulators) and drives native events through it as the journals would: HTTP intake →
outbox → Kafka → router → Kafka → adapter → simulated journal → receipt → confirmed. The mix
of families follows the care-transition flow of docs/domain.md (per hospital stay: an
admission notice, readiness, discharge notice, medication lists, some SIP updates, and the
municipality's own SIP and medication-list updates). Patients: the contract fixtures'
Skatteverket test personnummer plus made-up reserve numbers (``GOTB…``, no real person), so
that per-patient ordering sees as many distinct patients as real traffic does.

Latency is intake → confirmed: from just before the POST (wall clock) to the router's
``confirmed_at`` of the message's last delivery (same machine, same clock), read from the
router's database. Throughput is confirmed messages over first POST → last confirmation. The
baseline, in the same run and on the same Tansu broker, is aiokafka producing and consuming
the same payloads (the FHIR messages the stack carried, keyed the same), acks=all, manual
commits. ``ratio`` = broker throughput / baseline throughput. CPU is the share of one core
over the phase; RSS is sampled every second (psutil). Results go to bench/results.json, or
bench/results-apache.json with ``--kafka apache`` (merged: each mode writes its own section).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped]
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


from bench.timing import scratch_database  # noqa: E402
from sandbox.demo import demo_settings  # noqa: E402
from sandbox.simulators.samples.admission_notice import sample_admission  # noqa: E402
from sandbox.simulators.samples.discharge import (  # noqa: E402
    sample_discharge_notice,
    sample_discharge_readiness,
)
from sandbox.simulators.samples.medication_list import (  # noqa: E402
    sample_takecare_medication_list,
    sample_treserva_medication_list,
)
from sandbox.simulators.samples.people import PERSONNUMMER  # noqa: E402
from sandbox.simulators.samples.sip_update import (  # noqa: E402
    sample_takecare_sip_update,
    sample_treserva_sip_update,
)
from sandbox.simulators.treserva import KINDS as TRESERVA_KINDS  # noqa: E402
from sandbox.stack import BrokerKind, Stack  # noqa: E402
from services.adapter_takecare.settings import SANDBOX_INTAKE_TOKEN as TAKECARE_TOKEN  # noqa: E402
from services.adapter_treserva.settings import SANDBOX_INTAKE_TOKEN as TRESERVA_TOKEN  # noqa: E402
from services.messaging import topics  # noqa: E402
from services.messaging.kafka import ensure_topics  # noqa: E402

RESULTS = Path(__file__).with_name("results.json")
RESULTS_APACHE = Path(__file__).with_name("results-apache.json")


def results_path() -> Path:
    """Tansu's figures and Apache Kafka's are kept apart: one run never overwrites the other's."""
    return RESULTS_APACHE if BROKER["kind"] == "apache" else RESULTS


PROFILES = Path(__file__).with_name("profiles")

# (weight, source system, intake route, sample) per ~100 messages: one hospital stay gives
# an admission notice (sometimes updated or cancelled), readiness (sometimes withdrawn), a
# discharge notice, medication lists at admission and discharge, a few SIP updates; home
# care sends SIP and medication-list updates back.
MIX: tuple[tuple[int, str, str, Callable[..., dict[str, Any]]], ...] = (
    (28, "takecare", "admissions", sample_admission),
    (18, "takecare", "discharge-readiness", sample_discharge_readiness),
    (18, "takecare", "discharges", sample_discharge_notice),
    (16, "takecare", "medication-lists", sample_takecare_medication_list),
    (8, "takecare", "sip-updates", sample_takecare_sip_update),
    (6, "treserva", "sip", sample_treserva_sip_update),
    (6, "treserva", "lakemedelslistor", sample_treserva_medication_list),
)
TOKENS = {"takecare": TAKECARE_TOKEN, "treserva": TRESERVA_TOKEN}


# --- load ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    system: str
    route: str
    family: str
    patient: str  # the identifier as sent (test personnummer or made-up reserve number)
    body: bytes


def _set_patient(event: dict[str, Any], system: str, patient: str) -> None:
    # a made-up GOTB... number is a regional reserve number (the sandbox's example region)
    if system == "takecare":
        p = event["patient"]
        for k in ("personalIdentityNumber", "reserveNumber", "reserveNumberKind"):
            p.pop(k, None)
        if patient.isdigit():
            p["personalIdentityNumber"] = patient
        else:
            p["reserveNumber"] = patient
            p["reserveNumberKind"] = "regional"
    else:
        b = event["brukare"]
        for k in ("personnummer", "reservnummer", "reservnummerTyp", "samordningsnummer"):
            b.pop(k, None)
        if patient.isdigit():
            b["personnummer"] = f"{patient[:8]}-{patient[8:]}"
            b["samordningsnummer"] = False
        else:
            b["reservnummer"] = patient
            b["reservnummerTyp"] = "regionalt"


DOCUMENT_IDS = ("listId", "listaId", "sipId")
"""Versioned documents' ids. The samples draw them from a few hundred thousand values, so
10,000 events repeat some: a repeat with version 1 and other content is, rightly, refused as
a conflicting resend (409). Each bench event gets its own."""
RUN = uuid.uuid4().hex[:8]  # phases of one run, and runs on one database, never collide


def make_events(count: int, *, patients: int, seed: int) -> list[Event]:
    rng = random.Random(seed)
    people = list(PERSONNUMMER) + [f"GOTB{seed:02d}{i:07d}" for i in range(patients)]
    weights = [w for w, *_ in MIX]
    now = datetime.now().astimezone()
    out: list[Event] = []
    for _ in range(count):
        _, system, route, sample = rng.choices(MIX, weights)[0]
        event = sample(rng, now=now)
        for name in DOCUMENT_IDS:
            if name in event:
                event[name] = f"BENCH-{RUN}-{seed}-{len(out)}"
        patient = rng.choice(people)
        _set_patient(event, system, patient)
        out.append(Event(system, route, sample.__name__, patient, json.dumps(event).encode()))
    return out


@dataclass
class Posted:
    message_id: str
    started: float  # wall clock, seconds
    event: Event


async def drive(
    stack: Stack,
    events: list[Event],
    *,
    concurrency: int,
    rate: float | None,
    label: str,
    progress: Progress | None = None,
) -> list[Posted]:
    """POST every event (at ``rate`` a second, or as fast as ``concurrency`` allows)."""
    bases = {"takecare": stack.takecare_adapter_url, "treserva": stack.treserva_adapter_url}
    posted: list[Posted] = []
    queue: asyncio.Queue[tuple[int, Event]] = asyncio.Queue()
    for item in enumerate(events):
        queue.put_nowait(item)
    t0 = time.monotonic()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30.0, limits=limits) as client:

        async def worker() -> None:
            while True:
                try:
                    i, ev = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                if rate:
                    await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
                url = f"{bases[ev.system]}/{ev.system}/v1/{ev.route}"
                headers = {
                    "authorization": f"Bearer {TOKENS[ev.system]}",
                    "content-type": "application/json",
                }
                for _attempt in range(50):
                    started = time.time()
                    try:
                        res = await client.post(url, content=ev.body, headers=headers)
                    except httpx.TransportError:
                        await asyncio.sleep(0.2)
                        continue
                    if res.status_code in (429, 503):
                        await asyncio.sleep(0.2)
                        continue
                    if res.status_code != 202:
                        raise RuntimeError(f"{ev.route}: {res.status_code} {res.text[:300]}")
                    posted.append(Posted(res.json()["messageId"], started, ev))
                    if progress is not None:
                        progress.posted += 1
                        progress.show()  # the drain's pile-up has no other progress
                    break
                else:
                    raise RuntimeError(f"{ev.route}: intake kept refusing")

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return posted


# --- reading the router's database --------------------------------------------------------


def _ts(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return float(value.replace(tzinfo=UTC).timestamp())


class RouterDb:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: AsyncEngine = create_async_engine(url)

    async def close(self) -> None:
        await self.engine.dispose()

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.engine.connect() as conn:
            return (await conn.execute(text(sql), params)).scalar()

    async def counts(self) -> dict[str, int]:
        async with self.engine.connect() as conn:
            rows: Any = (
                await conn.execute(text("SELECT state, count(*) FROM delivery GROUP BY state"))
            ).all()  # (state, count)
            messages: Any = (await conn.execute(text("SELECT count(*) FROM message"))).scalar()
        found: dict[str, int] = {str(s): int(n) for s, n in rows}
        found["_messages"] = int(messages or 0)
        return found

    async def deliveries(self) -> list[Any]:
        async with self.engine.connect() as conn:
            return list(
                (
                    await conn.execute(
                        text(
                            "SELECT d.id, d.message_id, d.destination, d.state, d.confirmed_at,"
                            " d.sent_at, m.received_at, m.pseudonym,"
                            " (SELECT min(a.dispatched_at) FROM delivery_attempt a"
                            "  WHERE a.delivery_id = d.id) AS dispatched_at"
                            " FROM delivery d JOIN message m ON m.id = d.message_id"
                        )
                    )
                ).all()
            )

    async def attempts(self) -> dict[str, float]:
        """Attempts per delivery, and how many attempts timed out unanswered (each one is
        sent again: work the adapter and the journal do twice)."""
        attempts = int(await self.scalar("SELECT count(*) FROM delivery_attempt") or 0)
        deliveries = int(await self.scalar("SELECT count(*) FROM delivery") or 0)
        timed_out = await self.scalar(
            "SELECT count(*) FROM delivery_attempt WHERE outcome = 'timeout'"
        )
        return {
            "attempts_per_delivery": round(attempts / max(1, deliveries), 3),
            "attempts_timed_out": int(timed_out or 0),
        }

    async def size_bytes(self, data_dir: Path) -> int:
        """The databases' size: every SQLite file of the stack, or the PostgreSQL database."""
        if make_url(self.url).get_backend_name() == "sqlite":
            return sum(p.stat().st_size for p in data_dir.glob("*.db*"))  # noqa: ASYNC240
        return int(await self.scalar("SELECT pg_database_size(current_database())"))


@dataclass
class Progress:
    label: str
    total: int
    posted: int = 0
    confirmed: int = 0
    started: float = field(default_factory=time.monotonic)

    _shown: float = 0.0

    def show(self) -> None:
        """Redraw the line on a terminal; elsewhere (a log) print one every 10 s."""
        now = time.monotonic()
        if sys.stdout.isatty():
            print(self.line(), end="", flush=True)
        elif now - self._shown >= 10:
            self._shown = now
            print(self.line().strip(), flush=True)

    def line(self) -> str:
        elapsed = max(1e-6, time.monotonic() - self.started)
        width = 30
        done = int(width * self.confirmed / max(1, self.total))
        bar = "#" * done + "." * (width - done)
        return (
            f"\r{self.label:<12} [{bar}] posted {self.posted}/{self.total} "
            f"confirmed {self.confirmed}/{self.total} "
            f"({self.confirmed / elapsed:,.0f}/s, {elapsed:,.0f}s)   "
        )


async def wait_confirmed(
    db: RouterDb,
    progress: Progress,
    *,
    before: dict[str, int],
    expected_messages: Callable[[], int],
    timeout_s: float,
    stack: Stack | None = None,
) -> None:
    """Until every message posted in this phase is stored and every delivery confirmed."""
    deadline = time.monotonic() + timeout_s
    base = before.get("confirmed", 0)
    while True:
        if stack is not None and stack.exited():  # a dead service would only stall the phase
            child = stack.exited()[0]
            raise RuntimeError(
                f"{child.name} exited with {child.process.returncode}:\n"
                f"{stack.log_tail(child.name, 5)}"
            )
        counts = await db.counts()
        progress.confirmed = _messages_done(counts, before)
        progress.show()
        unfinished = sum(n for s, n in counts.items() if s not in ("confirmed", "_messages"))
        stored = counts["_messages"] - before.get("_messages", 0)
        if stored >= expected_messages() and unfinished == 0 and progress.posted >= progress.total:
            progress.confirmed = progress.total
            print(progress.line(), flush=True)
            return
        if time.monotonic() > deadline:
            print()
            raise TimeoutError(
                f"not all confirmed after {timeout_s:.0f}s: {counts} (base confirmed {base})"
            )
        await asyncio.sleep(0.5)


def _messages_done(counts: dict[str, int], before: dict[str, int]) -> int:
    # messages are counted as done in proportion to confirmed deliveries (the progress bar)
    total = sum(n for s, n in counts.items() if s != "_messages") - sum(
        n for s, n in before.items() if s != "_messages"
    )
    confirmed = counts.get("confirmed", 0) - before.get("confirmed", 0)
    stored = counts["_messages"] - before.get("_messages", 0)
    return int(stored * confirmed / total) if total else 0


# --- processes ---------------------------------------------------------------------------


class Sampler:
    """CPU and RSS of every stack process (and of this load generator) over one phase."""

    def __init__(self, stack: Stack) -> None:
        self.procs = {c.name: psutil.Process(c.process.pid) for c in stack.children}
        self.procs["loadgen (bench)"] = psutil.Process(os.getpid())
        self.cpu0 = {n: sum(p.cpu_times()[:2]) for n, p in self.procs.items()}
        self.rss_peak = {n: p.memory_info().rss for n, p in self.procs.items()}
        self.t0 = time.monotonic()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            for n, p in self.procs.items():
                with contextlib.suppress(psutil.Error):
                    self.rss_peak[n] = max(self.rss_peak[n], p.memory_info().rss)
            await asyncio.sleep(1.0)

    def start(self) -> Sampler:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def stop(self) -> dict[str, dict[str, float]]:
        if self._task is not None:
            self._task.cancel()
        wall = time.monotonic() - self.t0
        out = {}
        for n, p in self.procs.items():
            try:
                cpu = sum(p.cpu_times()[:2]) - self.cpu0[n]
                rss = p.memory_info().rss
            except psutil.Error:
                continue
            out[n] = {
                "cpu_s": round(cpu, 1),
                "cpu_pct_of_core": round(100 * cpu / wall, 1),
                "rss_mb": round(rss / 2**20, 1),
                "rss_peak_mb": round(max(rss, self.rss_peak[n]) / 2**20, 1),
            }
        return out


@contextlib.contextmanager
def profiling(
    stack: Stack, names: list[str], seconds: int, tag: str, *, idle: bool = False
) -> Iterator[None]:
    """py-spy record (raw collapsed stacks) of the named services during the block."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    PROFILES.mkdir(exist_ok=True)
    spies = [
        subprocess.Popen(  # noqa: S603
            [
                py_spy,
                "record",
                "--pid",
                str(stack.child(n).process.pid),
                "--rate",
                "97",
                "--duration",
                str(seconds),
                "--format",
                "raw",
                "--nonblocking",
                *(["--idle"] if idle else []),
                "--output",
                str(PROFILES / f"{tag}-{n}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for n in names
    ]
    try:
        yield
    finally:
        for spy in spies:
            try:
                spy.wait(timeout=seconds + 30)
            except subprocess.TimeoutExpired:
                spy.terminate()
        for n in names:
            summarise_profile(PROFILES / f"{tag}-{n}.txt")


def summarise_profile(path: Path, top: int = 25) -> None:
    """Write <profile>.top.txt: the functions with most samples, own and inclusive."""
    if not path.exists():
        return
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        n = int(count_text)
        frames = [f for f in stack_text.split(";") if f]
        total += n
        if frames:
            own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    lines = [f"{path.name}: {total} samples", "", "own time:"]
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    lines += ["", "inclusive:"]
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in incl.most_common(top * 2)]
    path.with_suffix(".top.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


# --- the stack ---------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def private_database(url: str | None) -> AsyncIterator[str | None]:
    """A fresh PostgreSQL database beside ``url`` (dropped afterwards); None for SQLite."""
    if url is None or make_url(url).get_backend_name() == "sqlite":
        yield None
        return
    async with scratch_database(url) as private:
        yield private


# --kafka apache: the stack and its baseline on Apache Kafka with SASL_SSL and ACLs
BROKER: dict[str, BrokerKind] = {"kind": "tansu"}


@contextlib.asynccontextmanager
async def running_stack(
    tmp: Path, database_url: str | None, *, routers: int = 1
) -> AsyncIterator[tuple[Stack, RouterDb]]:
    settings = demo_settings(
        tmp,
        database_url=database_url,
        routers=routers,
        kafka=BROKER["kind"],  # the baseline runs on the same broker, same channel
        # deadlines far away: a benchmark measures throughput, not the alert machinery
        admission_confirmation_deadline_s=7200,
        confirmation_deadline_s=7200,
        attempt_timeout_s=30.0,
        retry_base_s=0.5,
        # the intake's per-client rate limit (100/s by default) would cap the benchmark
        adapter_env={"RATE_LIMIT_PER_S": "0"},
    )
    stack = Stack(settings, echo=lambda _: None)
    started = time.monotonic()
    await asyncio.to_thread(stack.start)
    print(f"stack up in {time.monotonic() - started:.1f}s ({routers} router(s))", flush=True)
    db = RouterDb(stack.database_url("router"))
    try:
        yield stack, db
    finally:
        await db.close()
        await asyncio.to_thread(stack.stop)


# --- phases ------------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def run_phase(
    stack: Stack,
    db: RouterDb,
    events: list[Event],
    *,
    label: str,
    concurrency: int,
    rate: float | None,
    timeout_s: float,
    profile_tag: str | None = None,
    profile_s: int = 20,
    profile_idle: bool = False,
) -> dict[str, Any]:
    """Post ``events``, wait until all are confirmed; throughput, latency, CPU and RSS."""
    before = await db.counts()
    size0 = await db.size_bytes(stack.settings.data_dir)
    progress = Progress(label, len(events))
    sampler = Sampler(stack).start()
    t0 = time.time()
    posted_holder: list[list[Posted]] = []

    async def post() -> None:
        posted_holder.append(
            await drive(
                stack, events, concurrency=concurrency, rate=rate, label=label, progress=progress
            )
        )

    names = [c.name for c in stack.children if c.name.startswith(("router", "adapter"))]
    profiler = (
        profiling(stack, names, profile_s, profile_tag, idle=profile_idle)
        if profile_tag
        else contextlib.nullcontext()
    )
    with profiler:
        poster = asyncio.get_running_loop().create_task(post())
        waiter = asyncio.get_running_loop().create_task(
            wait_confirmed(
                db,
                progress,
                before=before,
                expected_messages=lambda: len(events),
                timeout_s=timeout_s,
                stack=stack,
            )
        )
        # a refused POST ends the phase at once, instead of waiting for the timeout
        done, _ = await asyncio.wait({poster, waiter}, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if task.exception() is not None:
                poster.cancel()
                waiter.cancel()
                raise task.exception()  # type: ignore[misc]
        await poster
        await waiter
    procs = sampler.stop()
    posted = posted_holder[0]
    t_posted = max(p.started for p in posted)
    rows = await db.deliveries()
    mine = {p.message_id: p for p in posted}
    last: dict[str, float] = {}
    for r in rows:
        if r.message_id in mine:
            at = _ts(r.confirmed_at)
            if at is not None:
                last[r.message_id] = max(last.get(r.message_id, 0.0), at)
    latencies = [(last[m] - p.started) * 1000 for m, p in mine.items() if m in last]
    stages = stage_medians(rows, mine)
    t_end = max(last.values())
    size1 = await db.size_bytes(stack.settings.data_dir)
    confirmed = len(latencies)
    return {
        "messages": len(events),
        "confirmed": confirmed,
        "deliveries": sum(1 for r in rows if r.message_id in mine),
        "offered_rate_per_s": rate,
        "concurrency": concurrency,
        "intake_msgs_per_s": round(len(posted) / max(1e-6, t_posted - t0), 1),
        "throughput_msgs_per_s": round(confirmed / max(1e-6, t_end - t0), 1),
        "duration_s": round(t_end - t0, 1),
        "p50_ms": round(pct(latencies, 50), 1),
        "p95_ms": round(pct(latencies, 95), 1),
        "p99_ms": round(pct(latencies, 99), 1),
        "max_ms": round(max(latencies), 1),
        "stages_p50_ms": stages,
        **await db.attempts(),
        "db_growth_bytes_per_message": round((size1 - size0) / max(1, len(events))),
        "db_bytes": size1,
        "processes": procs,
    }


def stage_medians(rows: list[Any], posted: dict[str, Posted]) -> dict[str, float]:
    """Where a delivery's time goes (median of each step, ms): POST → the router accepted
    the message → first dispatch → the journal's outcome (sent) → its receipt (confirmed)."""
    steps: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        p = posted.get(r.message_id)
        marks = [_ts(r.received_at), _ts(r.dispatched_at), _ts(r.sent_at), _ts(r.confirmed_at)]
        if p is None or any(m is None for m in marks):
            continue
        points = [p.started, *(m for m in marks if m is not None)]
        names = ["intake→router", "router→dispatched", "dispatched→sent", "sent→confirmed"]
        for name, a, b in zip(names, points, points[1:], strict=False):
            steps[name].append((b - a) * 1000)
    return {name: round(pct(values, 50), 1) for name, values in steps.items()}


async def kafka_baseline(stack: Stack, count: int) -> dict[str, Any]:
    """aiokafka produce → consume of the same payloads and keys on the same broker."""
    kafka = stack.kafka_connection()  # the same broker and channel (SASL_SSL on Apache Kafka)
    reader = AIOKafkaConsumer(
        topics.INBOUND,
        **kafka.client_options(),
        group_id=f"bench-read-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await reader.start()
    records: list[tuple[bytes | None, bytes]] = []
    try:
        while len(records) < count:
            got = await reader.getmany(timeout_ms=2000, max_records=2000)
            if not got:
                break
            records += [(m.key, m.value) for msgs in got.values() for m in msgs]
    finally:
        await reader.stop()
    records = (records * (count // max(1, len(records)) + 1))[:count]
    topic = f"bench.baseline.{uuid.uuid4().hex[:6]}.v1"
    await ensure_topics(kafka, [topic], stack_partitions())
    producer = AIOKafkaProducer(**kafka.producer_options(), acks="all", linger_ms=2)
    consumer = AIOKafkaConsumer(
        topic,
        **kafka.client_options(),
        group_id=topic,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
        max_poll_records=500,
    )
    await producer.start()
    await consumer.start()
    progress = Progress("baseline", count)
    try:
        await producer.send_and_wait(topic, b"warm-up")
        while not await consumer.getmany(timeout_ms=1000):
            pass
        await consumer.commit()
        t0 = time.monotonic()

        async def produce() -> None:
            futures = []
            for key, value in records:
                futures.append(await producer.send(topic, value, key=key))
                progress.posted += 1
            await asyncio.gather(*futures)

        task = asyncio.get_running_loop().create_task(produce())
        while progress.confirmed < count:
            got = await consumer.getmany(timeout_ms=1000)
            progress.confirmed += sum(len(m) for m in got.values())
            await consumer.commit()
            progress.show()
        await task
        elapsed = time.monotonic() - t0
        print(progress.line(), flush=True)
    finally:
        await consumer.stop()
        await producer.stop()
    return {
        "messages": count,
        "payload_bytes_mean": round(sum(len(v) for _, v in records) / max(1, count)),
        "baseline_msgs_per_s": round(count / elapsed, 1),
    }


def stack_partitions() -> int:
    from services.messaging.settings import ServiceSettings

    return int(ServiceSettings.model_fields["topic_partitions"].default)  # what the stack uses


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return out + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_results(section: str | None, figures: dict[str, Any]) -> None:
    path = results_path()
    found = json.loads(path.read_text()) if path.exists() else {}
    stamp = {
        "git_commit": git_commit(),
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
    }
    if section is None:
        found.update(figures | stamp)
    else:
        found[section] = figures | stamp
    path.write_text(json.dumps(found, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT)}" + (f" [{section}]" if section else ""))


async def main_bench(args: argparse.Namespace) -> None:
    with data_dir(args) as tmp:
        async with (
            private_database(args.database_url) as url,
            running_stack(Path(tmp), url) as (stack, db),
        ):
            await run_phase(
                stack,
                db,
                make_events(200, patients=args.patients, seed=99),
                label="warm-up",
                concurrency=8,
                rate=None,
                timeout_s=120,
            )
            full = await run_phase(
                stack,
                db,
                make_events(args.messages, patients=args.patients, seed=1),
                label="max rate",
                concurrency=args.concurrency,
                rate=args.rate,
                timeout_s=args.timeout,
                profile_tag="e2e" if args.profile else None,
                profile_s=args.profile_seconds,
                profile_idle=args.profile_idle,
            )
            fixed = await run_phase(
                stack,
                db,
                make_events(
                    int(args.latency_rate * args.latency_seconds), patients=args.patients, seed=2
                ),
                label=f"{args.latency_rate:.0f}/s",
                concurrency=args.concurrency,
                rate=args.latency_rate,
                timeout_s=args.timeout,
            )
            baseline = await kafka_baseline(stack, args.messages)
    ratio = full["throughput_msgs_per_s"] / baseline["baseline_msgs_per_s"]
    figures = {
        "throughput_msgs_per_s": full["throughput_msgs_per_s"],
        "p50_ms": full["p50_ms"],
        "p95_ms": full["p95_ms"],
        "p99_ms": full["p99_ms"],
        "baseline_msgs_per_s": baseline["baseline_msgs_per_s"],
        "ratio": round(ratio, 4),
        "at_fixed_rate": {
            k: fixed[k]
            for k in ("offered_rate_per_s", "messages", "throughput_msgs_per_s", "p50_ms")
        }
        | {k: fixed[k] for k in ("p95_ms", "p99_ms", "max_ms")},
        "max_rate_run": full,
        "baseline": baseline,
        "parameters": {
            "messages": args.messages,
            "concurrency": args.concurrency,
            "rate": args.rate,
            "patients": args.patients + len(PERSONNUMMER),
            "database": "postgresql" if url_is_pg(args.database_url) else "sqlite",
            "broker": BROKER["kind"],
            "mix": {sample.__name__: w for w, _, _, sample in MIX},
        },
    }
    write_results(None, figures)
    print(summary_table(figures))


@contextlib.contextmanager
def data_dir(args: argparse.Namespace) -> Iterator[str]:
    if args.data_dir is not None:
        path = args.data_dir / uuid.uuid4().hex[:6]
        path.mkdir(parents=True)
        print(f"data and logs in {path}")
        yield str(path)
        return
    with tempfile.TemporaryDirectory(prefix="carebridge-bench-") as tmp:
        yield tmp


def url_is_pg(url: str | None) -> bool:
    return url is not None and make_url(url).get_backend_name() == "postgresql"


def summary_table(f: dict[str, Any]) -> str:
    fixed = f["at_fixed_rate"]
    lines = [
        "",
        "| figure | value |",
        "|---|---|",
        f"| throughput, confirmed end to end | {f['throughput_msgs_per_s']:,.0f} msgs/s |",
        f"| latency intake → confirmed at max rate p50/p95/p99 | {f['p50_ms']:,.0f} / "
        f"{f['p95_ms']:,.0f} / {f['p99_ms']:,.0f} ms |",
        f"| latency at {fixed['offered_rate_per_s']:.0f} msgs/s p50/p95/p99 | "
        f"{fixed['p50_ms']:,.0f} / {fixed['p95_ms']:,.0f} / {fixed['p99_ms']:,.0f} ms |",
        f"| bare Kafka baseline (same run) | {f['baseline_msgs_per_s']:,.0f} msgs/s |",
        f"| ratio broker / baseline | {f['ratio']:.3f} |",
    ]
    for name, p in f["max_rate_run"]["processes"].items():
        lines.append(
            f"| {name} CPU / RSS | {p['cpu_pct_of_core']:.0f} % of a core / {p['rss_mb']:.0f} MB |"
        )
    return "\n".join(lines)


async def main_scale(args: argparse.Namespace) -> None:
    steps = [int(s) for s in args.steps.split(",")]
    out = []
    with data_dir(args) as tmp:
        async with (
            private_database(args.database_url) as url,
            running_stack(Path(tmp), url) as (stack, db),
        ):
            await run_phase(
                stack,
                db,
                make_events(200, patients=args.patients, seed=99),
                label="warm-up",
                concurrency=8,
                rate=None,
                timeout_s=120,
            )
            for i, n in enumerate(steps):
                r = await run_phase(
                    stack,
                    db,
                    make_events(n, patients=args.patients, seed=10 + i),
                    label=f"{n:,} msgs",
                    concurrency=args.concurrency,
                    rate=args.rate,
                    timeout_s=max(args.timeout, n / 5),  # a backlog drains at 10-25 msgs/s
                )
                out.append(r)
                print(
                    f"  {n:>7,}: {r['throughput_msgs_per_s']:,.0f} msgs/s, p99 {r['p99_ms']:,.0f}"
                    f" ms, db +{r['db_growth_bytes_per_message']:,} B/msg, RSS "
                    + ", ".join(f"{k} {v['rss_mb']:.0f}" for k, v in r["processes"].items())
                )
                # after every step: a long curve stopped part-way keeps what it measured
                database = "postgresql" if url_is_pg(args.database_url) else "sqlite"
                write_results("scale", {"steps": out, "database": database})


async def treserva_records(stack: Stack) -> list[dict[str, Any]]:
    from sandbox.simulators.treserva import TreservaSimSettings

    token = TreservaSimSettings().api_token
    out = []
    async with httpx.AsyncClient(timeout=120) as client:
        for kind in TRESERVA_KINDS:
            res = await client.get(
                f"{stack.treserva_sim_url}/api/v1/{kind.path}",
                headers={"authorization": f"Bearer {token}"},
            )
            res.raise_for_status()
            out += res.json()["items"]
    return out


async def main_drain(args: argparse.Namespace) -> None:
    n = args.drain
    with data_dir(args) as tmp:
        async with (
            private_database(args.database_url) as url,
            running_stack(Path(tmp), url) as (stack, db),
        ):
            control = stack.treserva_sim_control_url
            async with httpx.AsyncClient() as client:
                (
                    await client.put(f"{control}/_sim/fault", json={"mode": "down"})
                ).raise_for_status()
            events = make_events(n, patients=args.patients, seed=5)
            progress = Progress("piling up", n)
            t0 = time.monotonic()
            posted = await drive(
                stack,
                events,
                concurrency=args.concurrency,
                rate=None,
                label="pile",
                progress=progress,
            )
            while (await db.counts())["_messages"] < n:  # noqa: ASYNC110
                await asyncio.sleep(0.5)
            pile_s = time.monotonic() - t0
            counts = await db.counts()
            print(f"\n{n:,} messages stored in {pile_s:.0f}s; deliveries: {counts}")
            sampler = Sampler(stack).start()
            t_back = time.time()
            async with httpx.AsyncClient() as client:
                (
                    await client.put(f"{control}/_sim/fault", json={"mode": "none"})
                ).raise_for_status()
            progress = Progress("draining", n)
            progress.posted = n
            await wait_confirmed(
                db,
                progress,
                before={"_messages": 0},
                expected_messages=lambda: n,
                timeout_s=args.timeout * 4,
                stack=stack,
            )
            procs = sampler.stop()
            rows = await db.deliveries()
            treserva = [r for r in rows if r.destination == "treserva"]
            t_end = max(_ts(r.confirmed_at) or 0.0 for r in treserva)
            records = await treserva_records(stack)
            attempts = await db.attempts()
    # order: per patient, Treserva stored the notices in the order the router received them
    record_no = {r["meddelandeId"]: int(r["recordId"].split("-")[1]) for r in records}
    held = Counter(r["meddelandeId"] for r in records)
    by_patient: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for r in treserva:
        by_patient[r.pseudonym].append((r.id, r.message_id))
    violations = 0
    for chain in by_patient.values():
        stored = [record_no[m] for _, m in sorted(chain) if m in record_no]
        violations += sum(1 for a, b in itertools.pairwise(stored) if a > b)
    mine = {p.message_id for p in posted}
    figures = {
        "messages": n,
        "treserva_deliveries": len(treserva),
        "pile_up_s": round(pile_s, 1),
        "drain_s": round(t_end - t_back, 1),
        "drain_msgs_per_s": round(len(treserva) / max(1e-6, t_end - t_back), 1),
        "lost": sum(1 for r in treserva if r.message_id not in held),
        "duplicated_at_receiver": sum(c - 1 for c in held.values() if c > 1),
        "order_violations": violations,
        **attempts,
        "patients": len(by_patient),
        "all_posted_stored": len(mine) == n,
        "processes": procs,
        "database": "postgresql" if url_is_pg(args.database_url) else "sqlite",
    }
    print(json.dumps({k: v for k, v in figures.items() if k != "processes"}, indent=2))
    write_results("drain", figures)


async def main_scale_out(args: argparse.Namespace) -> None:
    url = args.database_url or "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    runs = {}
    for routers in (1, 2):
        with data_dir(args) as tmp:
            async with (
                private_database(url) as private,
                running_stack(Path(tmp), private, routers=routers) as (stack, db),
            ):
                await run_phase(
                    stack,
                    db,
                    make_events(200, patients=args.patients, seed=99),
                    label="warm-up",
                    concurrency=8,
                    rate=None,
                    timeout_s=120,
                )
                runs[routers] = await run_phase(
                    stack,
                    db,
                    make_events(args.messages, patients=args.patients, seed=1),
                    label=f"{routers} router(s)",
                    concurrency=args.concurrency,
                    rate=None,
                    timeout_s=args.timeout,
                )
                print(f"  {routers} router(s): {runs[routers]['throughput_msgs_per_s']} msgs/s")
    figures = {
        "one_router_msgs_per_s": runs[1]["throughput_msgs_per_s"],
        "two_routers_msgs_per_s": runs[2]["throughput_msgs_per_s"],
        "ratio_two_vs_one": round(
            runs[2]["throughput_msgs_per_s"] / runs[1]["throughput_msgs_per_s"], 3
        ),
        "runs": {str(k): v for k, v in runs.items()},
    }
    write_results("scale_out", figures)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=None, help="offered msgs/s (default: max)")
    parser.add_argument("--concurrency", type=int, default=48, help="POSTs in flight")
    parser.add_argument("--patients", type=int, default=2000, help="distinct made-up patients")
    parser.add_argument("--latency-rate", type=float, default=100.0)
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--database-url", default=None, help="PostgreSQL; default SQLite")
    parser.add_argument("--kafka", choices=["tansu", "apache"], default="tansu", help="broker")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--data-dir", type=Path, default=None, help="keep logs and SQLite here")
    parser.add_argument("--profile", action="store_true", help="py-spy the services")
    parser.add_argument("--profile-seconds", type=int, default=20)
    parser.add_argument("--profile-idle", action="store_true", help="sample waiting threads too")
    parser.add_argument("--scale", action="store_true", help="scale curve (see --steps)")
    parser.add_argument("--steps", default="1000,10000,100000")
    parser.add_argument("--drain", type=int, default=0, help="backlog drain with N messages")
    parser.add_argument("--scale-out", action="store_true", help="1 vs 2 routers (PostgreSQL)")
    args = parser.parse_args()
    BROKER["kind"] = args.kafka
    if args.scale:
        asyncio.run(main_scale(args))
    elif args.drain:
        asyncio.run(main_drain(args))
    elif args.scale_out:
        asyncio.run(main_scale_out(args))
    else:
        asyncio.run(main_bench(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
