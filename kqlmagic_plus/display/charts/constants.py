"""Limits, KQL type groups and chart families shared by the chart builders."""

#: Points drawn per figure by line-like charts before min/max downsampling starts.
MAX_POINTS = 10_000
#: Drawn points above which line and scatter traces switch to WebGL (Scattergl).
WEBGL_POINTS = 5_000
#: Series drawn at most; the rest are named in a notice (largest totals are kept).
MAX_SERIES = 100
#: Bars per series, pie slices, treemap leaves, ysplit panels/axes.
MAX_BARS = 2_000
MAX_SLICES = 30
MAX_LEAVES = 2_000
MAX_SPLITS = 5

NUMERIC = frozenset({"int", "long", "real", "decimal", "timespan"})
TEMPORAL = frozenset({"datetime"})
CATEGORICAL = frozenset({"string", "guid", "bool", "dynamic"})

LINE_CHARTS = ("timechart", "linechart", "areachart", "stackedareachart", "scatterchart", "anomalychart")
BAR_CHARTS = ("barchart", "columnchart")

HEIGHT = 450
