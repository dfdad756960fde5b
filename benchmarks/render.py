"""Time to build and serialize a 1,000,000-point timechart, and how big it is.

    python benchmarks/render.py [--points 1000000] [--series 1] [--runs 5]

Each run starts from a fresh Result (so the Arrow -> pandas conversion the first display pays is
counted) and measures:

* build      - ``charts.figure_for``: roles, min/max downsampling, the plotly Figure
* serialize  - ``Figure.to_json`` (what the notebook stores)
* bundle     - ``charts.mimebundle_for`` end to end (figure + JSON + the HTML fallback), for a
               chart that does not carry plotly.js (every chart after the first)

and prints the median of the runs, the figure JSON size and the size of the whole display bundle.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_table(points: int, series: int):
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(0)
    per = points // series
    start = np.datetime64("2024-01-01T00:00:00", "us")
    stamps = start + np.arange(per).astype("timedelta64[s]")
    values = np.sin(np.arange(per) / 20_000) * 100 + 500
    cols = {
        "TimeGenerated": pa.array(np.tile(stamps, series), pa.timestamp("us", tz="UTC")),
        "Value": pa.array(np.tile(values, series) + rng.normal(0, 10, per * series)),
    }
    if series > 1:
        cols["Host"] = pa.array(np.repeat([f"host-{i:02d}" for i in range(series)], per))
    return pa.table(cols)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--series", type=int, default=1)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)

    from kqlmagic_plus.display import charts
    from kqlmagic_plus.language.render import split_render
    from kqlmagic_plus.results import Result, result_from_arrow

    _, spec = split_render("T | render timechart")
    base = result_from_arrow(make_table(args.points, args.series))
    charts.chart_html("{}")  # the first chart of a process carries plotly.js; measure the rest

    def fresh() -> Result:
        return Result(table=base.table, kql_types=base.kql_types, render=spec)

    build, serialize, bundle = [], [], []
    for _ in range(args.runs):
        r = fresh()
        t0 = time.perf_counter()
        fig = charts.figure_for(r)
        t1 = time.perf_counter()
        fig_json = fig.to_json(validate=False)
        t2 = time.perf_counter()
        build.append(t1 - t0)
        serialize.append(t2 - t1)
        r = fresh()
        t3 = time.perf_counter()
        out = charts.mimebundle_for(r)
        bundle.append(time.perf_counter() - t3)
    assert out is not None
    drawn = sum(len(d.x) for d in fig.data)
    bundle_bytes = len(json.dumps(out["application/vnd.plotly.v1+json"])) + len(out["text/html"])
    print(f"timechart: {args.points:,} points in {args.series} series -> {drawn:,} drawn "
          f"({', '.join(sorted({d.type for d in fig.data}))})")
    print(f"build      median {statistics.median(build) * 1000:8.1f} ms   (runs: {args.runs})")
    print(f"serialize  median {statistics.median(serialize) * 1000:8.1f} ms")
    print(f"bundle     median {statistics.median(bundle) * 1000:8.1f} ms   (figure + JSON + HTML fallback)")
    print(f"figure JSON        {len(fig_json) / 1e6:8.3f} MB")
    print(f"display bundle     {bundle_bytes / 1e6:8.3f} MB   (plotly mime JSON + text/html, no plotly.js)")
    print(f"plotly.js, once    {len(charts._plotlyjs()) / 1e6:8.3f} MB   (carried by the first chart only)")


if __name__ == "__main__":
    main()
