"""Run every benchmark script (``benchmarks/bench_*.py``), each in a fresh process.

Each script prints its own markdown table and exits non-zero when a target is missed; this
runner prints them in order and reports which scripts missed. ``make bench`` calls it.
Pass script names (e.g. ``cron scheduler``) to run only those.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if argv:
        scripts = [s for s in scripts if any(s.stem == f"bench_{a}" for a in argv)]
    missed: list[str] = []
    for script in scripts:
        print(f"\n## {script.stem}\n", flush=True)
        rc = subprocess.call([sys.executable, str(script)])
        if rc != 0:
            missed.append(f"{script.name} (exit {rc})")
    if missed:
        print("\nmissed targets or failed: " + ", ".join(missed))
        return 1
    print("\nall benchmark targets met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
