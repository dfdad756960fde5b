"""Beacon hunt detection quality on labelled traffic: recall and false positives per engine and setting.

    python benchmarks/hunt_quality.py --seeds 20 --spark-seeds 5

Traffic: ``kqlmagic_plus.hunts.traffic.labelled_day`` (40 beacons a day: periods 10 s - 1 h log-uniform, jitter
0-10 %, 0-20 % missed check-ins, half on busy hosts; benign: Poisson pairs, bursty browsing, popular periodic
services, private periodic destinations). "target" is the beacons of 30 s - 1 h (the spec's quality target);
"all" includes the 10-30 s ones. Each row: the hunt with that setting on that engine over the same seeds.
"""

from __future__ import annotations

import argparse

SETTINGS = {
    "defaults": {},
    "compat=notebook": {"compat": "notebook"},
    "jitter 1 s, 0 %": {"jitter": 1, "jitter_pct": 0},
    "jitter 5 s, 0 %": {"jitter": 5, "jitter_pct": 0},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--spark-seeds", type=int, default=2, help="seeds also run on local Spark (0: none)")
    ap.add_argument("--spark-settings", default="defaults,compat=notebook",
                    help="the settings also run on Spark (comma-separated names from the table)")
    args = ap.parse_args()

    from kqlmagic_plus.hunts import run_hunt
    from kqlmagic_plus.hunts.traffic import labelled_day, score

    spark = None
    if args.spark_seeds:
        from pyspark.sql import SparkSession

        spark = (SparkSession.builder.master("local[2]").appName("hunt-quality")
                 .config("spark.sql.session.timeZone", "UTC").config("spark.sql.shuffle.partitions", "4")
                 .config("spark.ui.enabled", "false").config("spark.driver.memory", "4g").getOrCreate())
        spark.sparkContext.setLogLevel("ERROR")

    totals: dict[tuple[str, str], dict[str, int]] = {}
    mismatches = 0
    for seed in range(args.seeds):
        table, labels = labelled_day(seed=seed)
        for name, params in SETTINGS.items():
            rows = run_hunt("beacon", dataframe=table, end_date="2024-05-01", **params).table.to_pylist()
            engines = [("duckdb", rows)]
            if spark is not None and seed < args.spark_seeds and name in args.spark_settings.split(","):
                srows = run_hunt("beacon", engine="spark", session=spark, dataframe=table, end_date="2024-05-01",
                                 **params).table.to_pylist()
                mismatches += srows != rows
                engines.append(("spark", srows))
            for engine, got in engines:
                s = score(got, labels)
                t = totals.setdefault((name, engine), {"seeds": 0, "target": 0, "target_found": 0, "beacons": 0,
                                                      "beacons_found": 0, "benign": 0, "false_positives": 0})
                t["seeds"] += 1
                for k in ("target", "target_found", "beacons", "beacons_found", "benign", "false_positives"):
                    t[k] += s[k]

    print(f"{'setting':<18} {'engine':<7} {'seeds':>5} {'target recall':>18} {'all recall':>16} "
          f"{'benign flagged':>18}")
    for (name, engine), t in totals.items():
        print(f"{name:<18} {engine:<7} {t['seeds']:>5} "
              f"{t['target_found']:>6}/{t['target']:<4} {100 * t['target_found'] / t['target']:5.1f}% "
              f"{t['beacons_found']:>5}/{t['beacons']:<4} {100 * t['beacons_found'] / t['beacons']:5.1f}% "
              f"{t['false_positives']:>6}/{t['benign']:<6} {100 * t['false_positives'] / t['benign']:5.2f}%")
    if spark is not None:
        runs = args.spark_seeds * len(args.spark_settings.split(","))
        print(f"\nDuckDB vs Spark row-for-row mismatches: {mismatches} (of {runs} runs)")


if __name__ == "__main__":
    main()
