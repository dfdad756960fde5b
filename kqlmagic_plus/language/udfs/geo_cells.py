"""Geospatial cells and points: H3 cells, S2 cells, geohashes, distances, azimuths and point buffers.

The Earth models are the ones the KQL reference states: the sphere of S2 (radius 6,371,010 m) for distances,
circles, angles, azimuths, S2 cells and point buffers, and the WGS-84 ellipsoid (geodesics by GeographicLib)
when ``geo_distance_2points`` is asked for the spheroid. H3 cells come from the h3 library, S2 cells from
s2geometry, and geohashes are computed by their public definition (interleaved longitude / latitude bisection,
base-32 text).

Invalid input (a coordinate out of range, a malformed token, a level out of the documented range) gives null,
or the empty string where the KQL function returns a string.
"""

from __future__ import annotations

import json
import math
from typing import Any

from kqlmagic_plus.language.udfs import udf
from kqlmagic_plus.language.udfs.geojson import members

#: S2's Earth radius in meters (S2Earth::RadiusMeters); the reference's distances are on this sphere.
EARTH_RADIUS_M = 6371010.0

H3_DEFAULT_RES = 6
S2_DEFAULT_LEVEL = 11
GEOHASH_DEFAULT_ACCURACY = 5
H3_MAX_POLYGON_CELLS = 61680
S2_MAX_COVERING_CELLS = 65536
H3_MAX_RING = 142


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _valid_point(lng: Any, lat: Any) -> bool:
    try:
        x, y = float(lng), float(lat)
    except (TypeError, ValueError):
        return False
    return math.isfinite(x) and math.isfinite(y) and -180.0 <= x <= 180.0 and -90.0 <= y <= 90.0


def _int_in(value: Any, lo: int, hi: int) -> int | None:
    """*value* as an int when it is a whole number within [lo, hi]."""
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(f) or f != int(f) or not lo <= int(f) <= hi:
        return None
    return int(f)


def _fnv1a64(text: str) -> int:
    h = 0xCBF29CE484222325
    for byte in text.encode():
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def _hash_set_order(tokens: list[str]) -> list[str]:
    """*tokens* in the order a hash set of strings with these properties iterates them: FNV-1a hashes, 8
    buckets growing x8 (x2 from 512) past load 1, a new bucket's first element appended to the list, a later
    one put in front of its bucket's elements. Kusto returns neighbour and polygon-cell arrays in exactly this
    order (it shows in every example of geo_s2cell_neighbors, geo_geohash_neighbors, geo_polygon_to_h3cells),
    so the same cells come back in the same order here."""
    buckets = 8
    order: list[int] = []  # bucket ids in list order
    groups: dict[int, list[str]] = {}
    seen: set[str] = set()
    hashes: dict[str, int] = {}

    def place(t: str) -> None:
        b = hashes[t] % buckets
        if b in groups:
            groups[b].insert(0, t)
        else:
            groups[b] = [t]
            order.append(b)

    for t in tokens:
        if t in seen:
            continue
        if len(seen) + 1 > buckets:
            current = [x for b in order for x in groups[b]]
            buckets = buckets * 8 if buckets < 512 else buckets * 2
            order, groups = [], {}
            for x in current:
                place(x)
        seen.add(t)
        hashes[t] = _fnv1a64(t)
        place(t)
    return [x for b in order for x in groups[b]]


def _point(lng: float, lat: float) -> str:
    return _dump({"type": "Point", "coordinates": [lng, lat]})


def _polygon(ring: list[list[float]]) -> str:
    return _dump({"type": "Polygon", "coordinates": [ring]})


# -- H3 ----------------------------------------------------------------------------------------------------

def _h3() -> Any:
    import h3

    return h3


def _h3_cell(token: Any) -> str | None:
    """*token* when it is a valid H3 cell token (lower-case hex, as geo_point_to_h3cell writes them)."""
    if not isinstance(token, str) or not token or len(token) > 16 or token != token.strip():
        return None
    h3 = _h3()
    try:
        return token if h3.is_valid_cell(token) else None
    except (ValueError, TypeError):
        return None


@udf("geo_point_to_h3cell", ("real", "real", "long"), "string", nulls=True)
def geo_point_to_h3cell(lng: Any, lat: Any, res: Any) -> str:
    r = _int_in(res, 0, 15)
    if r is None or not _valid_point(lng, lat):
        return ""
    return _h3().latlng_to_cell(float(lat), float(lng), r)


@udf("geo_h3cell_level", ("string",), "int")
def geo_h3cell_level(token: str) -> int | None:
    cell = _h3_cell(token)
    return None if cell is None else _h3().get_resolution(cell)


@udf("geo_h3cell_parent", ("string", "long"), "string", nulls=True)
def geo_h3cell_parent(token: Any, res: Any) -> str:
    """The parent at resolution *res*; -1 stands for "the immediate parent" (the argument left out)."""
    cell = _h3_cell(token)
    if cell is None or res is None:
        return ""
    h3 = _h3()
    own = h3.get_resolution(cell)
    want = own - 1 if res == -1 else _int_in(res, 0, 14)
    if want is None or want < 0 or want > own:
        return ""
    return h3.cell_to_parent(cell, want)


@udf("geo_h3cell_children", ("string", "long"), "dynamic")
def geo_h3cell_children(token: str, res: int) -> str | None:
    """The children at resolution *res*; -1 stands for the immediate children (the argument left out)."""
    cell = _h3_cell(token)
    if cell is None:
        return None
    h3 = _h3()
    own = h3.get_resolution(cell)
    want = own + 1 if res == -1 else _int_in(res, 1, 15)
    # The reference allows at most five levels below the cell (16,807 children).
    if want is None or want > 15 or want < own or want - own > 5:
        return None
    return _dump(list(h3.cell_to_children(cell, want)))


def _h3_rings(cell: str, k: int) -> list[list[str]]:
    """The cells at grid distance 0..k, each ring in the order the grid-disk walk visits it."""
    h3 = _h3()
    rings: list[list[str]] = [[] for _ in range(k + 1)]
    for c in h3.grid_disk(cell, k):
        try:
            d = h3.grid_distance(cell, c)
        except h3.H3BaseException:  # no distance across pentagon distortion: the cell is left out
            continue
        if 0 <= d <= k:
            rings[d].append(c)
    return rings


@udf("geo_h3cell_neighbors", ("string",), "dynamic")
def geo_h3cell_neighbors(token: str) -> str | None:
    cell = _h3_cell(token)
    if cell is None:
        return None
    return _dump(_h3_rings(cell, 1)[1])


@udf("geo_h3cell_rings", ("string", "long"), "dynamic")
def geo_h3cell_rings(token: str, distance: int) -> str | None:
    cell = _h3_cell(token)
    k = _int_in(distance, 0, H3_MAX_RING)
    if cell is None or k is None:
        return None
    return _dump(_h3_rings(cell, k))


@udf("geo_h3cell_to_central_point", ("string",), "dynamic")
def geo_h3cell_to_central_point(token: str) -> str | None:
    cell = _h3_cell(token)
    if cell is None:
        return None
    lat, lng = _h3().cell_to_latlng(cell)
    return _point(lng, lat)


@udf("geo_h3cell_to_polygon", ("string",), "dynamic")
def geo_h3cell_to_polygon(token: str) -> str | None:
    cell = _h3_cell(token)
    if cell is None:
        return None
    ring = [[lng, lat] for lat, lng in _h3().cell_to_boundary(cell)]
    ring.append(list(ring[0]))
    return _polygon(ring)


# -- GeoJSON input -----------------------------------------------------------------------------------------

def _position(p: Any) -> tuple[float, float] | None:
    if not isinstance(p, list) or len(p) < 2 or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in p[:2]):
        return None
    return (float(p[0]), float(p[1])) if _valid_point(p[0], p[1]) else None


def _ring(r: Any) -> list[tuple[float, float]] | None:
    """A closed linear ring's distinct vertices (the closing one dropped), None when it is not one."""
    if not isinstance(r, list) or len(r) < 4:
        return None
    pts = [_position(p) for p in r]
    if any(p is None for p in pts) or pts[0] != pts[-1]:
        return None
    return pts[:-1]  # type: ignore[return-value]


def _rings(poly: Any) -> list[list[tuple[float, float]]] | None:
    if not isinstance(poly, list) or not poly:
        return None
    rings = [_ring(r) for r in poly]
    return None if any(r is None for r in rings) else rings  # type: ignore[return-value]


def _vertices(line: Any) -> list[tuple[float, float]] | None:
    if not isinstance(line, list) or len(line) < 2:
        return None
    pts = [_position(p) for p in line]
    return None if any(p is None for p in pts) else pts  # type: ignore[return-value]


def _polygons(text: Any) -> list[list[list[tuple[float, float]]]] | None:
    """The rings of each polygon of a GeoJSON Polygon / MultiPolygon, None when it is not a valid one."""
    return members(text, "Polygon", "MultiPolygon", _rings)


def _lines(text: Any) -> list[list[tuple[float, float]]] | None:
    """The vertices of each line of a GeoJSON LineString / MultiLineString, None when it is not a valid one."""
    return members(text, "LineString", "MultiLineString", _vertices)


# -- S2 ----------------------------------------------------------------------------------------------------

def _s2() -> Any:
    import s2geometry

    return s2geometry


def _s2_cell(token: Any) -> Any:
    """The S2CellId of *token*, None when it is not a valid token (at most 16 hex digits)."""
    if not isinstance(token, str) or not 0 < len(token) <= 16 or any(c not in "0123456789abcdefABCDEF" for c in token):
        return None
    c = _s2().S2CellId.FromToken(token)
    return c if c.is_valid() else None


def _latlng(s2: Any, point: Any) -> tuple[float, float]:
    ll = s2.S2LatLng(point)
    return ll.lng().degrees(), ll.lat().degrees()


@udf("geo_point_to_s2cell", ("real", "real", "long"), "string", nulls=True)
def geo_point_to_s2cell(lng: Any, lat: Any, level: Any) -> str:
    lv = _int_in(level, 0, 30)
    if lv is None or not _valid_point(lng, lat):
        return ""
    s2 = _s2()
    return s2.S2CellId(s2.S2LatLng.FromDegrees(float(lat), float(lng))).parent(lv).ToToken()


@udf("geo_s2cell_neighbors", ("string",), "dynamic")
def geo_s2cell_neighbors(token: str) -> str | None:
    c = _s2_cell(token)
    if c is None:
        return None
    # A face corner cell has only seven neighbours: the hash set drops the repeat.
    own = c.ToToken()
    out = [t for t in (n.ToToken() for n in c.GetAllNeighbors(c.level())) if t != own]
    return _dump(_hash_set_order(out))


@udf("geo_s2cell_to_central_point", ("string",), "dynamic")
def geo_s2cell_to_central_point(token: str) -> str | None:
    c = _s2_cell(token)
    if c is None:
        return None
    s2 = _s2()
    return _point(*_latlng(s2, s2.S2Cell(c).GetCenter()))


@udf("geo_s2cell_to_polygon", ("string",), "dynamic")
def geo_s2cell_to_polygon(token: str) -> str | None:
    c = _s2_cell(token)
    if c is None:
        return None
    s2 = _s2()
    cell = s2.S2Cell(c)
    ring = [list(_latlng(s2, cell.GetVertex(i))) for i in range(4)]
    ring.append(list(ring[0]))
    return _polygon(ring)


def _s2_polygon(s2: Any, polys: list[list[list[tuple[float, float]]]]) -> Any:
    """One S2Polygon of the polygons' rings; each ring is taken as the smaller region it bounds."""
    loops = []
    for rings in polys:
        for ring in rings:
            loop = s2.S2Loop([s2.S2LatLng.FromDegrees(lat, lng).ToPoint() for lng, lat in ring])
            if not loop.IsValid():
                return None
            loop.Normalize()
            loops.append(loop)
    out = s2.S2Polygon()
    out.InitNested(loops)
    return out if out.IsValid() else None


# Bounds on S2 cells at level L (S2's kMaxArea / kMaxDiag): area < 2.6358 / 4**L steradians, diagonal
# < 2.4387 / 2**L radians. A region of more area, or a curve of more length, than the covering limit's worth of
# such cells needs more cells than the limit: null at once, before the coverer enumerates millions of cells.
_S2_MAX_AREA, _S2_MAX_DIAG = 2.635799256963161, 2.438654594434021


def _too_many_s2(level: int, area: float = 0.0, length: float = 0.0) -> bool:
    cells = max(area / (_S2_MAX_AREA / 4 ** level), length / (_S2_MAX_DIAG / 2 ** level))
    return cells > S2_MAX_COVERING_CELLS


def _angle(s2: Any, a: tuple[float, float], b: tuple[float, float]) -> float:
    return s2.S2LatLng.FromDegrees(a[1], a[0]).GetDistance(s2.S2LatLng.FromDegrees(b[1], b[0])).radians()


def _covering(s2: Any, region: Any, level: int) -> str | None:
    coverer = s2.S2RegionCoverer()
    coverer.set_fixed_level(level)
    coverer.set_max_cells(S2_MAX_COVERING_CELLS)
    cells = coverer.GetCovering(region)
    if len(cells) > S2_MAX_COVERING_CELLS:
        return None
    return _dump([c.ToToken() for c in cells])


@udf("geo_polygon_to_s2cells", ("dynamic", "long"), "dynamic")
def geo_polygon_to_s2cells(polygon: str, level: int) -> str | None:
    lv = _int_in(level, 0, 30)
    polys = _polygons(polygon)
    if lv is None or polys is None:
        return None
    s2 = _s2()
    region = _s2_polygon(s2, polys)
    if region is None:
        return None
    perimeter = sum(_angle(s2, r[i - 1], r[i]) for rings in polys for r in rings for i in range(len(r)))
    if _too_many_s2(lv, area=region.GetArea(), length=perimeter):
        return None
    return _covering(s2, region, lv)


@udf("geo_line_to_s2cells", ("dynamic", "long"), "dynamic")
def geo_line_to_s2cells(line: str, level: int) -> str | None:
    lv = _int_in(level, 0, 30)
    lines = _lines(line)
    if lv is None or lines is None:
        return None
    s2 = _s2()
    if _too_many_s2(lv, length=sum(_angle(s2, p[i - 1], p[i]) for p in lines for i in range(1, len(p)))):
        return None
    tokens: set[str] = set()
    for pts in lines:
        pl = s2.S2Polyline()
        pl.InitFromS2LatLngs([s2.S2LatLng.FromDegrees(lat, lng) for lng, lat in pts])
        if not pl.IsValid():
            return None
        coverer = s2.S2RegionCoverer()
        coverer.set_fixed_level(lv)
        coverer.set_max_cells(S2_MAX_COVERING_CELLS)
        tokens.update(c.ToToken() for c in coverer.GetCovering(pl))
        if len(tokens) > S2_MAX_COVERING_CELLS:
            return None
    # In cell-id order, as a covering of one region is.
    return _dump(sorted(tokens, key=lambda t: s2.S2CellId.FromToken(t).id()))


@udf("geo_polygon_to_h3cells", ("dynamic", "long"), "dynamic")
def geo_polygon_to_h3cells(polygon: str, res: int) -> str | None:
    r = _int_in(res, 0, 15)
    polys = _polygons(polygon)
    if r is None or polys is None:
        return None
    h3 = _h3()
    s2 = _s2()
    region = _s2_polygon(s2, polys)
    if region is None:
        return None
    # Refuse to enumerate far more cells than the limit allows: area over a cell's area, with room to spare.
    area = region.GetArea() * EARTH_RADIUS_M ** 2
    if area / h3.average_hexagon_area(r, "m^2") > 4 * H3_MAX_POLYGON_CELLS:
        return None
    shapes = [h3.LatLngPoly([(lat, lng) for lng, lat in rings[0]], *[[(lat, lng) for lng, lat in h] for h in rings[1:]])
              for rings in polys]
    cells: list[str] = []
    for shape in shapes:
        # Filled into the hash set in the reverse of h3's order: that is what reproduces Kusto's order.
        cells.extend(reversed(h3.h3shape_to_cells(shape, r)))
    ordered = _hash_set_order(cells)
    if len(ordered) > H3_MAX_POLYGON_CELLS:
        return None
    return _dump(ordered)


# -- Geohash -----------------------------------------------------------------------------------------------

_BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"


@udf("geo_point_to_geohash", ("real", "real", "long"), "string", nulls=True)
def geo_point_to_geohash(lng: Any, lat: Any, accuracy: Any) -> str:
    n = _int_in(accuracy, 1, 18)
    if n is None or not _valid_point(lng, lat):
        return ""
    x, y = float(lng), float(lat)
    lo = [-180.0, -90.0]
    hi = [180.0, 90.0]
    out = []
    bit, value, axis = 0, 0, 0  # axis 0 is longitude: the first bit always bisects it
    while len(out) < n:
        v = x if axis == 0 else y
        mid = (lo[axis] + hi[axis]) / 2
        value <<= 1
        if v >= mid:
            value |= 1
            lo[axis] = mid
        else:
            hi[axis] = mid
        axis ^= 1
        bit += 1
        if bit == 5:
            out.append(_BASE32[value])
            bit, value = 0, 0
    return "".join(out)


def _geohash_box(text: Any) -> tuple[float, float, float, float] | None:
    """(west, south, east, north) of geohash *text*, None when it is not one."""
    if not isinstance(text, str) or not 1 <= len(text) <= 18:
        return None
    lo = [-180.0, -90.0]
    hi = [180.0, 90.0]
    axis = 0
    for ch in text:
        v = _BASE32.find(ch)
        if v < 0:
            return None
        for b in range(4, -1, -1):
            mid = (lo[axis] + hi[axis]) / 2
            if (v >> b) & 1:
                lo[axis] = mid
            else:
                hi[axis] = mid
            axis ^= 1
    return lo[0], lo[1], hi[0], hi[1]


@udf("geo_geohash_to_central_point", ("string",), "dynamic")
def geo_geohash_to_central_point(text: str) -> str | None:
    box = _geohash_box(text)
    if box is None:
        return None
    w, s, e, n = box
    return _point((w + e) / 2, (s + n) / 2)


@udf("geo_geohash_to_polygon", ("string",), "dynamic")
def geo_geohash_to_polygon(text: str) -> str | None:
    box = _geohash_box(text)
    if box is None:
        return None
    w, s, e, n = box
    return _polygon([[w, s], [e, s], [e, n], [w, n], [w, s]])


@udf("geo_geohash_neighbors", ("string",), "dynamic")
def geo_geohash_neighbors(text: str) -> str | None:
    box = _geohash_box(text)
    if box is None:
        return None
    w, s, e, n = box
    cx, cy, dx, dy = (w + e) / 2, (s + n) / 2, e - w, n - s
    out: list[str] = []
    # Row by row from the north-west corner (the order the hash set below is filled in).
    for iy, ix in ((1, -1), (1, 0), (1, 1), (0, -1), (0, 1), (-1, -1), (-1, 0), (-1, 1)):
        y = cy + iy * dy
        if not -90.0 < y < 90.0:  # no cell beyond a pole
            continue
        x = cx + ix * dx
        x = (x + 180.0) % 360.0 - 180.0  # across the antimeridian
        h = geo_point_to_geohash(x, y, len(text))
        if h and h != text:
            out.append(h)
    return _dump(_hash_set_order(out))


# -- Distances and directions on the sphere ----------------------------------------------------------------

def _central_angle(lng1: float, lat1: float, lng2: float, lat2: float) -> float:
    """The angle between two points at the sphere's centre (haversine, as S2LatLng::GetDistance computes it)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dlat = math.sin(0.5 * (p2 - p1))
    dlng = math.sin(0.5 * math.radians(lng2 - lng1))
    x = dlat * dlat + dlng * dlng * math.cos(p1) * math.cos(p2)
    return 2 * math.asin(math.sqrt(min(1.0, x)))


@udf("geo_distance_2points", ("real", "real", "real", "real", "bool"), "real")
def geo_distance_2points(lng1: float, lat1: float, lng2: float, lat2: float, spheroid: bool) -> float | None:
    if not (_valid_point(lng1, lat1) and _valid_point(lng2, lat2)):
        return None
    if spheroid:
        from geographiclib.geodesic import Geodesic

        return float(Geodesic.WGS84.Inverse(float(lat1), float(lng1), float(lat2), float(lng2))["s12"])
    return _central_angle(float(lng1), float(lat1), float(lng2), float(lat2)) * EARTH_RADIUS_M


@udf("geo_point_in_circle", ("real", "real", "real", "real", "real"), "bool")
def geo_point_in_circle(lng: float, lat: float, clng: float, clat: float, radius: float) -> bool | None:
    if not (_valid_point(lng, lat) and _valid_point(clng, clat)) or not math.isfinite(radius) or radius <= 0:
        return None
    return _central_angle(float(lng), float(lat), float(clng), float(clat)) * EARTH_RADIUS_M <= radius


def _unit(lng: float, lat: float) -> tuple[float, float, float]:
    p, q = math.radians(lat), math.radians(lng)
    return math.cos(p) * math.cos(q), math.cos(p) * math.sin(q), math.sin(p)


def _same_or_antipodal(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """The two points coincide or are antipodal (to within a few nanometres on the Earth, so that -180 and
    180 meet but two points a millimetre apart do not)."""
    u, v = _unit(*a), _unit(*b)
    gap = math.dist(u, v)
    opposite = math.dist(u, tuple(-x for x in v))
    return gap < 1e-15 or opposite < 1e-15


def _bearing(lng1: float, lat1: float, lng2: float, lat2: float) -> float:
    """The initial bearing of the great circle from point 1 to point 2, clockwise from north, in [0, 2pi)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lng2 - lng1)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.atan2(y, x) % (2 * math.pi)


@udf("geo_azimuth", ("real", "real", "real", "real"), "real")
def geo_azimuth(lng1: float, lat1: float, lng2: float, lat2: float) -> float | None:
    if not (_valid_point(lng1, lat1) and _valid_point(lng2, lat2)):
        return None
    if _same_or_antipodal((lng1, lat1), (lng2, lat2)):
        return None
    return _bearing(lng1, lat1, lng2, lat2)


@udf("geo_angle", ("real", "real", "real", "real", "real", "real"), "real")
def geo_angle(lng1: float, lat1: float, lng2: float, lat2: float, lng3: float, lat3: float) -> float | None:
    """The angle at point 2, clockwise from the line to point 1 to the line to point 3."""
    if not (_valid_point(lng1, lat1) and _valid_point(lng2, lat2) and _valid_point(lng3, lat3)):
        return None
    if _same_or_antipodal((lng1, lat1), (lng2, lat2)) or _same_or_antipodal((lng2, lat2), (lng3, lat3)):
        return None
    return (_bearing(lng2, lat2, lng3, lat3) - _bearing(lng2, lat2, lng1, lat1)) % (2 * math.pi)


@udf("geo_point_buffer", ("real", "real", "real", "real"), "dynamic")
def geo_point_buffer(lng: float, lat: float, radius: float, tolerance: float) -> str | None:
    """A polygon around the point at *radius* meters on the sphere, its edges within *tolerance* of the circle."""
    if not _valid_point(lng, lat) or not (math.isfinite(radius) and radius > 0) or not math.isfinite(tolerance):
        return None
    if tolerance < radius * 1e-6:  # the reference's floor: 0.0001% of the radius
        return None
    s2 = _s2()
    # S2's buffer accepts an error fraction in [1e-6, 1]; a tolerance past the radius is lowered to fit.
    fraction = min(tolerance / radius, 1.0)
    opts = s2.S2BufferOperationOptions()
    opts.set_buffer_radius(s2.S1Angle.Radians(radius / EARTH_RADIUS_M))
    opts.set_error_fraction(fraction)
    out = s2.S2Polygon()
    op = s2.S2BufferOperation(s2.S2PolygonLayer(out), opts)
    op.AddPoint(s2.S2LatLng.FromDegrees(float(lat), float(lng)).ToPoint())
    if not op.Build() or out.num_loops() != 1:
        return None
    loop = out.loop(0)
    ring = [list(_latlng(s2, loop.vertex(i))) for i in range(loop.num_vertices())]
    ring.append(list(ring[0]))
    return _polygon(ring)
