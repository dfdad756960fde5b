"""Geospatial cells and points: H3 / S2 / geohash cells, point distances, circles, angles and point buffers.

Each function is a Python UDF (:mod:`kqlmagic_plus.language.udfs.geo_cells`) called with every argument cast to
the UDF's declared type, optional arguments filled with their documented defaults, and dynamic values passed as
JSON text both ways. ``geo_info_from_ip_address`` is refused: it needs an IP geolocation database.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from kqlmagic_plus.language import udfs
from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.entries import Table
from kqlmagic_plus.language.compiler.sqlexpr import n
from kqlmagic_plus.language.compiler.syntax import Refusal

TABLE = Table()
scalar = TABLE.scalar

_UDF_TYPES = {"real": T.REAL, "long": T.LONG, "int": T.INT, "bool": T.BOOL, "string": T.STRING,
              "dynamic": T.DYNAMIC}


def _arg(g: Any, value: ir.Expr | None, kind: str, default: Any = None) -> exp.Expression:
    """Argument *value* (or *default* when it was left out) as SQL of the UDF's declared *kind*."""
    if value is None:
        if isinstance(default, bool):
            e: exp.Expression = exp.true() if default else exp.false()
        elif default is None:
            e = exp.null()
        else:
            e = n(default)
    else:
        e = g.e(value)
    if kind == "dynamic":
        return g.d.dyn_to_json_text(e)
    return exp.Cast(this=e, to=g.d.sql_type(_UDF_TYPES[kind]))


def _call(g: Any, args: list[ir.Expr], name: str, kinds: tuple[str, ...], defaults: tuple[Any, ...] = (),
          returns: str = "") -> exp.Expression:
    """The UDF *name* on the call's *args*; *defaults* fill the trailing optional ones."""
    sql = []
    for i, kind in enumerate(kinds):
        if i < len(args):
            sql.append(_arg(g, args[i], kind))
        else:
            sql.append(_arg(g, None, kind, defaults[i - (len(kinds) - len(defaults))]))
    out = udfs.call(name, *sql)
    return g.d.dyn_from_json_text(out) if returns == "dynamic" else out


def _zero_radius(c: ir.Call, index: int, name: str) -> None:
    """Refuse a buffer radius other than a literal 0: the buffered covering is not reproduced exactly."""
    if len(c.args) <= index:
        return
    a = c.args[index]
    if isinstance(a, ir.Lit) and a.value is not None and float(a.value) == 0:
        return
    raise Refusal(f"{name}() with a radius",
                  reason="covering a buffered shape is not reproduced; pass radius 0 or leave it out")


def _simple(name: str, nargs: int | tuple[int, int], ret: str, kinds: tuple[str, ...],
            defaults: tuple[Any, ...] = ()) -> None:
    coerce = tuple(_UDF_TYPES[k] for k in kinds)

    @scalar(name, nargs, ret, coerce=coerce)
    def emit(g, c, pred):
        return _call(g, list(c.args), name, kinds, defaults, returns=ret)


# -- H3 ----------------------------------------------------------------------------------------------------

_simple("geo_point_to_h3cell", (2, 3), T.STRING, ("real", "real", "long"), (6,))
_simple("geo_h3cell_level", 1, T.INT, ("string",))
# -1 stands for the argument left out: the immediate parent / children.
_simple("geo_h3cell_parent", (1, 2), T.STRING, ("string", "long"), (-1,))
_simple("geo_h3cell_children", (1, 2), T.DYNAMIC, ("string", "long"), (-1,))
_simple("geo_h3cell_neighbors", 1, T.DYNAMIC, ("string",))
_simple("geo_h3cell_rings", 2, T.DYNAMIC, ("string", "long"))
_simple("geo_h3cell_to_central_point", 1, T.DYNAMIC, ("string",))
_simple("geo_h3cell_to_polygon", 1, T.DYNAMIC, ("string",))

# -- S2 ----------------------------------------------------------------------------------------------------

_simple("geo_point_to_s2cell", (2, 3), T.STRING, ("real", "real", "long"), (11,))
_simple("geo_s2cell_neighbors", 1, T.DYNAMIC, ("string",))
_simple("geo_s2cell_to_central_point", 1, T.DYNAMIC, ("string",))
_simple("geo_s2cell_to_polygon", 1, T.DYNAMIC, ("string",))

# -- Geohash -----------------------------------------------------------------------------------------------

_simple("geo_point_to_geohash", (2, 3), T.STRING, ("real", "real", "long"), (5,))
_simple("geo_geohash_neighbors", 1, T.DYNAMIC, ("string",))
_simple("geo_geohash_to_central_point", 1, T.DYNAMIC, ("string",))
_simple("geo_geohash_to_polygon", 1, T.DYNAMIC, ("string",))


# -- Shapes to cells ---------------------------------------------------------------------------------------

def _covering(name: str, default_level: int) -> None:
    @scalar(name, (1, 3), T.DYNAMIC, coerce=(T.DYNAMIC, T.LONG, T.REAL))
    def emit(g, c, pred):
        _zero_radius(c, 2, name)
        return _call(g, list(c.args[:2]), name, ("dynamic", "long"), (default_level,), returns=T.DYNAMIC)


_covering("geo_polygon_to_h3cells", 6)
_covering("geo_polygon_to_s2cells", 11)
_covering("geo_line_to_s2cells", 11)

# -- Points, distances, directions -------------------------------------------------------------------------

_simple("geo_distance_2points", (4, 5), T.REAL, ("real", "real", "real", "real", "bool"), (False,))
_simple("geo_point_in_circle", 5, T.BOOL, ("real",) * 5)
_simple("geo_azimuth", 4, T.REAL, ("real",) * 4)
_simple("geo_angle", 6, T.REAL, ("real",) * 6)
_simple("geo_point_buffer", (3, 4), T.DYNAMIC, ("real",) * 4, (10.0,))

TABLE.refused_everywhere(
    "geo_info_from_ip_address", "it needs an IP geolocation database, which neither engine has")
