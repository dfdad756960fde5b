"""Local Spark start-up, quiet (ours) vs PySpark's own builder: fresh processes, the first query answered.

    python benchmarks/spark_startup.py --runs 3

Each run is a new Python process that starts a local[2] session and answers ``SELECT 1``, timed from before
the session is asked for to the answer (imports excluded): "pyspark" is ``SparkSession.builder...getOrCreate()``
as a user would write it; "quiet" is the same builder started through
:mod:`kqlmagic_plus.engines.spark.quiet` (our log4j2 file, the JVM's output to a log file, SPARK_LOCAL_IP);
"%%sparkhunt" is the whole session a cell gets (the Java check, machine-sized defaults, quiet start).
Prints the median of --runs for each, side by side, its ratio to "pyspark", and the lines each printed to the
terminal (stdout + stderr): the noise the quiet start removes. Runs alternate, so load on a shared machine falls
on all alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PLAIN = """
import time
from pyspark.sql import SparkSession
t = time.perf_counter()
spark = (SparkSession.builder.master("local[2]").appName("bench").config("spark.driver.memory", "1g")
         .config("spark.sql.shuffle.partitions", "4").getOrCreate())
spark.sql("SELECT 1 AS one").collect()
print("SECONDS", time.perf_counter() - t)
"""

QUIET_LAUNCH = """
import time
from pyspark.sql import SparkSession
from kqlmagic_plus.engines.spark import quiet
t = time.perf_counter()
conf = quiet.session_conf({"spark.master": "local[2]", "spark.app.name": "bench", "spark.driver.memory": "1g",
                           "spark.sql.shuffle.partitions": "4"})
builder = SparkSession.builder
for k, v in conf.items():
    builder = builder.config(k, v)
spark = quiet.get_or_create(builder, conf)
spark.sql("SELECT 1 AS one").collect()
print("SECONDS", time.perf_counter() - t)
"""

SESSION = """
import time
import kqlmagic_plus.engines.spark.sessions as s
t = time.perf_counter()
session = s.manager().connect("local[2]", conf={"spark.driver.memory": "1g", "spark.sql.shuffle.partitions": "4"},
                              say=lambda *_: None)
session.spark.sql("SELECT 1 AS one").collect()
print("SECONDS", time.perf_counter() - t)
"""


def one(code: str, cwd: str) -> tuple[float, int]:
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("KQLMAGIC_PLUS_DEBUG", None)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900, cwd=cwd, env=env)
    lines = (run.stdout + run.stderr).splitlines()
    secs = [float(ln.split()[1]) for ln in lines if ln.startswith("SECONDS ")]
    if run.returncode != 0 or not secs:
        raise SystemExit(f"run failed:\n{run.stderr[-2000:]}")
    return secs[0], len([ln for ln in lines if not ln.startswith("SECONDS ") and ln.strip()])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    paths = (("pyspark", PLAIN), ("quiet", QUIET_LAUNCH), ("%%sparkhunt", SESSION))
    times: dict[str, list[float]] = {name: [] for name, _ in paths}
    noise: dict[str, list[int]] = {name: [] for name, _ in paths}
    with tempfile.TemporaryDirectory() as cwd:
        for _ in range(args.runs):
            for name, code in paths:
                secs, lines = one(code, cwd)
                times[name].append(secs)
                noise[name].append(lines)
    base = statistics.median(times["pyspark"])
    print(f"local[2] start + SELECT 1, fresh processes, median of {args.runs}")
    print(f"{'path':<12}{'median s':>10}{'runs (s)':>28}{'vs pyspark':>12}{'lines printed':>15}")
    for name, _ in paths:
        med = statistics.median(times[name])
        runs = " ".join(f"{t:.1f}" for t in times[name])
        print(f"{name:<12}{med:>10.1f}{runs:>28}{med / base:>11.2f}x{statistics.median(noise[name]):>15.0f}")


if __name__ == "__main__":
    main()
