"""Speed of the FHIR validator (tools/fhir-validator): what a JVM start costs, and what one
message costs once a server is warm.

    .venv/bin/python bench/fhir_validator_speed.py [--rounds 5] [--concurrency 2]

Measures, on the FHIR goldens (contracts/fixtures/**/*.fhir.json):

- batch, one file: ``java -jar fhir-validator.jar FILE`` wall time (JVM start, definitions
  loaded, one message validated), the price of asking without a server;
- batch, every golden in one JVM: wall time, and per file beyond the first;
- server start: spawn to "listening" (the server validates one resource to warm up first);
- per message, sequential over the goldens ``--rounds`` times: the first round (cold JIT) and
  the later ones apart, mean / p50 / p95 / max in milliseconds;
- ``--concurrency`` clients at once over the goldens: messages per second.

Writes bench/fhir_validator_speed.json and prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from sandbox.fhir_validator_process import (
    IG,
    JVM_OPTS,
    FhirValidatorServer,
    ensure_built,
    goldens,
)
from services.messaging.fhir_validator import HttpFhirValidator

OUT = Path(__file__).with_name("fhir_validator_speed.json")


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 1),
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 1),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def _batch(files: list[Path]) -> float:
    argv = ["java", *JVM_OPTS, "-jar", str(ensure_built()), "--ig", str(IG)]
    began = time.monotonic()
    done = subprocess.run(  # noqa: S603
        [*argv, *map(str, files)], capture_output=True, check=False
    )
    if done.returncode not in (0, 1):  # 1: some file has an error, still a full run
        raise SystemExit(f"the validator failed ({done.returncode}): {done.stderr[-2000:]!r}")
    return time.monotonic() - began


async def _serve_bench(base_url: str, bodies: list[bytes], rounds: int, concurrency: int) -> Any:
    async with HttpFhirValidator(base_url, timeout_s=120) as client:
        per_round: list[list[float]] = []
        for _ in range(rounds):
            samples = []
            for body in bodies:
                began = time.monotonic()
                await client.validate(body)
                samples.append(time.monotonic() - began)
            per_round.append(samples)
        queue = list(bodies) * 2
        began = time.monotonic()

        async def worker() -> None:
            while queue:
                await client.validate(queue.pop())

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        throughput = len(bodies) * 2 / (time.monotonic() - began)
    return per_round, throughput


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    files = goldens()
    ensure_built()
    one = _batch(files[:1])
    every = _batch(files)
    bodies = [f.read_bytes() for f in files]
    result: dict[str, Any] = {
        "goldens": len(files),
        "mean_golden_bytes": round(statistics.fmean(map(len, bodies))),
        "jvm_opts": JVM_OPTS,
        "batch_one_file_s": round(one, 2),
        "batch_every_golden_s": round(every, 2),
        "batch_per_extra_file_ms": round((every - one) / max(1, len(files) - 1) * 1000, 1),
    }
    box: dict[str, Any] = {}
    done = threading.Event()

    def keep() -> None:  # the server lives as long as this thread (PR_SET_PDEATHSIG)
        box["server"] = FhirValidatorServer().start()
        done.set()
        box["stop"] = threading.Event()
        box["stop"].wait()

    thread = threading.Thread(target=keep, daemon=True)
    thread.start()
    done.wait(timeout=300)
    server: FhirValidatorServer = box["server"]
    try:
        result["server_start_s"] = round(server.started_in_s or 0.0, 2)
        per_round, throughput = asyncio.run(
            _serve_bench(server.base_url, bodies, args.rounds, args.concurrency)
        )
    finally:
        server.stop()
        box["stop"].set()
    result["server_first_round"] = _ms(per_round[0])
    result["server_warm_rounds"] = _ms([s for r in per_round[1:] for s in r])
    result[f"server_messages_per_s_concurrency_{args.concurrency}"] = round(throughput, 1)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
