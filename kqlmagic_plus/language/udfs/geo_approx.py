"""Shapes Kusto derives from a tolerance: densified lines and polygons, and which buffers and simplifications are
certainly null.

``geo_line_densify`` / ``geo_polygon_densify`` turn each planar edge (a straight line in longitude/latitude) into a
chain of geodesic edges that stays within the tolerance of it. Kusto computes on the S2 library, whose edge
tessellator works as follows, and so does this module: an edge is kept when its geodesic is close enough to the
planar edge, else it is split at its planar midpoint and each half is treated the same way. "Close enough" is
measured at two interior fractions, t = 0.31215691082248315 and 1 - t, where the distance between the geodesic
and the planar edge, against a tolerance scaled by 0.83829992569888509, bounds the largest distance along the
edge; edges longer than 90 degrees are always split. The new vertices are the planar midpoints, so an edge is
cut into 2^k equal planar parts (the reference shows [50,50]-[51,51] in 8 parts at the default 10 m and
[10,10]-[11,10] in 4).

The buffers and simplifications themselves (S2's buffer and snap-rounding operations) are not reproduced here.
What is certain is answered (:func:`approx_is_null`): Kusto answers null for an invalid shape or tolerance, and a
simplification whose tolerance exceeds the distance between every two of the shape's vertices leaves no edge.
"""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

from kqlmagic_plus.language.udfs import udf
from kqlmagic_plus.language.udfs.geo_shapes import EARTH_RADIUS_M, GeoUnsupported, _coord, _obj, lines_of, polygon_of

#: S2EdgeTessellator's interpolation fraction and tolerance scale (see the module text).
_T1 = 0.31215691082248315
_SCALE = 0.83829992569888509
#: The documented tolerance range of the densify functions, in meters.
DENSIFY_TOLERANCE = (0.1, 10000.0)
#: At most this many points in a densified shape (the documented constraint).
MAX_POINTS = 10485760


def _unit(lng: float, lat: float) -> tuple[float, float, float]:
    lo, la = math.radians(lng), math.radians(lat)
    return (math.cos(la) * math.cos(lo), math.cos(la) * math.sin(lo), math.sin(la))


def _slerp(a: tuple[float, float, float], b: tuple[float, float, float], t: float) -> tuple[float, float, float]:
    dot = max(-1.0, min(1.0, sum(x * y for x, y in zip(a, b, strict=True))))
    ang = math.acos(dot)
    if ang == 0:
        return a
    sa = math.sin(ang)
    wa, wb = math.sin((1 - t) * ang) / sa, math.sin(t * ang) / sa
    v = tuple(wa * x + wb * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in v))
    return (v[0] / norm, v[1] / norm, v[2] / norm)


def _chord(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b, strict=True)))


def _lerp(pa: tuple[float, float], pb: tuple[float, float], t: float) -> tuple[float, float]:
    return ((1 - t) * pa[0] + t * pb[0], (1 - t) * pa[1] + t * pb[1])


def _max_error(pa: tuple[float, float], pb: tuple[float, float]) -> float:
    a, b = _unit(*pa), _unit(*pb)
    if sum(x * y for x, y in zip(a, b, strict=True)) < -1e-14:
        return math.inf
    err = 0.0
    for t in (_T1, 1 - _T1):
        err = max(err, _chord(_slerp(a, b, t), _unit(*_lerp(pa, pb, t))))
    return err


def _tessellate(pa: tuple[float, float], pb: tuple[float, float], limit: float, out: list[tuple[float, float]],
                depth: int = 0) -> None:
    """Append the vertices after *pa* of edge pa-pb's geodesic chain to *out*."""
    if depth > 40 or _max_error(pa, pb) <= limit:
        out.append(pb)
        return
    mid = _lerp(pa, pb, 0.5)
    _tessellate(pa, mid, limit, out, depth + 1)
    _tessellate(mid, pb, limit, out, depth + 1)


def _chord_limit(tolerance_m: float) -> float:
    angle = _SCALE * tolerance_m / EARTH_RADIUS_M
    return 2 * math.sin(angle / 2)


def _densify_chain(coords: list[Any], limit: float) -> list[list[float]]:
    pts = [_coord(c) for c in coords]
    out: list[tuple[float, float]] = [pts[0]]  # type: ignore[list-item]
    for a, b in itertools.pairwise(pts):
        if abs(b[0] - a[0]) > 180:  # type: ignore[index]
            raise GeoUnsupported("an edge crossing the antimeridian (which way Kusto draws it is not documented)")
        _tessellate(a, b, limit, out)  # type: ignore[arg-type]
        if len(out) > MAX_POINTS:
            raise GeoUnsupported(f"more than {MAX_POINTS:,} points")
    # Kusto writes the numbers as they are: an unchanged vertex keeps its digits.
    return [[_num(x), _num(y)] for x, y in out]


def _num(v: float) -> float | int:
    return int(v) if float(v).is_integer() and abs(v) < 2 ** 53 else v


def _valid_tolerance(tol: Any) -> bool:
    return isinstance(tol, (int, float)) and DENSIFY_TOLERANCE[0] <= tol <= DENSIFY_TOLERANCE[1]


def densify_line(text: Any, tolerance: float) -> dict[str, Any] | None:
    """The densified LineString / MultiLineString, or None when the line or the tolerance is invalid."""
    if not _valid_tolerance(tolerance) or lines_of(text) is None:
        return None
    g = _obj(text)
    limit = _chord_limit(float(tolerance))
    if g["type"] == "LineString":  # type: ignore[index]
        return {"type": "LineString", "coordinates": _densify_chain(g["coordinates"], limit)}  # type: ignore[index]
    return {"type": "MultiLineString",
            "coordinates": [_densify_chain(p, limit) for p in g["coordinates"]]}  # type: ignore[index]


def densify_polygon(text: Any, tolerance: float) -> dict[str, Any] | None:
    """The densified Polygon / MultiPolygon (rings in their given order and direction), or None when invalid."""
    if not _valid_tolerance(tolerance) or polygon_of(text) is None:
        return None
    g = _obj(text)
    limit = _chord_limit(float(tolerance))
    if g["type"] == "Polygon":  # type: ignore[index]
        return {"type": "Polygon", "coordinates": [_densify_chain(r, limit) for r in g["coordinates"]]}  # type: ignore
    return {"type": "MultiPolygon",
            "coordinates": [[_densify_chain(r, limit) for r in p] for p in g["coordinates"]]}  # type: ignore[index]


def _dump(g: dict[str, Any] | None) -> str | None:
    return None if g is None else json.dumps(g, separators=(",", ":"))


@udf("geo_line_densify", ("string", "real"), "dynamic")
def geo_line_densify(text: str, tolerance: float) -> str | None:
    return _dump(densify_line(text, tolerance))


@udf("geo_polygon_densify", ("string", "real"), "dynamic")
def geo_polygon_densify(text: str, tolerance: float) -> str | None:
    return _dump(densify_polygon(text, tolerance))


# -- what is certainly null ---------------------------------------------------------------------------------

def _vertices(value: Any) -> list[tuple[float, float]]:
    """Every coordinate pair of a GeoJSON value (or a list of them)."""
    out: list[tuple[float, float]] = []

    def walk(v: Any) -> None:
        if isinstance(v, list):
            c = _coord(v) if len(v) == 2 and not isinstance(v[0], list) else None
            if c is not None:
                out.append(c)
            else:
                for x in v:
                    walk(x)
        elif isinstance(v, dict):
            walk(v.get("coordinates"))

    walk(value)
    return out


def _diameter_m(points: list[tuple[float, float]]) -> float:
    units = [_unit(*p) for p in points]
    best = 0.0
    for i, a in enumerate(units):
        for b in units[i + 1:]:
            best = max(best, 2 * math.asin(min(1.0, _chord(a, b) / 2)))
    return best * EARTH_RADIUS_M


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def approx_is_null(name: str, shape: Any, args: list[Any]) -> bool:
    """Whether Kusto's answer to ``name(shape, *args)`` is certainly null: an invalid shape, radius or tolerance,
    or a simplification whose tolerance exceeds every distance between two vertices (nothing is left)."""
    g = _obj(shape) if name != "geo_simplify_polygons_array" else None
    if name in ("geo_line_buffer", "geo_line_simplify"):
        valid = lines_of(shape) is not None
    elif name in ("geo_polygon_buffer", "geo_polygon_simplify"):
        valid = polygon_of(shape) is not None
    else:
        arr = json.loads(shape) if isinstance(shape, str) else shape
        valid = isinstance(arr, list) and bool(arr) and all(polygon_of(p) is not None for p in arr)
        g = arr
    if not valid:
        return True
    if name.endswith("_buffer"):
        radius = args[0] if args else None
        return _number(radius) and radius <= 0
    tol = args[0] if args else 10
    if not _number(tol):
        return False
    if tol < 0:
        return True
    return _diameter_m(_vertices(g)) < tol


def _certain_udf(name: str) -> None:
    def run(shape: str, arg: float) -> str | None:
        if approx_is_null(name, shape, [arg]):
            return None
        raise GeoUnsupported(f"{name}() of this shape: its vertices come from S2's buffer and snap-rounding "
                             "operations, which this engine does not reproduce (run the query on Azure Data "
                             "Explorer or Log Analytics)")

    udf(name + "_certain", ("string", "real"), "dynamic")(run)


for _name in ("geo_line_buffer", "geo_polygon_buffer", "geo_line_simplify", "geo_polygon_simplify",
              "geo_simplify_polygons_array"):
    _certain_udf(_name)
