"""Time `%load_ext kqlmagic_plus` in fresh processes (median of N), side by side with `%load_ext Kqlmagic`
when Kqlmagic is importable (give --kqlmagic-python to use another interpreter that has it).

    python benchmarks/load_time.py [--runs 10] [--kqlmagic-python /path/to/venv/bin/python]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys

PROBE = """
import sys, time
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
before = len(sys.modules)
t0 = time.perf_counter()
ip.run_line_magic("load_ext", {ext!r})
elapsed = time.perf_counter() - t0
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & {{"pandas", "duckdb", "pyspark", "plotly", "azure"}})
print(elapsed, len(sys.modules) - before, ",".join(heavy) or "-")
"""


def measure(python: str, ext: str, runs: int) -> tuple[float, int, str] | None:
    times, mods, heavy = [], 0, "-"
    for _ in range(runs):
        proc = subprocess.run([python, "-c", PROBE.format(ext=ext)], capture_output=True, text=True)
        if proc.returncode != 0 or not proc.stdout.strip():
            return None
        t, mods_s, heavy = proc.stdout.split()[-3:]
        times.append(float(t))
        mods = int(mods_s)
    return statistics.median(times), mods, heavy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--kqlmagic-python", default=sys.executable,
                    help="interpreter with Kqlmagic installed (default: this one)")
    args = ap.parse_args()
    ours = measure(sys.executable, "kqlmagic_plus", args.runs)
    theirs = measure(args.kqlmagic_python, "Kqlmagic", args.runs) if shutil.which(args.kqlmagic_python) or \
        args.kqlmagic_python == sys.executable else None
    print(f"%load_ext in fresh processes, median of {args.runs}")
    print(f"{'extension':<16}{'median s':>10}{'modules':>10}  heavy modules imported")
    if ours is None:
        sys.exit("kqlmagic_plus failed to load")
    print(f"{'kqlmagic_plus':<16}{ours[0]:>10.4f}{ours[1]:>10}  {ours[2]}")
    if theirs is None:
        print(f"{'Kqlmagic':<16}{'n/a':>10}  (not installed for {args.kqlmagic_python})")
    else:
        print(f"{'Kqlmagic':<16}{theirs[0]:>10.4f}{theirs[1]:>10}  {theirs[2]}")
        print(f"\nkqlmagic_plus loads {theirs[0] / ours[0]:.1f}x faster (target >= 20x, <= 0.15 s)")


if __name__ == "__main__":
    main()
