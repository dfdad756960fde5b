"""Differential harness: load the corpus tables into DuckDB and Spark, run a KQL query through
duckdb-kql, our DuckDB emission and our Spark emission, and compare rows by KQL type."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

HERE = os.path.dirname(__file__)


@dataclass
class Case:
    name: str
    query: str
    file: str
    line: int
    ordered: bool = False
    flags: set[str] = field(default_factory=set)
    expect: list[list[Any]] | None = None
    expect_error: str | None = None


def load_tables() -> dict[str, dict[str, Any]]:
    with open(os.path.join(HERE, "tables.json"), encoding="utf-8") as f:
        return json.load(f)


def schema() -> dict[str, list[tuple[str, str]]]:
    return {name: [tuple(c) for c in t["columns"]] for name, t in load_tables().items()}


def load_cases() -> list[Case]:
    cases: list[Case] = []
    for fname in sorted(os.listdir(HERE)):
        if fname.endswith(".kql"):
            cases.extend(parse_cases(os.path.join(HERE, fname)))
    names = [c.name for c in cases]
    dupes = {n for n in names if names.count(n) > 1}
    assert not dupes, f"duplicate case names: {dupes}"
    return cases


def parse_cases(path: str) -> list[Case]:
    out: list[Case] = []
    cur: Case | None = None
    mode = "query"
    lines: list[str] = []
    with open(path, encoding="utf-8") as f:
        text = f.read().splitlines()

    def finish() -> None:
        if cur is not None:
            cur.query = "\n".join(lines).strip()
            out.append(cur)

    for i, line in enumerate(text, 1):
        if line.startswith("=== "):
            finish()
            words = line[4:].split()
            cur = Case(words[0], "", os.path.basename(path), i)
            for w in words[1:]:
                if w == "ordered":
                    cur.ordered = True
                elif w.startswith("error="):
                    cur.expect_error = w[6:]
                else:
                    cur.flags.add(w)
            lines, mode = [], "query"
        elif line.startswith("#"):
            continue
        elif line.strip() == "--- expect" and cur is not None:
            mode, cur.expect = "expect", []
        elif cur is not None:
            if mode == "query":
                lines.append(line)
            elif line.strip():
                cur.expect.append(json.loads(line))  # type: ignore[union-attr]
    finish()
    return out


# -- loading data ----------------------------------------------------------------------------------

def arrow_table(spec: dict[str, Any]) -> Any:
    import pyarrow as pa

    cols = spec["columns"]
    arrays = []
    for i, (_, t) in enumerate(cols):
        vals = [row[i] for row in spec["rows"]]
        arrays.append(_arrow_column(vals, t))
    return pa.Table.from_arrays(arrays, names=[c[0] for c in cols])


def _arrow_column(vals: list[Any], t: str) -> Any:
    import pyarrow as pa

    if t == "datetime":
        return pa.array([None if v is None else _parse_dt(v) for v in vals], type=pa.timestamp("us", tz="UTC"))
    if t == "timespan":
        return pa.array([None if v is None else dt.timedelta(microseconds=_parse_span(v)) for v in vals],
                        type=pa.duration("us"))
    if t == "dynamic":
        return pa.array([None if v is None else json.dumps(v) for v in vals], type=pa.string())
    kinds = {"long": pa.int64(), "int": pa.int32(), "real": pa.float64(), "bool": pa.bool_(),
             "string": pa.string(), "guid": pa.string()}
    return pa.array(vals, type=kinds[t])


def _parse_dt(v: str) -> dt.datetime:
    return dt.datetime.fromisoformat(v.replace("Z", "+00:00")).astimezone(dt.UTC)


def _parse_span(v: str) -> int:
    from kqlmagic_plus.language.compiler.literals import parse_timespan_text

    us = parse_timespan_text(v)
    assert us is not None, v
    return us


def duckdb_connection() -> Any:
    import duckdb_kql

    con = duckdb_kql.connect(":memory:")
    for name, spec in load_tables().items():
        tbl = arrow_table(spec)
        con.register("__src", tbl)
        cols = []
        for cname, t in spec["columns"]:
            q = f'"{cname}"'
            if t == "dynamic":
                cols.append(f"CAST({q} AS JSON) AS {q}")
            elif t == "datetime":
                cols.append(f"CAST({q} AS TIMESTAMP) AS {q}")
            else:
                cols.append(q)
        con.execute(f'CREATE TABLE "{name}" AS SELECT {", ".join(cols)} FROM __src')
        con.unregister("__src")
    return con


def spark_register(spark: Any) -> None:
    from kqlmagic_plus.language.compiler.execute import spark_schema

    for name, spec in load_tables().items():
        tbl = arrow_table(spec)
        schema_ = spark_schema([tuple(c) for c in spec["columns"]])
        rows = tbl.to_pylist()
        df = spark.createDataFrame([tuple(r[c] for c in tbl.column_names) for r in rows], schema=schema_)
        df.createOrReplaceTempView(name)


# -- running ---------------------------------------------------------------------------------------

@dataclass
class Outcome:
    engine: str
    columns: list[str] | None = None
    types: list[str] | None = None
    rows: list[tuple[Any, ...]] | None = None
    error: str | None = None
    refused: bool = False


def run_duckdb_kql(con: Any, query: str) -> Outcome:
    import duckdb_kql

    from kqlmagic_plus.kqltypes import canonical_table, kql_type_of_duckdb

    try:
        rel = duckdb_kql.kql(con, query)
        types = [kql_type_of_duckdb(str(t)) for t in rel.dtypes]
        tbl = canonical_table(rel.to_arrow_table(), types)
    except duckdb_kql.KqlError as exc:
        return Outcome("duckdb-kql", error=str(exc).splitlines()[0], refused=True)
    except Exception as exc:  # a translation that DuckDB rejects
        return Outcome("duckdb-kql", error=str(exc).splitlines()[0])
    return Outcome("duckdb-kql", tbl.column_names, types, normalize_rows(tbl, types))


def run_ours(runner: Any, query: str, dialect: str, rows: Any = None) -> Outcome:
    """*rows*: runs one SQL statement and returns its first column, for the operators whose columns depend on
    the data (pivot, bag_unpack without a schema), as the engines read them at compile time."""
    from kqlmagic_plus.errors import KqlMagicPlusError, UnsupportedQueryError
    from kqlmagic_plus.language.compiler import compile as kcompile
    from kqlmagic_plus.language.compiler.probe import reading_rows

    name = f"ours-{dialect}"
    try:
        with reading_rows(rows):
            c = kcompile(query, schema(), dialect=dialect)
    except UnsupportedQueryError as exc:
        return Outcome(name, error=str(exc).splitlines()[0], refused=True)
    except KqlMagicPlusError as exc:
        return Outcome(name, error=f"{type(exc).__name__}: {exc}")
    try:
        tbl = runner(c)
    except Exception as exc:
        return Outcome(name, error=f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}\nSQL: {c.sql}")
    types = [t for _, t in c.columns]
    return Outcome(name, [n for n, _ in c.columns], types, normalize_rows(tbl, types))


# -- comparing -------------------------------------------------------------------------------------

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?Z?$")


def normalize_rows(tbl: Any, types: list[str]) -> list[tuple[Any, ...]]:
    cols = [tbl.column(i).to_pylist() for i in range(tbl.num_columns)]
    return [tuple(norm(cols[j][i], types[j]) for j in range(len(types))) for i in range(tbl.num_rows)]


def norm(v: Any, t: str) -> Any:
    if t in ("string", "guid"):
        return "" if v is None else str(v)
    if v is None:
        return None
    if t == "datetime":
        if isinstance(v, dt.datetime) and hasattr(v, "nanosecond"):
            # A pandas Timestamp (a nanosecond column: the local engine keeps 100 ns ticks): exact microseconds,
            # cut as Spark's are (a float division would round .9999999 up to the next second).
            return (v.value if v.tzinfo is not None else v.tz_localize("UTC").value) // 1000
        if isinstance(v, dt.datetime):
            if v.tzinfo is None:
                v = v.replace(tzinfo=dt.UTC)
            return int((v - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) / dt.timedelta(microseconds=1))
        return v
    if t == "timespan":
        if isinstance(v, dt.timedelta):
            return int(v / dt.timedelta(microseconds=1))
        return v
    if t in ("real", "decimal"):
        return _num(float(v))
    if t in ("long", "int"):
        return int(v)
    if t == "dynamic":
        try:
            return _dyn(json.loads(v) if isinstance(v, str) else v)
        except (ValueError, TypeError):
            return ("bad-json", v)
    return v


def _num(f: float) -> Any:
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "inf" if f > 0 else "-inf"
    return float(f"{f:.9g}")


def _dyn(v: Any) -> Any:
    if isinstance(v, dict):
        return ("{}", tuple(sorted((k, _dyn(x)) for k, x in v.items())))
    if isinstance(v, list):
        return ("[]", tuple(_dyn(x) for x in v))
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, (int, float)):
        return _num(float(v))
    if isinstance(v, str) and _ISO.match(v):
        try:
            d = dt.datetime.fromisoformat(v.replace("Z", "+00:00").replace(" ", "T"))
            if d.tzinfo is None:
                d = d.replace(tzinfo=dt.UTC)
            return ("datetime", int((d - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) / dt.timedelta(microseconds=1)))
        except ValueError:
            return v
    return v


def same(a: Outcome, b: Outcome, ordered: bool) -> str | None:
    """None when the two results agree, else a description of the difference."""
    if a.columns != b.columns:
        return f"columns differ: {a.engine} {a.columns} vs {b.engine} {b.columns}"
    ra, rb = list(a.rows or []), list(b.rows or [])
    if not ordered:
        ra, rb = sorted(ra, key=repr), sorted(rb, key=repr)
    if ra != rb:
        return f"rows differ:\n  {a.engine}: {ra[:8]}\n  {b.engine}: {rb[:8]}"
    return None


def expected_rows(case: Case, types: list[str]) -> list[tuple[Any, ...]]:
    out = []
    for row in case.expect or []:
        vals = []
        for v, t in zip(row, types, strict=True):
            if t == "datetime" and isinstance(v, str):
                vals.append(norm(_parse_dt(v), t))
            elif t == "timespan" and isinstance(v, str):
                vals.append(_parse_span(v))
            elif t == "dynamic":
                vals.append(_dyn(v))
            else:
                vals.append(norm(v, t))
        out.append(tuple(vals))
    return out
