"""Geospatial lines and polygons: ``geo_line_length``, ``geo_polygon_area``, ``geo_point_in_polygon`` ...

Each is a call of a Python function (``kqlmagic_plus.language.udfs.geo_shapes``, on the S2 library Kusto's
own figures come from). A GeoJSON argument goes to it as JSON text and a GeoJSON result comes back as JSON
text, parsed into dynamic.

The shapes derived from a tolerance (densified, buffered, simplified) are in :mod:`.geo_approx`. Refused by
name: ``use_spheroid`` measures.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.entries import Table
from kqlmagic_plus.language.compiler.syntax import Refusal

TABLE = Table()
scalar = TABLE.scalar


def _udf(name: str, *args: exp.Expression) -> exp.Expression:
    from kqlmagic_plus.language import udfs

    return udfs.call(name, *args)


def _shape(g: Any, a: ir.Expr) -> exp.Expression:
    return g.d.dyn_to_json_text(g.e(a))


def _real(g: Any, a: ir.Expr) -> exp.Expression:
    return g.d.cast(g.e(a), T.REAL)


def _dyn(g: Any, e: exp.Expression) -> exp.Expression:
    return g.d.dyn_from_json_text(e)


def _shape_fn(name: str, ret: str) -> None:
    """``name(shape)``: a measure (real) or a shape (dynamic) of one line or polygon."""

    @scalar(name, 1, ret, coerce="dynamic")
    def emit(g, c, pred):
        out = _udf(name, _shape(g, c.args[0]))
        return _dyn(g, out) if ret == T.DYNAMIC else out


for _name, _ret in (("geo_line_length", T.REAL), ("geo_polygon_area", T.REAL), ("geo_polygon_perimeter", T.REAL),
                    ("geo_line_centroid", T.DYNAMIC), ("geo_polygon_centroid", T.DYNAMIC),
                    ("geo_union_polygons_array", T.DYNAMIC), ("geo_union_lines_array", T.DYNAMIC)):
    _shape_fn(_name, _ret)


def _point_shape_fn(name: str, ret: str) -> None:
    """``name(longitude, latitude, shape)``."""

    @scalar(name, 3, ret, coerce=("real", "real", "dynamic"))
    def emit(g, c, pred):
        out = _udf(name, _real(g, c.args[0]), _real(g, c.args[1]), _shape(g, c.args[2]))
        return _dyn(g, out) if ret == T.DYNAMIC else out


for _name, _ret in (("geo_closest_point_on_line", T.DYNAMIC), ("geo_closest_point_on_polygon", T.DYNAMIC),
                    ("geo_distance_point_to_line", T.REAL), ("geo_distance_point_to_polygon", T.REAL),
                    ("geo_point_in_polygon", T.BOOL)):
    _point_shape_fn(_name, _ret)


def _two_shapes_fn(name: str, ret: str) -> None:
    @scalar(name, 2, ret, coerce="dynamic")
    def emit(g, c, pred):
        out = _udf(name, _shape(g, c.args[0]), _shape(g, c.args[1]))
        return _dyn(g, out) if ret == T.DYNAMIC else out


for _name in ("geo_intersects_2lines", "geo_intersects_2polygons", "geo_intersects_line_with_polygon"):
    _two_shapes_fn(_name, T.BOOL)
for _name in ("geo_intersection_2lines", "geo_intersection_2polygons", "geo_intersection_line_with_polygon"):
    _two_shapes_fn(_name, T.DYNAMIC)


def _sphere_only(name: str, c: Any, index: int) -> None:
    """Refuses a ``use_spheroid`` argument other than a constant false: the spheroid measure is not S2's."""
    if len(c.args) > index:
        a = c.args[index]
        if not (isinstance(a, ir.Lit) and a.value is False):
            raise Refusal(f"{name} with use_spheroid", reason="only the sphere (use_spheroid=false) is computed")


@scalar("geo_line_interpolate_point", (2, 3), T.DYNAMIC, coerce=("dynamic", "real", "bool"))
def _interpolate(g, c, pred):
    _sphere_only("geo_line_interpolate_point", c, 2)
    return _dyn(g, _udf("geo_line_interpolate_point", _shape(g, c.args[0]), _real(g, c.args[1])))


@scalar("geo_line_locate_point", (3, 4), T.REAL, coerce=("dynamic", "real", "real", "bool"))
def _locate(g, c, pred):
    _sphere_only("geo_line_locate_point", c, 3)
    return _udf("geo_line_locate_point", _shape(g, c.args[0]), _real(g, c.args[1]), _real(g, c.args[2]))


@scalar("__geo_lookup_any_match", 5, T.BOOL, category="internal")
def _lookup_any_match(g, c, pred):
    # (kind, longitude, latitude, the lookup shapes as one array, radius or null): for the lookup plugins'
    # return_unmatched rows.
    kind, lng, lat, shapes, radius = c.args
    return _udf("geo_lookup_any_match", g.e(kind), _real(g, lng), _real(g, lat), _shape(g, shapes),
                _real(g, radius))


@scalar("geo_from_wkt", 1, T.DYNAMIC, coerce="string")
def _from_wkt(g, c, pred):
    return _dyn(g, _udf("geo_from_wkt", g.e(c.args[0])))


# The tolerance-driven shapes (densify, buffer, simplify) are in geo_approx.py.
