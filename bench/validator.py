"""How many plan documents per second the validator judges (parse + schema + rules).

    .venv/bin/python bench/validator.py [--seconds S] [--json FILE]

Prints one table row per document kind. Figures, never pass/fail: quote them
in docs/performance.md with the machine they came from.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from agent.plan.document import judge

REPO = Path(__file__).resolve().parents[1]


def _documents() -> dict[str, bytes]:
    intersection = (REPO / "examples" / "plans" / "intersection-8phase.json").read_bytes()
    corridor = (REPO / "examples" / "plans" / "corridor-2-main-2nd.json").read_bytes()
    unsafe = json.loads(intersection)
    unsafe["phases"][2]["yellow"] = 2.5
    unsafe["patterns"][0]["splits"]["2"] = 60
    return {
        "8-phase, 4 patterns (valid)": intersection,
        "4-phase, 3 patterns (valid)": corridor,
        "8-phase, rule violations": json.dumps(unsafe).encode(),
    }


def measure(document: bytes, seconds: float) -> tuple[int, float]:
    """Judge ``document`` repeatedly for about ``seconds``; return (count, elapsed)."""
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(50):
            judge(document)
        count += 50
        now = time.perf_counter()
        if now >= deadline:
            return count, now - start


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per document kind")
    parser.add_argument(
        "--json", type=Path, default=None, help="also write the figures to this file (JSON)"
    )
    args = parser.parse_args()
    figures: dict[str, dict[str, float]] = {}
    print(f"validator throughput on {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")  # fmt: skip
    print(f"{'document':32} {'bytes':>7} {'plans/s':>9} {'µs/plan':>9}")
    for name, document in _documents().items():
        judge(document)  # warm-up
        count, elapsed = measure(document, args.seconds)
        rate = count / elapsed
        print(f"{name:32} {len(document):7d} {rate:9.0f} {1e6 / rate:9.1f}")
        figures[name] = {"bytes": len(document), "per_s": round(rate), "us_each": 1e6 / rate}
    if args.json is not None:
        args.json.write_text(json.dumps({"documents": figures}, indent=2) + "\n")


if __name__ == "__main__":
    main()
