"""The state of one figure being built, and which columns play which part (x, y, series, anomalies)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kqlmagic_plus.display.charts.constants import BAR_CHARTS, CATEGORICAL, MAX_SERIES, NUMERIC, TEMPORAL
from kqlmagic_plus.display.charts.frame import Frame, describe
from kqlmagic_plus.display.charts.text import esc, esc_array
from kqlmagic_plus.errors import ChartError, closest_first


class Build:
    """Builds one figure; collects notices (downsampling, ignored properties) as it goes."""

    def __init__(self, result: Any, spec: Any):
        self.result = result
        self.spec = spec
        self.chart = (spec.chart or "").lower()
        self.notices: list[str] = []
        self.split_mode = "none"
        self.split_names: list[str] = []


@dataclass
class Roles:
    x: str | None
    ys: list[str]
    series: list[str]
    anomalies: list[str] = field(default_factory=list)


@dataclass
class Trace:
    name: str
    x: Any
    y: Any
    ycol: str
    label: str | None
    #: Which panel / axis the trace belongs to under ysplit.
    split: str = ""
    hover: Any = None


def check_names(build: Build, frame: Frame) -> None:
    cols = frame.columns
    named = [("xcolumn", [build.spec.xcolumn] if build.spec.xcolumn else []),
             ("ycolumns", list(build.spec.ycolumns)), ("series", list(build.spec.series)),
             ("anomalycolumns", list(build.spec.anomalycolumns))]
    for prop, names in named:
        for name in names:
            if name not in cols:
                listing = ", ".join(closest_first(name, cols)[:8])
                raise ChartError(f"{prop} names column {name!r}, which the result does not have "
                                 f"(columns: {listing})")


def numeric_ys(build: Build, frame: Frame, exclude: set[str]) -> list[str]:
    if build.spec.ycolumns:
        ys = list(build.spec.ycolumns)
        for y in ys:
            if frame.types[y] not in NUMERIC:
                raise ChartError(f"ycolumns: column {y!r} is {frame.types[y]}, not a number")
        return ys
    ys = frame.of(NUMERIC, exclude)
    if not ys:
        raise ChartError(f"{build.chart} needs a numeric column for the y-axis and the result has "
                         f"none left after the x-axis ({describe(frame)})")
    return ys


def assign_roles(build: Build, frame: Frame) -> Roles:
    spec = build.spec
    anomalies = list(spec.anomalycolumns)
    if build.chart == "anomalychart" and not anomalies:
        anomalies = [c for c in frame.of(NUMERIC) if "anomal" in c.lower()
                     and c not in spec.ycolumns and c != spec.xcolumn]
        if not anomalies:
            build.notices.append("anomalychart without anomalycolumns: no anomalies marked "
                                 "(add with (anomalycolumns=...))")
    x = spec.xcolumn or guess_x(build, frame, set(spec.ycolumns) | set(spec.series) | set(anomalies))
    taken = {x, *spec.series, *anomalies}
    ys = numeric_ys(build, frame, taken)
    for a in anomalies:
        if frame.types[a] not in NUMERIC:
            raise ChartError(f"anomalycolumns: column {a!r} is {frame.types[a]}, not a number")
    series = list(spec.series) if spec.series else frame.of(CATEGORICAL, {x, *ys, *anomalies})
    return Roles(x, ys, series, anomalies)


def guess_x(build: Build, frame: Frame, reserved: set[str]) -> str:
    cols = [c for c in frame.columns if c not in reserved]
    temporal = [c for c in cols if frame.types[c] in TEMPORAL]
    if build.chart in ("timechart", "anomalychart"):
        if temporal:
            return temporal[0]
        raise ChartError(f"{build.chart} needs a datetime column for the x-axis ({describe(frame)}); "
                         "use linechart, or name one with xcolumn=")
    if build.chart in BAR_CHARTS:
        non_numeric = [c for c in cols if frame.types[c] not in NUMERIC]
        if non_numeric:
            return non_numeric[0]
        return cols[0] if cols else frame.columns[0]
    if temporal:
        return temporal[0]
    numeric = [c for c in cols if frame.types[c] in NUMERIC]
    if len(numeric) >= 2:
        return numeric[0]
    return cols[0] if cols else frame.columns[0]


def series_groups(build: Build, frame: Frame, series: list[str],
                  ys: list[str] | None = None) -> list[tuple[str | None, Any]]:
    """(series label, row positions) in order of first appearance.

    With *ys*, at most MAX_SERIES series are kept: those with the largest totals (a guessed
    series column can be an id with a value per row; thousands of lines help no one).
    """
    import numpy as np
    import pandas as pd

    if not series:
        return [(None, np.arange(len(frame.df)))]
    def text(c: str) -> Any:
        col = frame.df[c]
        return col if frame.types[c] in CATEGORICAL else col.astype(str)

    keys = text(series[0])
    for c in series[1:]:
        keys = keys + ", " + text(c)
    codes, uniques = pd.factorize(keys, sort=False)
    if ys is not None and len(uniques) > MAX_SERIES:
        weight = np.nansum(np.abs(frame.df[ys].to_numpy(dtype="float64", na_value=np.nan)), axis=1)
        totals = np.bincount(codes, weights=weight, minlength=len(uniques))
        keep = np.sort(np.argsort(-totals, kind="stable")[:MAX_SERIES])
        build.notices.append(f"showing {MAX_SERIES} of {len(uniques):,} series (largest totals); "
                             "filter the query or name series= to see others")
    else:
        keep = np.arange(len(uniques))
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    return [(str(uniques[k]) if uniques[k] != "" else "(empty)", order[bounds[k]:bounds[k + 1]])
            for k in keep]


def xy_traces(build: Build, frame: Frame, roles: Roles, sort_x: bool) -> list[Trace]:
    import numpy as np
    import pandas as pd

    xcol = roles.x
    groups = series_groups(build, frame, roles.series, roles.ys)
    xs_all = frame.df[xcol].to_numpy()
    if frame.types[xcol] in CATEGORICAL:
        xs_all = esc_array(xs_all)
    traces = []
    for label, idx in groups:
        xs = xs_all[idx]
        if frame.types[xcol] not in CATEGORICAL:
            known = ~pd.isna(xs)
            idx, xs = idx[known], xs[known]
            if sort_x:
                order = np.argsort(xs, kind="stable")
                idx, xs = idx[order], xs[order]
        for y in roles.ys:
            ys = frame.df[y].to_numpy()[idx]
            if build.spec.accumulate:
                ys = np.nancumsum(ys)
            name = esc(y) if label is None else (esc(label) if len(roles.ys) == 1
                                                 else f"{esc(label)}:{esc(y)}")
            # ysplit splits by y column; with one y column, by series (else there is one group).
            split = y if len(roles.ys) > 1 or label is None else label
            traces.append(Trace(name, xs, ys, y, label, split=split))
    return traces


def kind_option(build: Build, allowed: tuple[str, ...]) -> str:
    kind = build.spec.kind or "default"
    if kind not in allowed and kind != "map":
        build.notices.append(f"kind={kind} is not a {build.chart} kind ({', '.join(allowed)}); "
                             "drawn as default")
        return "default"
    return kind
