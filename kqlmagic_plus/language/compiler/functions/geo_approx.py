"""Shapes Kusto derives from a tolerance (:mod:`kqlmagic_plus.language.udfs.geo_approx`): ``geo_line_densify``,
``geo_polygon_densify``, and the buffers and simplifications ``geo_line_buffer``, ``geo_polygon_buffer``,
``geo_line_simplify``, ``geo_polygon_simplify``, ``geo_simplify_polygons_array``.

Densifying follows S2's edge tessellation, the algorithm Kusto's own vertices come from. The buffers and
simplifications are answered only where the answer is certain: null for an invalid shape, radius or tolerance,
or for a simplification that leaves nothing. Any other shape is refused by name (at compile time when the
arguments are constants, when the row is reached otherwise): its vertices come from S2's buffer and
snap-rounding operations, which are not reproduced here, and an approximate shape would be a wrong answer.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from kqlmagic_plus.language import udfs
from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.entries import Table
from kqlmagic_plus.language.compiler.syntax import Refusal

TABLE = Table()
scalar = TABLE.scalar

NOT_REPRODUCED = ("its vertices come from S2's buffer and snap-rounding operations, which are not reproduced "
                  "here; an approximate shape would be a wrong answer (invalid input and vanishing shapes do "
                  "answer null)")


def _const(a: ir.Expr) -> tuple[bool, Any]:
    if isinstance(a, ir.Lit):
        return True, a.value
    return False, None


def _null(g: Any) -> exp.Expression:
    return g.e(ir.Lit(T.DYNAMIC, None))


def _shape(g: Any, a: ir.Expr) -> exp.Expression:
    return g.d.dyn_to_json_text(g.e(a))


def _real(g: Any, a: ir.Expr | None, default: float) -> exp.Expression:
    if a is None:
        return exp.Cast(this=exp.Literal.number(repr(float(default))), to=g.d.sql_type(T.REAL))
    return g.d.cast(g.e(a), T.REAL)


def _py() -> Any:
    # The implementations pull in the S2 library: imported on first use, not with the compiler.
    from kqlmagic_plus.language.udfs import geo_approx

    return geo_approx


def _densify(name: str, which: str):
    def emit(g, c, pred):
        from kqlmagic_plus.language.udfs.geo_shapes import GeoUnsupported

        compute = getattr(_py(), which)
        if len(c.args) == 3:
            known, value = _const(c.args[2])
            if not known or value not in (False, None):
                raise Refusal(f"{name} with preserve_crossing", reason="how Kusto draws an edge across the "
                              "antimeridian is not documented")
        tol = c.args[1] if len(c.args) >= 2 else None
        known, shape = _const(c.args[0])
        tknown, tvalue = (True, 10) if tol is None else _const(tol)
        if known and tknown:
            try:
                out = compute(shape, tvalue) if shape is not None and tvalue is not None else None
            except GeoUnsupported as exc:
                raise Refusal(f"{name} of {exc}") from None
            return _null(g) if out is None else g.e(ir.Lit(T.DYNAMIC, out))
        return g.d.dyn_from_json_text(udfs.call(name, _shape(g, c.args[0]), _real(g, tol, 10)))

    return emit


def constant_value(e: ir.Expr) -> tuple[bool, Any]:
    """(True, value) when *e* is a constant or a densify of constants (for tostring on Spark, whose variant
    would sort the keys), else (False, None)."""
    if isinstance(e, ir.Lit):
        return True, e.value
    which = {"geo_line_densify": "densify_line", "geo_polygon_densify": "densify_polygon"}.get(
        e.fn if isinstance(e, ir.Call) else "")
    if which is None or len(e.args) > 2:  # type: ignore[attr-defined]
        return False, None
    from kqlmagic_plus.language.udfs.geo_shapes import GeoUnsupported

    compute = getattr(_py(), which)
    consts = [_const(a) for a in e.args]  # type: ignore[attr-defined]
    if not all(k for k, _ in consts):
        return False, None
    shape, tol = consts[0][1], consts[1][1] if len(consts) > 1 else 10
    try:
        return True, (compute(shape, tol) if shape is not None and tol is not None else None)
    except GeoUnsupported:
        return False, None


scalar("geo_line_densify", (1, 3), T.DYNAMIC, coerce=("dynamic", "real", "bool"))(
    _densify("geo_line_densify", "densify_line"))
scalar("geo_polygon_densify", (1, 3), T.DYNAMIC, coerce=("dynamic", "real", "bool"))(
    _densify("geo_polygon_densify", "densify_polygon"))


def _certain(name: str, lo: int, hi: int):
    def emit(g, c, pred):
        consts = [_const(a) for a in c.args]
        if all(k for k, _ in consts):
            shape, *rest = (v for _, v in consts)
            if shape is None or _py().approx_is_null(name, shape, rest):
                return _null(g)
            raise Refusal(name, reason=NOT_REPRODUCED)
        args = [_shape(g, c.args[0])]
        args.append(_real(g, c.args[1], 10) if len(c.args) > 1 else _real(g, None, 10))
        return g.d.dyn_from_json_text(udfs.call(name + "_certain", *args))

    # Declared dynamic: isnull() of the result must see the call (a string would fold to false).
    return scalar(name, (lo, hi), T.DYNAMIC, coerce=("dynamic", "real", "real"), note=NOT_REPRODUCED)(emit)


_certain("geo_line_buffer", 2, 3)
_certain("geo_polygon_buffer", 2, 3)
_certain("geo_line_simplify", 1, 2)
_certain("geo_polygon_simplify", 1, 2)
_certain("geo_simplify_polygons_array", 1, 2)
