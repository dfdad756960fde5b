"""IR -> one SQL statement (a chain of CTEs), per dialect, through sqlglot expression trees.

Every operator becomes one CTE selecting from its input's CTE, all at the top level of a single
``WITH`` (Spark refuses nested CTE names that DuckDB accepts). A ``let`` used twice is one CTE.
Row order is a property of the IR, not of CTEs: it is applied where it matters - ``take`` after a
sort, window functions of serialized rows, and the final ``ORDER BY``.
"""

from __future__ import annotations

import json
import math
from typing import Any

from sqlglot import exp

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.catalog import lookup_aggregate, lookup_operator, lookup_scalar
from kqlmagic_plus.language.compiler.dialects import Dialect, ns_holds
from kqlmagic_plus.language.compiler.functions.common import may_carry_ticks
from kqlmagic_plus.language.compiler.prune import is_extend, scan_columns
from kqlmagic_plus.language.compiler.sqlexpr import alias, cast_, dtype, fn, ident, n, paren, s, table, try_cast_
from kqlmagic_plus.language.compiler.syntax import Refusal


class Emitter:
    def __init__(self, dialect: Dialect):
        self.d = dialect
        self.ctes: list[tuple[str, exp.Expression]] = []
        self.done: dict[int, str] = {}
        self.qual: str | None = None
        self.order: tuple[ir.SortKey, ...] | None = None
        self._n = 0
        #: A CTE refers to itself (scan): the WITH is WITH RECURSIVE.
        self.recursive = False
        #: Datetime columns that can hold 100 ns ticks (functions.common.may_carry_ticks), by name: arithmetic on
        #: them keeps the ticks. A name is never removed; a column that does not hold ticks only costs speed.
        self.tick_cols: set[str] = set()
        #: id(scan) -> the columns the query reads of it (prune.scan_columns); a scan not here writes them all.
        self.scan_cols: dict[int, frozenset[str]] = {}

    # -- statement --------------------------------------------------------------------------------

    def statement(self, node: ir.Node) -> exp.Expression:
        src = self.node(node)
        self.qual = None
        items = [alias(self.output(c), c.name) for c in node.schema.visible]
        if not items:
            raise Refusal("a result with no columns")
        q = exp.Select(expressions=items).from_(table(src))
        if node.order:
            q = q.order_by(*self.order_by(node.order))
        with_ = exp.With(
            expressions=[exp.CTE(this=body, alias=exp.TableAlias(this=ident(name))) for name, body in self.ctes],
            recursive=self.recursive or None,
        )
        q.set("with_", with_)
        return q

    def output(self, c: T.Column) -> exp.Expression:
        col = exp.column(ident(c.name))
        if c.type == T.TIMESPAN:
            return self.d.span_to_interval(col)
        if c.type == T.DYNAMIC:
            return self.d.dyn_to_json_text(col)
        if c.type in (T.INT, T.LONG, T.REAL, T.BOOL):
            return self.d.cast(col, c.type)
        if c.type == T.STRING:
            # A KQL string is never null; inside the query a SQL NULL string stands for "" (an outer join's
            # missing side, a union's missing column, a parse that did not match), and comes out as "".
            return exp.Coalesce(this=col, expressions=[exp.Literal.string("")])
        # A decimal keeps its SQL precision: parse_version's 32 digits are DECIMAL(38, 0), which DECIMAL(38, 18)
        # (every other decimal) cannot hold.
        return col

    def order_by(self, keys: tuple[ir.SortKey, ...]) -> list[exp.Expression]:
        return [exp.Ordered(this=self.col(k.column), desc=k.desc, nulls_first=k.nulls_first) for k in keys]

    def col(self, name: str) -> exp.Expression:
        if self.qual:
            return exp.Column(this=ident(name), table=ident(self.qual))
        return exp.Column(this=ident(name))

    # -- nodes ------------------------------------------------------------------------------------

    def node(self, node: ir.Node) -> str:
        key = id(node)
        if key in self.done:
            return self.done[key]
        self._check_names(node.schema.names())
        if isinstance(node, ir.Sort):
            name = self.node(node.input)
        else:
            handler = getattr(self, "n_" + type(node).__name__)
            body = handler(node)
            name = self.add(body)
        self.done[key] = name
        return name

    def add(self, body: exp.Expression) -> str:
        self._n += 1
        name = f"__kqlc_q{self._n}"
        self.ctes.append((name, body))
        return name

    def _check_names(self, names: list[str]) -> None:
        # KQL names are case-sensitive, SQL's are not (DuckDB's never, Spark's by default): two columns whose
        # names differ only in case would be read as one, the wrong one for half the reads. Refused, on
        # every node, never emitted.
        seen: dict[str, str] = {}
        for nm in names:
            low = nm.lower()
            if low in seen and seen[low] != nm:
                engine = "Spark SQL" if self.d.name == "spark" else "DuckDB"
                raise Refusal(
                    f"columns {seen[low]!r} and {nm!r}",
                    reason=f"{engine} does not tell apart names that differ only in case; rename one with "
                    "project-rename",
                )
            seen[low] = nm

    def n_Scan(self, node: ir.Scan) -> exp.Expression:
        items = []
        read = self.scan_cols.get(id(node))
        for c in node.schema:
            if read is not None and c.name not in read:
                continue  # nothing reads it: no conversion for Spark to analyse (see prune.py)
            col = exp.column(ident(c.name))
            if c.type == T.TIMESPAN:
                e = self.d.interval_to_span(col)
            elif c.type == T.DYNAMIC:
                e = self.d.dyn_source_column(col)
            elif c.type == T.DATETIME and self.d.name == "duckdb":
                e = cast_(col, "TIMESTAMP")
            elif c.type == T.GUID and self.d.name == "duckdb":
                e = cast_(col, "VARCHAR")
            else:
                e = col
            items.append(alias(e, c.name))
        self._check_names([c.name for c in node.schema])
        if self.d.name == "spark" and all(isinstance(i.this, exp.Column) for i in items):
            # Every column read is as it is (or none is read: a count): the table itself. Spark parses and
            # resolves each alias of a wide table again in every query (~0.4 s of a 1 M-row count over the 150
            # columns of CommonSecurityLog).
            return exp.Select(expressions=[exp.Star()]).from_(table(node.table))
        return exp.Select(expressions=items).from_(table(node.table))

    #: externaldata reads the table the engine registers from its source, as a table is read.
    n_External = n_Scan

    def n_Values(self, node: ir.Values) -> exp.Expression:
        cols = list(node.schema)
        if not node.rows:
            q = exp.Select(expressions=[alias(self.d.typed_null(c.type), c.name) for c in cols])
            return q.where(exp.false())
        rows = _one_datetime_precision(node.rows, cols)
        self.tick_cols.update(c.name for i, c in enumerate(cols) if c.type == T.DATETIME
                              and any(may_carry_ticks(r[i], self.tick_cols) for r in rows))
        literal_rows = all(isinstance(v, ir.Lit) for row in rows for v in row)
        if not literal_rows or len(node.rows) == 1:
            selects = []
            for row in rows:
                self.order = None
                selects.append(
                    exp.Select(
                        expressions=[alias(self.typed(v, c.type), c.name) for v, c in zip(row, cols, strict=True)]
                    )
                )
            out = selects[0]
            for q in selects[1:]:
                out = exp.union(out, q, distinct=False)
            return out
        # Many literal rows: one VALUES list, converted to the column types in an outer SELECT.
        tuples = [
            exp.Tuple(expressions=[self.raw_literal(v, c.type) for v, c in zip(row, cols, strict=True)])
            for row in rows
        ]
        raw = [f"c{i}" for i in range(len(cols))]
        values = exp.Values(expressions=tuples, alias=exp.TableAlias(this=ident("_v"), columns=[ident(r) for r in raw]))
        items = [alias(self.from_raw(exp.column(ident(r)), c.type), c.name) for r, c in zip(raw, cols, strict=True)]
        return exp.Select(expressions=items).from_(values)

    def typed(self, v: ir.Expr, t: str) -> exp.Expression:
        e = self.e(v)
        if isinstance(v, ir.Lit) and t not in (T.STRING, T.GUID, T.DYNAMIC, T.TIMESPAN, T.DATETIME):
            return self.d.cast(e, t)
        if v.type == T.NULL or (isinstance(v, ir.Lit) and v.value is None):
            return self.d.typed_null(t)
        return e

    def raw_literal(self, v: ir.Lit, t: str) -> exp.Expression:
        """A VALUES cell: dynamic as JSON text, the rest as plain literals cast to their type."""
        if v.value is None:
            return self.d.typed_null(T.STRING if t == T.DYNAMIC else t)
        if t == T.DYNAMIC:
            return s(json.dumps(v.value, ensure_ascii=False, separators=(",", ":")))
        return self.d.cast(self.lit(v), t) if t not in (T.STRING, T.GUID, T.DATETIME) else self.lit(v)

    def from_raw(self, e: exp.Expression, t: str) -> exp.Expression:
        if t == T.DYNAMIC:
            return self.d.dyn_from_json_text(e)
        return e

    def n_Range(self, node: ir.Range) -> exp.Expression:
        c = node.schema.columns[0]
        i = ident("i")
        ticks = (c.type == T.DATETIME and self.d.keeps_ticks
                 and (may_carry_ticks(node.start, self.tick_cols) or may_carry_ticks(node.stop, self.tick_cols)))
        if ticks:
            self.tick_cols.add(c.name)
        if ticks:
            # Counted in 100 ns ticks, so a from or to with a 7th digit gives Kusto's rows (the step is whole
            # microseconds); the values are the from plus whole steps, keeping its ticks.
            start, stop = self._ticks(self.e(node.start)), self._ticks(self.e(node.stop))
        elif c.type == T.DATETIME:
            start = self.d.ts_to_us(self.e(node.start))
            stop = self.d.ts_to_us(self.e(node.stop))
        else:
            start, stop = self.e(node.start), self.e(node.stop)
        step = self.e(node.step)
        if ticks:
            step = exp.Mul(this=paren(step), expression=n(10))
        if c.type in (T.LONG, T.INT, T.DATETIME, T.TIMESPAN):
            count = exp.Add(
                this=exp.IntDiv(this=exp.Sub(this=stop, expression=start), expression=step), expression=n(1)
            )
        else:
            count = exp.Add(
                this=cast_(
                    fn("floor", exp.Div(this=exp.Sub(this=stop, expression=start), expression=step)), "BIGINT"
                ),
                expression=n(1),
            )
        count = fn("greatest", count, n(0))
        value = exp.Add(this=start, expression=exp.Mul(this=exp.column(i), expression=step))
        if ticks:
            span = exp.Mul(this=exp.column(i), expression=paren(self.e(node.step)))
            value = exp.Add(this=self.e(node.start), expression=self.d.span_to_interval(span))
        elif c.type == T.DATETIME:
            value = self.d.us_to_ts(value)
        if self.d.name == "duckdb":
            # DuckDB's range() table function streams; UNNEST of a range() list allocates all of it first
            # (34 GB for 3 billion rows), before a `take` or `summarize` could stop it.
            return exp.Select(expressions=[alias(value, c.name)]).from_(self.d.range_table(count, "i"))
        inner = exp.Select(expressions=[exp.Alias(this=self.explode(self.sequence(count)), alias=i)])
        return exp.Select(expressions=[alias(value, c.name)]).from_(
            exp.Subquery(this=inner, alias=exp.TableAlias(this=ident("_r")))
        )

    def _ticks(self, ts: exp.Expression) -> exp.Expression:
        """A datetime as 100 ns ticks since the epoch (no overflow: microseconds, then the ticks below them)."""
        below = exp.IntDiv(this=self.d.sub_us_ns(ts.copy()), expression=n(100))
        return paren(exp.Add(this=exp.Mul(this=self.d.ts_to_us(ts), expression=n(10)), expression=below))

    def sequence(self, count: exp.Expression) -> exp.Expression:
        """The integers 0..count-1 as an array (empty when count is 0)."""
        if self.d.name == "spark":
            return fn("slice", fn("sequence", n(0), cast_(count, "BIGINT")), n(1), count)
        return fn("range", n(0), count)

    def explode(self, arr: exp.Expression) -> exp.Expression:
        return fn("explode", arr) if self.d.name == "spark" else fn("unnest", arr)

    def n_Select(self, node: ir.Select) -> exp.Expression:
        src = self.node(node.input)
        self.order = node.input.order
        self.qual = None
        self._check_names([name for name, _ in node.items])
        if self.d.name == "spark" and is_extend(node):
            # extend: every input column as it is, then the new ones. Written as *, not the wide list of
            # aliases Spark would parse and resolve again (see n_Scan).
            items = [exp.Star(), *(alias(self.e(e), name) for name, e in node.items[len(node.input.schema):])]
        else:
            items = [alias(self.e(e), name) for name, e in node.items]
        self.order = None
        if self.d.keeps_ticks:
            self.tick_cols.update(name for name, e in node.items
                                  if e.type == T.DATETIME and may_carry_ticks(e, self.tick_cols))
        return exp.Select(expressions=items).from_(table(src))

    def n_MakeGraph(self, node: ir.Node) -> exp.Expression:
        from kqlmagic_plus.language.compiler.syntax import Refusal

        raise Refusal("make-graph not followed by graph-to-table", None,
                      "a graph has no rows of its own: end it with graph-to-table nodes / edges")

    def n_ScanState(self, node: ir.ScanState) -> exp.Expression:
        from kqlmagic_plus.language.compiler.emit_scan import emit_scan_state

        return emit_scan_state(self, node)

    def n_Filter(self, node: ir.Filter) -> exp.Expression:
        src = self.node(node.input)
        self.qual = None
        self.order = node.input.order
        cond = self.e(node.predicate, pred=True)
        self.order = None
        return exp.Select(expressions=[exp.Star()]).from_(table(src)).where(cond)

    def n_Limit(self, node: ir.Limit) -> exp.Expression:
        src = self.node(node.input)
        q = exp.Select(expressions=[exp.Star()]).from_(table(src))
        if node.input.order and not (self.d.name == "duckdb" and _in_range_order(node.input)):
            q = q.order_by(*self.order_by(node.input.order))
        return q.limit(self.e(node.count))

    def n_Aggregate(self, node: ir.Aggregate) -> exp.Expression:
        src = self.node(node.input)
        if self.d.keeps_ticks:
            self.tick_cols.update(name for name, e in [*node.keys, *node.aggs] if isinstance(e, ir.Expr)
                                  and e.type == T.DATETIME and may_carry_ticks(e, self.tick_cols))
        self.qual = None
        self.order = None
        items: list[exp.Expression] = []
        groups: list[exp.Expression] = []
        for name, e in node.keys:
            k = self.e(e)
            if e.type in (T.STRING,):
                k = exp.Coalesce(this=k, expressions=[s("")])
            if e.type == T.DYNAMIC and self.d.name == "spark":
                # Spark cannot group a VARIANT (GROUP_EXPRESSION_TYPE_IS_NOT_ORDERABLE); DuckDB groups JSON by its
                # text, so Spark groups by the value's JSON text too and reads the value back from it.
                k = self.d.dyn_to_json_text(k)
                groups.append(k)
                items.append(alias(self.d.dyn_from_json_text(k), name))
                continue
            groups.append(k)
            items.append(alias(k, name))
        picks: list[tuple[str, ir.ArgPick]] = []
        for name, a in node.aggs:
            if isinstance(a, ir.ArgPick):
                h = f"__kqlc_pick{len(picks)}"
                fields = [(f"f{i}", self.e(e)) for i, (_, e) in enumerate(a.columns)]
                st = self.d.struct(fields)
                # Rows whose value is null are ignored; a group where it is null everywhere still
                # returns one of its rows (KQL's documented null handling for arg_max/arg_min).
                by = self.e(a.by)
                if a.by.type == T.STRING:  # a SQL NULL string is KQL's "", a value like any other
                    by = exp.Coalesce(this=by, expressions=[exp.Literal.string("")])
                picked = exp.Coalesce(this=self.d.arg_pick(a.kind, st, by), expressions=[fn("any_value", st)])
                items.append(alias(picked, h))
                picks.append((h, a))
            else:
                items.append(alias(self.e(a), name))
        q = exp.Select(expressions=items).from_(table(src))
        if groups:
            q = q.group_by(*groups)
        if not picks:
            return q
        inner = self.add(q)
        out: list[exp.Expression] = [alias(exp.column(ident(nm)), nm) for nm, _ in node.keys]
        pick_iter = iter(picks)
        for name, a in node.aggs:
            if isinstance(a, ir.ArgPick):
                h, pick = next(pick_iter)
                for i, (cname, _) in enumerate(pick.columns):
                    out.append(alias(self.d.struct_field(exp.column(ident(h)), f"f{i}"), cname))
            else:
                out.append(alias(exp.column(ident(name)), name))
        return exp.Select(expressions=out).from_(table(inner))

    def n_Join(self, node: ir.Join) -> exp.Expression:
        left = self.node(node.left)
        right = self.node(node.right)
        if node.kind == "innerunique":
            left = self.dedup(left, node.left, node.left_keys)
        kind = node.kind
        if kind in ("rightsemi", "rightanti"):
            main, other, main_keys, other_keys, main_alias, other_alias = (
                right,
                left,
                node.right_keys,
                node.left_keys,
                "r",
                "l",
            )
        else:
            main, other, main_keys, other_keys, main_alias, other_alias = (
                left,
                right,
                node.left_keys,
                node.right_keys,
                "l",
                "r",
            )
        cond = self.join_condition(main_alias, main_keys, other_alias, other_keys, node.null_safe)
        if kind in ("leftsemi", "leftanti", "rightsemi", "rightanti"):
            sub = exp.Select(expressions=[n(1)]).from_(table(other, other_alias)).where(cond)
            ex = exp.Exists(this=sub)
            if kind.endswith("anti"):
                ex = exp.Not(this=ex)
            src_schema = node.left.schema if main_alias == "l" else node.right.schema
            items = [alias(exp.Column(this=ident(c.name), table=ident(main_alias)), c.name) for c in src_schema.visible]
            return exp.Select(expressions=items).from_(table(main, main_alias)).where(ex)
        items = [alias(exp.Column(this=ident(c.name), table=ident("l")), c.name) for c in node.left.schema.visible]
        for c in node.right.schema.visible:
            if c.name in node.right_names:
                items.append(alias(exp.Column(this=ident(c.name), table=ident("r")), node.right_names[c.name]))
        self._check_names([a.alias for a in items])
        side = {"inner": None, "innerunique": None, "leftouter": "LEFT", "rightouter": "RIGHT", "fullouter": "FULL"}[
            kind
        ]
        j = exp.Join(this=table(right, "r"), on=cond, side=side, kind=None if side else "INNER")
        if side == "FULL":
            j.set("kind", "OUTER")
        q = exp.Select(expressions=items).from_(table(left, "l"))
        q.append("joins", j)
        return q

    def join_condition(
        self, la: str, lkeys: list[ir.Expr], ra: str, rkeys: list[ir.Expr], null_safe: bool
    ) -> exp.Expression:
        parts = []
        for a, b in zip(lkeys, rkeys, strict=True):
            self.qual = la
            x = self.e(a)
            self.qual = ra
            y = self.e(b)
            self.qual = None
            if a.type in (T.STRING, T.GUID) or b.type in (T.STRING, T.GUID):
                x = exp.Coalesce(this=x, expressions=[s("")])
                y = exp.Coalesce(this=y, expressions=[s("")])
            if null_safe:
                parts.append(exp.NullSafeEQ(this=x, expression=y))
            else:
                parts.append(exp.EQ(this=x, expression=y))
        return exp.and_(*parts) if parts else exp.true()

    def dedup(self, src: str, node: ir.Node, keys: list[ir.Expr]) -> str:
        """innerunique: one arbitrary row of the left side per key."""
        self.qual = None
        ks = [self.e(k) for k in keys]
        rn = exp.Window(
            this=fn("row_number"), partition_by=ks, order=exp.Order(expressions=[exp.Ordered(this=k) for k in ks])
        )
        inner = self.add(exp.Select(expressions=[exp.Star(), alias(rn, "__kqlc_rn")]).from_(table(src)))
        cols = [alias(exp.column(ident(c.name)), c.name) for c in node.schema.visible]
        return self.add(
            exp.Select(expressions=cols)
            .from_(table(inner))
            .where(exp.EQ(this=exp.column(ident("__kqlc_rn")), expression=n(1)))
        )

    def n_Union(self, node: ir.Union) -> exp.Expression:
        selects = []
        for part, exprs in node.parts:
            src = self.node(part)
            self.qual = None
            self.order = None
            items = [
                alias(self.typed(e, c.type) if isinstance(e, ir.Lit) else self.e(e), c.name)
                for e, c in zip(exprs, node.schema, strict=True)
            ]
            selects.append(exp.Select(expressions=items).from_(table(src)))
        out = selects[0]
        for q in selects[1:]:
            out = exp.union(out, q, distinct=False)
        return out

    def n_MvExpand(self, node: ir.MvExpand) -> exp.Expression:
        src = self.node(node.input)
        self.qual = None
        self.order = None
        bag_mode = getattr(node, "bag_mode", "bag")
        arrays = []
        for i, ex in enumerate(node.expansions):
            arrays.append((f"__kqlc_a{i}", self.mv_elements(self.e(ex.source), bag_mode)))
        step1 = self.add(exp.Select(expressions=[exp.Star(), *[alias(a, nm) for nm, a in arrays]]).from_(table(src)))
        sizes = [exp.Coalesce(this=self.d.array_size(exp.column(ident(nm))), expressions=[n(0)]) for nm, _ in arrays]
        count = sizes[0] if len(sizes) == 1 else fn("greatest", *sizes)
        if node.limit is not None:
            count = fn("least", count, n(node.limit))
        step2 = self.add(
            exp.Select(expressions=[exp.Star(), alias(self.explode(self.sequence(count)), "__kqlc_p")]).from_(
                table(step1)
            )
        )
        p = exp.column(ident("__kqlc_p"))
        replaced = {}
        for (nm, _), ex in zip(arrays, node.expansions, strict=True):
            elem = self.d.array_element(exp.column(ident(nm)), exp.Add(this=p, expression=n(1)))
            replaced[ex.column] = elem if ex.to_type == T.DYNAMIC else self.d.dyn_as(elem, ex.to_type)
        items = []
        for c in node.schema:
            if c.name in replaced:
                items.append(alias(replaced[c.name], c.name))
            elif c.name in (node.index_column, node.position_column):
                items.append(alias(cast_(p, "BIGINT"), c.name))
            else:
                items.append(alias(exp.column(ident(c.name)), c.name))
        return exp.Select(expressions=items).from_(table(step2))

    def mv_elements(self, v: exp.Expression, bag_mode: str) -> exp.Expression:
        d = self.d

        def is_(k: str) -> exp.Expression:
            return d.dyn_is(v, k)

        if d.name == "spark":
            vt = exp.DataType(this=exp.DataType.Type.VARIANT)
            null_elem = fn("array", exp.Cast(this=exp.null(), to=vt))
            entries = fn(
                "map_entries", try_cast_(this=v, to=dtype("MAP<STRING, VARIANT>", dialect="spark"))
            )
            e = exp.column("e")
            key = exp.Dot(this=e, expression=exp.to_identifier("key"))
            val = exp.Dot(this=e, expression=exp.to_identifier("value"))
            if bag_mode == "array":
                body = fn("to_variant_object", fn("array", exp.Cast(this=key, to=vt), val))
            else:
                body = fn("to_variant_object", fn("map", key, val))
            bag = fn("transform", entries, exp.Lambda(this=body, expressions=[exp.to_identifier("e")]))
            single = fn("array", v)
        else:
            null_elem = exp.Array(expressions=[cast_(exp.null(), "JSON")])
            k = exp.column("k")
            value = fn("json_extract", v, exp.DPipe(this=exp.DPipe(this=s('$."'), expression=k), expression=s('"')))
            body = (
                fn("json_object", k, value)
                if bag_mode != "array"
                else cast_(fn("to_json", fn("list_value", fn("to_json", k), value)), "JSON")
            )
            bag = fn("list_transform", fn("json_keys", v), exp.Lambda(this=body, expressions=[exp.to_identifier("k")]))
            single = fn("list_value", v)
        return exp.Case(
            ifs=[
                exp.If(this=is_("null"), true=null_elem),
                exp.If(this=is_("array"), true=d.dyn_array_elements(v)),
                exp.If(this=is_("object"), true=bag),
            ],
            default=single,
        )

    def n_MakeSeries(self, node: ir.MakeSeries) -> exp.Expression:
        from kqlmagic_plus.language.compiler.series import emit_make_series

        return emit_make_series(self, node)

    # -- expressions ------------------------------------------------------------------------------

    def e(self, x: ir.Expr, pred: bool = False) -> exp.Expression:
        if isinstance(x, ir.Col):
            return self.col(x.name)
        if isinstance(x, ir.Lit):
            return self.lit(x)
        if isinstance(x, ir.Call):
            f = lookup_operator(x.fn) or lookup_scalar(x.fn)
            if f is None:
                raise Refusal(f"{x.fn}()")
            if self.d.name in f.refused:
                raise Refusal(f"{x.fn}()", reason=f.refused[self.d.name])
            return f.emit(self, x, pred)
        if isinstance(x, ir.Agg):
            f = lookup_aggregate(x.fn)
            if f is None:
                raise Refusal(f"{x.fn}()")
            if self.d.name in f.refused:
                raise Refusal(f"{x.fn}()", reason=f.refused[self.d.name])
            return f.emit(self, x)
        if isinstance(x, ir.ScalarSubquery):
            saved = (self.qual, self.order)
            src = self.node(x.node)
            self.qual, self.order = saved
            first = x.node.schema.visible[0].name
            q = exp.Select(expressions=[exp.column(ident(first))]).from_(table(src))
            if x.node.order:
                q = q.order_by(
                    *[
                        exp.Ordered(this=exp.column(ident(k.column)), desc=k.desc, nulls_first=k.nulls_first)
                        for k in x.node.order
                    ]
                )
            return exp.Subquery(this=q.limit(1))
        if isinstance(x, ir.InSubquery):
            saved = (self.qual, self.order)
            src = self.node(x.node)
            self.qual, self.order = saved
            first = x.node.schema.visible[0].name
            c = exp.column(ident(first))
            left = self.e(x.expr)
            if x.ci:
                c, left = exp.Lower(this=c), exp.Lower(this=left)
            strings = x.expr.type in (T.STRING, T.GUID)
            if strings:
                c = exp.Coalesce(this=c, expressions=[s("")])
                left = exp.Coalesce(this=left, expressions=[s("")])
            sub = (
                exp.Select(expressions=[c])
                .from_(table(src))
                .where(exp.Not(this=exp.Is(this=exp.column(ident(first)), expression=exp.null())))
                if not strings
                else exp.Select(expressions=[c]).from_(table(src))
            )
            r = exp.In(this=left, query=exp.Subquery(this=sub))
            if x.negated:
                return exp.Not(this=exp.Coalesce(this=r, expressions=[exp.false()]))
            return r if pred else exp.Coalesce(this=r, expressions=[exp.false()])
        raise Refusal(type(x).__name__)

    def over(self, func: exp.Expression, running: bool = False) -> exp.Expression:
        if not self.order:
            raise Refusal("window function over unserialized rows")
        spec = None
        if running:
            spec = exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end="CURRENT ROW")
        return exp.Window(this=func, order=exp.Order(expressions=self.order_by(self.order)), spec=spec)

    def lit(self, x: ir.Lit) -> exp.Expression:
        v, t = x.value, x.type
        if v is None:
            return self.d.typed_null(t if t != T.NULL else T.STRING) if t != T.NULL else exp.null()
        if t == T.BOOL:
            return exp.true() if v else exp.false()
        if t in (T.INT, T.LONG):
            return n(int(v))
        if t == T.REAL:
            f = float(v)
            if math.isnan(f) or math.isinf(f):
                return cast_(s("NaN" if math.isnan(f) else ("Infinity" if f > 0 else "-Infinity")), "DOUBLE")
            return (
                cast_(exp.Literal.number(repr(f)), "DOUBLE")
                if f >= 0
                else exp.Neg(this=cast_(exp.Literal.number(repr(-f)), "DOUBLE"))
            )
        if t == T.DECIMAL:
            return exp.Cast(this=s(str(v)), to=self.d.sql_type(T.DECIMAL))
        if t in (T.STRING, T.GUID):
            return s(str(v))
        if t == T.DATETIME:
            return self.d.datetime_literal(v)
        if t == T.TIMESPAN:
            return n(int(v))
        if t == T.DYNAMIC:
            return (
                self.d.dyn_from_json_text(s(json.dumps(v, ensure_ascii=False, separators=(",", ":"))))
                if self.d.name == "duckdb"
                else fn("parse_json", s(json.dumps(v, ensure_ascii=False, separators=(",", ":"))))
            )
        raise Refusal(f"literal of type {t}")


def _one_datetime_precision(rows: Any, cols: list[T.Column]) -> Any:
    """The rows, with a datetime column's 100 ns ticks cut to the microsecond when one of its literals is outside
    the years a nanosecond timestamp holds (1678-2261): DuckDB gives such a column one type, and a TIMESTAMP_NS
    cannot hold ``datetime(0001-01-01)`` (the 7th digit is a named limit there, as on Spark)."""
    cut = {i for i, c in enumerate(cols) if c.type == T.DATETIME and any(
        isinstance(r[i], ir.Lit) and r[i].value is not None and not ns_holds(r[i].value) for r in rows)}
    if not cut:
        return rows
    return [tuple(ir.Lit(v.type, int(v.value)) if i in cut and isinstance(v, ir.Lit) and v.value is not None else v
                  for i, v in enumerate(r)) for r in rows]


def _in_range_order(node: ir.Node) -> bool:
    """*node*'s rows are a range's, filtered or projected, in the order DuckDB's range() yields them (DuckDB keeps
    insertion order through streaming filters and projections): a take needs no sort of them (a sort of
    ``range x from 1 to 3000000000 step 1 | take 3`` would read every row)."""
    order = node.order
    while isinstance(node, ir.Select | ir.Filter) and node.order == order:
        node = node.input
    return isinstance(node, ir.Range) and node.order == order


def emit_sql(node: ir.Node, dialect: Dialect) -> str:
    em = Emitter(dialect)
    if dialect.name == "spark":
        em.scan_cols = scan_columns(node)
    tree = em.statement(node)
    parenthesize(tree)
    if dialect.name == "spark":
        from kqlmagic_plus.language.compiler.inline_ctes import inline_single_use_ctes

        _refuse_subquery_in_lambda(tree)
        inline_single_use_ctes(tree)  # Spark plans nested subqueries faster than a chain of CTEs
    return tree.sql(dialect=dialect.sqlglot)


def _refuse_subquery_in_lambda(tree: exp.Expression) -> None:
    """Spark cannot evaluate a subquery inside a higher-order function (UNSUPPORTED_SUBQUERY_EXPRESSION_CATEGORY):
    a toscalar() used by an array operation. Refused here, before Spark fails at analysis."""
    from kqlmagic_plus.language.compiler.syntax import Refusal

    for lam in tree.find_all(exp.Lambda):
        call = lam.parent if lam.parent is not None else lam
        if call.find(exp.Select, exp.Subquery) is not None:
            raise Refusal("toscalar() inside an operation over a dynamic array (in, has_any, set functions ...)",
                          None, "Spark evaluates no subquery inside array functions; compute the value with a "
                          "let first and pass it as a literal, or run the query on DuckDB")


_NO_PARENS = (exp.Dot, exp.PropertyEQ, exp.Paren)


def parenthesize(tree: exp.Expression) -> None:
    """sqlglot prints trees as built, without precedence-driven parentheses: add them wherever an
    operator's operand is itself an operator, so ``(a + b) * c`` is never printed ``a + b * c``."""
    for node in list(tree.walk()):
        if isinstance(node, (exp.Binary, exp.Unary)) and not isinstance(node, _NO_PARENS):
            for key in ("this", "expression"):
                child = node.args.get(key)
                if isinstance(child, (exp.Binary, exp.Unary)) and not isinstance(child, _NO_PARENS):
                    node.set(key, exp.Paren(this=child))
