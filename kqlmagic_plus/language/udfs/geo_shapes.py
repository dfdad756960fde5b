"""Lines and polygons on the sphere: lengths, areas, centroids, distances, containment, unions, intersections.

Kusto measures on a sphere whose edges are geodesics, with the S2 library's model of the Earth (a sphere of
radius 6,371,010 m) and S2's polygon semantics (each loop is the smaller of the two regions its ring bounds;
a point on a shared boundary belongs to exactly one polygon). The S2 library itself (``s2geometry``) and
``spherely`` (S2 geography predicates and boolean operations) compute here, so the numbers are S2's own, to
the last digits the documentation shows; ``shapely`` reads WKT.

GeoJSON arrives as JSON text and leaves as JSON text. Invalid input (a ring that is not closed, a coordinate
out of range, too few vertices...) gives null, as in Kusto. A result this module cannot give exactly as Kusto
does (the degenerate pieces of an intersection) is an error naming the function, never a guess.
"""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import s2geometry as s2

from kqlmagic_plus.language.udfs import udf
from kqlmagic_plus.language.udfs.geojson import geojson_object as _obj
from kqlmagic_plus.language.udfs.geojson import members

#: S2's Earth radius (S2Earth::RadiusMeters), the one Kusto's figures are computed with.
EARTH_RADIUS_M = 6371010.0


class GeoUnsupported(ValueError):
    """A shape whose Kusto answer this module cannot reproduce exactly."""


# -- GeoJSON in --------------------------------------------------------------------------------------------

def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _coord(c: Any) -> tuple[float, float] | None:
    if not isinstance(c, list) or len(c) != 2 or not all(_num(v) for v in c):
        return None
    lng, lat = float(c[0]), float(c[1])
    if not (-180 <= lng <= 180 and -90 <= lat <= 90):
        return None
    return lng, lat


def _point(lng: float, lat: float) -> Any:
    return s2.S2LatLng.FromDegrees(lat, lng).ToPoint()


def _lnglat(p: Any) -> list[float]:
    ll = s2.S2LatLng(p)
    return [ll.lng().degrees(), ll.lat().degrees()]


def point_of(lng: Any, lat: Any) -> Any | None:
    c = _coord([lng, lat])
    return None if c is None else _point(*c)


def _polyline(coords: Any) -> Any | None:
    if not isinstance(coords, list) or len(coords) < 2:
        return None
    cs = [_coord(c) for c in coords]
    if any(c is None for c in cs):
        return None
    line = s2.S2Polyline()
    line.InitFromS2Points([_point(*c) for c in cs])
    return line if line.IsValid() else None


def lines_of(text: Any) -> list[Any] | None:
    """The polylines of a GeoJSON LineString or MultiLineString; None when it is not a valid one."""
    return members(text, "LineString", "MultiLineString", _polyline)


def _loop(ring: Any) -> Any | None:
    if not isinstance(ring, list) or len(ring) < 4:
        return None
    cs = [_coord(c) for c in ring]
    if any(c is None for c in cs) or cs[0] != cs[-1]:
        return None
    cs = cs[:-1]
    if len(set(cs)) < 3:
        return None
    loop = s2.S2Loop([_point(*c) for c in cs])
    if not loop.IsValid():
        return None
    loop.Normalize()  # the smaller of the two regions the ring bounds
    return loop


def _polygon(rings: Any) -> Any | None:
    if not isinstance(rings, list) or not rings:
        return None
    loops = [_loop(r) for r in rings]
    if any(lp is None for lp in loops):
        return None
    poly = s2.S2Polygon()
    poly.InitNested(loops)
    return poly if poly.IsValid() else None


def _union(polys: list[Any]) -> Any:
    """The union of *polys* in the order S2Polygon::DestructiveUnion takes them (the two with the fewest
    vertices first, ties in input order; each union goes back in the queue): where the result's rings start
    depends on that order, and this one reproduces Kusto's documented rings."""
    queue = [(p.num_vertices(), i, p) for i, p in enumerate(polys)]
    seq = len(queue)
    while len(queue) > 1:
        queue.sort(key=lambda t: (t[0], t[1]))
        (na, _, a), (nb, _, b) = queue[0], queue[1]
        u = s2.S2Polygon()
        u.InitToUnion(a, b)
        queue = [*queue[2:], (na + nb, seq, u)]
        seq += 1
    return queue[0][2]


def polygon_of(text: Any) -> Any | None:
    """A GeoJSON Polygon or MultiPolygon as one S2Polygon (a MultiPolygon as the union of its polygons)."""
    polys = members(text, "Polygon", "MultiPolygon", _polygon)
    return None if polys is None else _union(polys)  # the union of one polygon is that polygon


def _array(text: Any) -> list[Any] | None:
    if isinstance(text, str):
        try:
            text = json.loads(text)
        except ValueError:
            return None
    return text if isinstance(text, list) else None


# -- GeoJSON out -------------------------------------------------------------------------------------------

def _dump(g: dict[str, Any]) -> str:
    return json.dumps(g, separators=(",", ":"))


def _point_json(p: Any) -> str:
    return _dump({"type": "Point", "coordinates": _lnglat(p)})


def _polygon_json(poly: Any) -> str:
    """An S2Polygon as GeoJSON: each shell (depth 0, counterclockwise) with the holes nested right in it."""
    shapes: list[list[list[list[float]]]] = []
    for i in range(poly.num_loops()):
        lp = poly.loop(i)
        ring = [_lnglat(lp.vertex(j)) for j in range(lp.num_vertices())]
        ring.append(ring[0])
        if lp.depth() % 2 == 0:
            shapes.append([ring])
        else:
            shapes[-1].append(ring)
    if not shapes:
        return _dump({"type": "GeometryCollection", "geometries": []})
    if len(shapes) == 1:
        return _dump({"type": "Polygon", "coordinates": shapes[0]})
    return _dump({"type": "MultiPolygon", "coordinates": shapes})


def _to_rad(a: Any) -> float:
    return a.radians()


def _angle(a: Any, b: Any) -> float:
    return s2.S1Angle(a, b).radians()


# -- lines -------------------------------------------------------------------------------------------------

@udf("geo_line_length", ("string",), "real")
def line_length(text: str) -> float | None:
    lines = lines_of(text)
    return None if lines is None else sum(_to_rad(ln.GetLength()) for ln in lines) * EARTH_RADIUS_M


def _overlap_free(fn: str, lines: list[Any]) -> None:
    """Kusto takes a multiline's union: lines that share a stretch would count it once; not reproduced."""
    if len(lines) < 2:
        return
    import spherely

    geos = [_sp_line(ln) for ln in lines]
    for i in range(len(geos)):
        for j in range(i + 1, len(geos)):
            common = spherely.intersection(geos[i], geos[j])
            if spherely.length(common) > 0:
                raise GeoUnsupported(f"{fn}(): lines of the multiline overlap; their union is not computed")


def _sp_line(line: Any) -> Any:
    import spherely

    pts = [_lnglat(line.vertex(i)) for i in range(line.num_vertices())]
    return spherely.create_linestring(pts)


def _sum_points(ps: list[Any]) -> Any:
    x = sum(p.x() for p in ps)
    y = sum(p.y() for p in ps)
    z = sum(p.z() for p in ps)
    return s2.S2LatLng.FromRadians(math.atan2(z, math.hypot(x, y)), math.atan2(y, x)).ToPoint() \
        if (x, y, z) != (0, 0, 0) else None


@udf("geo_line_centroid", ("string",), "string")
def line_centroid(text: str) -> str | None:
    lines = lines_of(text)
    if lines is None:
        return None
    _overlap_free("geo_line_centroid", lines)
    if len(lines) == 1:
        return _point_json(lines[0].GetCentroid().Normalize())
    c = _sum_points([ln.GetCentroid() for ln in lines])
    return None if c is None else _point_json(c)


def _single_line(fn: str, text: str) -> Any | None:
    lines = lines_of(text)
    if lines is None:
        return None
    if len(lines) != 1:
        raise GeoUnsupported(f"{fn}(): takes a LineString, not a MultiLineString")
    return lines[0]


@udf("geo_line_interpolate_point", ("string", "real"), "string")
def line_interpolate_point(text: str, fraction: float) -> str | None:
    line = _single_line("geo_line_interpolate_point", text)
    if line is None or not (0 <= fraction <= 1):
        return None
    return _point_json(line.Interpolate(fraction))


@udf("geo_line_locate_point", ("string", "real", "real"), "real")
def line_locate_point(text: str, lng: float, lat: float) -> float | None:
    line = _single_line("geo_line_locate_point", text)
    p = point_of(lng, lat)
    if line is None or p is None:
        return None
    q, nxt = line.Project(p)
    return line.UnInterpolate(q, nxt)


def _closest_on_lines(lng: float, lat: float, text: str) -> tuple[Any, Any] | None:
    lines = lines_of(text)
    p = point_of(lng, lat)
    if lines is None or p is None:
        return None
    best = min((ln.Project(p)[0] for ln in lines), key=lambda q: _angle(p, q))
    return p, best


@udf("geo_closest_point_on_line", ("real", "real", "string"), "string")
def closest_point_on_line(lng: float, lat: float, text: str) -> str | None:
    r = _closest_on_lines(lng, lat, text)
    return None if r is None else _point_json(r[1])


@udf("geo_distance_point_to_line", ("real", "real", "string"), "real")
def distance_point_to_line(lng: float, lat: float, text: str) -> float | None:
    r = _closest_on_lines(lng, lat, text)
    return None if r is None else _angle(*r) * EARTH_RADIUS_M


# -- polygons ----------------------------------------------------------------------------------------------

@udf("geo_polygon_area", ("string",), "real")
def polygon_area(text: str) -> float | None:
    poly = polygon_of(text)
    return None if poly is None else poly.GetArea() * EARTH_RADIUS_M ** 2


@udf("geo_polygon_perimeter", ("string",), "real")
def polygon_perimeter(text: str) -> float | None:
    poly = polygon_of(text)
    if poly is None:
        return None
    total = 0.0
    for i in range(poly.num_loops()):
        lp = poly.loop(i)
        n = lp.num_vertices()
        total += sum(_angle(lp.vertex(j), lp.vertex((j + 1) % n)) for j in range(n))
    return total * EARTH_RADIUS_M


@udf("geo_polygon_centroid", ("string",), "string")
def polygon_centroid(text: str) -> str | None:
    poly = polygon_of(text)
    if poly is None or poly.is_empty():
        return None
    return _point_json(poly.GetCentroid().Normalize())


@udf("geo_point_in_polygon", ("real", "real", "string"), "bool")
def point_in_polygon(lng: float, lat: float, text: str) -> bool | None:
    poly = polygon_of(text)
    p = point_of(lng, lat)
    return None if poly is None or p is None else bool(poly.Contains(p))


def _closest_on_polygon(lng: float, lat: float, text: str) -> tuple[Any, Any] | None:
    poly = polygon_of(text)
    p = point_of(lng, lat)
    if poly is None or p is None:
        return None
    return p, (p if poly.Contains(p) else poly.Project(p))


@udf("geo_closest_point_on_polygon", ("real", "real", "string"), "string")
def closest_point_on_polygon(lng: float, lat: float, text: str) -> str | None:
    r = _closest_on_polygon(lng, lat, text)
    return None if r is None else _point_json(r[1])


@udf("geo_distance_point_to_polygon", ("real", "real", "string"), "real")
def distance_point_to_polygon(lng: float, lat: float, text: str) -> float | None:
    r = _closest_on_polygon(lng, lat, text)
    return None if r is None else _angle(*r) * EARTH_RADIUS_M


@udf("geo_union_polygons_array", ("string",), "string")
def union_polygons_array(text: str) -> str | None:
    items = _array(text)
    if items is None or not items:
        return None
    polys: list[Any] = []
    for item in items:
        g = _obj(item)
        if g is None or g.get("type") not in ("Polygon", "MultiPolygon"):
            return None
        p = polygon_of(g)
        if p is None:
            return None
        polys.append(p)
    return _polygon_json(_union(polys))


@udf("geo_union_lines_array", ("string",), "string")
def union_lines_array(text: str) -> str | None:
    """The union of lines that form one simple chain once shared edges count once, starting at the first
    line's first vertex: that chain. Other unions (a chain the first line starts inside of, branches,
    crossings, separate pieces, partly shared edges) are an error: how Kusto splits and orders those is not
    known here."""
    items = _array(text)
    if items is None or not items:
        return None
    edges: list[tuple[tuple[float, float], tuple[float, float]]] = []
    for item in items:
        lines = lines_of(item)
        if lines is None:
            return None
        for ln in lines:
            pts = [tuple(_lnglat(ln.vertex(i))) for i in range(ln.num_vertices())]
            for a, b in itertools.pairwise(pts):
                if (a, b) not in edges and (b, a) not in edges:
                    edges.append((a, b))
    chain = _one_chain(edges)
    if chain is None:
        raise GeoUnsupported("geo_union_lines_array(): lines whose union is not one simple chain")
    import spherely

    # Edges may only meet at shared vertices of the chain: no crossings, no partly shared stretches.
    geos = [spherely.create_linestring([list(a), list(b)]) for a, b in edges]
    for i in range(len(geos)):
        for j in range(i + 1, len(geos)):
            shared = set(edges[i]) & set(edges[j])
            for c in _points(spherely.intersection(geos[i], geos[j])):
                if not any(abs(c[0] - v[0]) < 1e-9 and abs(c[1] - v[1]) < 1e-9 for v in shared):
                    raise GeoUnsupported("geo_union_lines_array(): lines that cross or partly overlap")
    return _dump({"type": "LineString", "coordinates": [list(p) for p in chain]})


def _one_chain(edges: list[tuple[Any, Any]]) -> list[Any] | None:
    """The vertices of *edges* as one path from the first edge's start, or None when they are not such a path."""
    nbrs: dict[Any, list[Any]] = {}
    for a, b in edges:
        nbrs.setdefault(a, []).append(b)
        nbrs.setdefault(b, []).append(a)
    if any(len(v) > 2 for v in nbrs.values()):
        return None
    ends = [p for p, v in nbrs.items() if len(v) == 1]
    if len(ends) != 2:
        return None
    first = edges[0][0]
    if first not in ends:  # which way Kusto would then run the chain is not known here
        return None
    path = [first, edges[0][1]]
    while len(nbrs[path[-1]]) == 2:
        a, b = nbrs[path[-1]]
        path.append(b if a == path[-2] else a)
    return path if len(path) == len(nbrs) else None


@udf("geo_lookup_any_match", ("string", "real", "real", "string", "real"), "bool", nulls=True)
def lookup_any_match(kind: str, lng: float | None, lat: float | None, shapes: str | None,
                     radius: float | None) -> bool:
    """Whether any of *shapes* (a JSON array) matches the point as the geo lookup plugins match: for
    ``polygon`` containment, or with a *radius* the distance to the polygon; for ``line`` the distance."""
    items = _array(shapes) if shapes is not None else None
    if lng is None or lat is None or not items:
        return False
    for item in items:
        if kind == "line":
            d = distance_point_to_line(lng, lat, json.dumps(item))
            hit = d is not None and radius is not None and d <= radius
        elif radius is None:
            hit = bool(point_in_polygon(lng, lat, json.dumps(item)))
        else:
            d = distance_point_to_polygon(lng, lat, json.dumps(item))
            hit = d is not None and d <= radius
        if hit:
            return True
    return False


# -- predicates and intersections (spherely: S2 geography) -------------------------------------------------

def _sp_polygon(poly: Any) -> Any:
    import spherely

    return spherely.from_wkt(_wkt_of_json(_polygon_json(poly)))


def _wkt_of_json(text: str) -> str:
    import shapely.geometry

    return shapely.geometry.shape(json.loads(text)).wkt


def _sp_lines(lines: list[Any]) -> Any:
    import spherely

    geos = [_sp_line(ln) for ln in lines]
    return geos[0] if len(geos) == 1 else spherely.create_multilinestring(geos)


def _closed_intersects(a: Any, b: Any) -> bool:
    """Intersects with each polygon's boundary included: polygons that only touch do intersect, as their
    intersection (a point or a line) is not empty in Kusto."""
    import spherely

    if spherely.intersects(a, b):
        return True
    ba = spherely.boundary(a) if spherely.get_dimension(a) == 2 else a
    bb = spherely.boundary(b) if spherely.get_dimension(b) == 2 else b
    return bool(spherely.intersects(ba, bb))


@udf("geo_intersects_2lines", ("string", "string"), "bool")
def intersects_2lines(a: str, b: str) -> bool | None:
    la, lb = lines_of(a), lines_of(b)
    return None if la is None or lb is None else _closed_intersects(_sp_lines(la), _sp_lines(lb))


@udf("geo_intersects_2polygons", ("string", "string"), "bool")
def intersects_2polygons(a: str, b: str) -> bool | None:
    pa, pb = polygon_of(a), polygon_of(b)
    return None if pa is None or pb is None else _closed_intersects(_sp_polygon(pa), _sp_polygon(pb))


@udf("geo_intersects_line_with_polygon", ("string", "string"), "bool")
def intersects_line_with_polygon(a: str, b: str) -> bool | None:
    la, pb = lines_of(a), polygon_of(b)
    return None if la is None or pb is None else _closed_intersects(_sp_lines(la), _sp_polygon(pb))


def _geojson(g: Any) -> dict[str, Any]:
    import shapely
    import spherely

    if spherely.is_empty(g):
        return {"type": "GeometryCollection", "geometries": []}
    return json.loads(shapely.to_geojson(shapely.from_wkt(spherely.to_wkt(g, precision=17))))


def _points(g: Any) -> list[list[float]]:
    d = _geojson(g)
    if d["type"] == "Point":
        return [d["coordinates"]]
    if d["type"] == "MultiPoint":
        return d["coordinates"]
    if d["type"] == "GeometryCollection" and not d["geometries"]:
        return []
    raise GeoUnsupported("touching boundaries that share a stretch")


@udf("geo_intersection_2lines", ("string", "string"), "string")
def intersection_2lines(a: str, b: str) -> str | None:
    import spherely

    la, lb = lines_of(a), lines_of(b)
    if la is None or lb is None:
        return None
    d = _geojson(spherely.intersection(_sp_lines(la), _sp_lines(lb)))
    if d["type"] == "MultiLineString":
        # S2 reports a stretch both lines run along once per line; Kusto reports it once.
        parts: list[Any] = []
        for part in d["coordinates"]:
            if part not in parts and part[::-1] not in parts:
                parts.append(part)
        if len(parts) != 1:
            raise GeoUnsupported("geo_intersection_2lines(): lines that share several stretches")
        d = {"type": "LineString", "coordinates": parts[0]}
    elif d["type"] not in ("Point", "MultiPoint", "LineString", "GeometryCollection") or (
            d["type"] == "GeometryCollection" and d["geometries"]):
        raise GeoUnsupported("geo_intersection_2lines(): lines that cross and also share a stretch")
    return _dump(d)


def _with_touches(fn: str, area: Any, touches: list[list[float]]) -> str:
    """*area* (S2's intersection) with the points where the shapes only touch, the way Kusto shows them."""
    import spherely

    d = _geojson(area)
    # A crossing of the boundaries is a vertex of the area: on it, not a separate touch.
    inside = [t for t in touches if not spherely.is_empty(area)
              and spherely.distance(area, spherely.create_point(*t)) < 1e-6]
    extra = [t for t in touches if t not in inside]
    if not extra:
        return _dump(d)
    if len(extra) > 1:
        raise GeoUnsupported(f"{fn}(): shapes that touch at several points")
    pt = {"type": "Point", "coordinates": extra[0]}
    if d["type"] == "GeometryCollection" and not d["geometries"]:
        return _dump(pt)
    return _dump({"type": "GeometryCollection", "geometries": [pt, d]})


@udf("geo_intersection_2polygons", ("string", "string"), "string")
def intersection_2polygons(a: str, b: str) -> str | None:
    import spherely

    pa, pb = polygon_of(a), polygon_of(b)
    if pa is None or pb is None:
        return None
    ga, gb = _sp_polygon(pa), _sp_polygon(pb)
    touches = _points(spherely.intersection(spherely.boundary(ga), spherely.boundary(gb)))
    return _with_touches("geo_intersection_2polygons", spherely.intersection(ga, gb), touches)


@udf("geo_intersection_line_with_polygon", ("string", "string"), "string")
def intersection_line_with_polygon(a: str, b: str) -> str | None:
    import spherely

    la, pb = lines_of(a), polygon_of(b)
    if la is None or pb is None:
        return None
    gl, gp = _sp_lines(la), _sp_polygon(pb)
    cut = spherely.intersection(gl, gp)
    touches = _points(spherely.intersection(gl, spherely.boundary(gp)))
    return _with_touches("geo_intersection_line_with_polygon", cut, touches)


# -- WKT ---------------------------------------------------------------------------------------------------

def _valid_coords(v: Any) -> bool:
    if isinstance(v, list) and v and all(_num(x) for x in v):
        return _coord(v) is not None
    return isinstance(v, list) and all(_valid_coords(x) for x in v)


def _valid_geojson(d: dict[str, Any]) -> bool:
    if d.get("type") == "GeometryCollection":
        return all(_valid_geojson(g) for g in d.get("geometries", []))
    return _valid_coords(d.get("coordinates"))


@udf("geo_from_wkt", ("string",), "string")
def from_wkt(text: str) -> str | None:
    import shapely

    try:
        g = shapely.from_wkt(text)
    except shapely.errors.GEOSException:
        return None
    if g is None or g.is_empty or g.has_z:
        return None
    d = json.loads(shapely.to_geojson(g))
    return _dump(d) if _valid_geojson(d) else None
