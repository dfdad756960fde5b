"""What runs next to the Spark driver's Python: lake views, cell execution, result collection.

The same source serves every target. Local and Spark Connect sessions import it in this process; a
Synapse session receives it as the text of one Livy statement (the pool has no kqlmagic_plus
installed), so it may import only the standard library, pyspark and pyarrow, and must work with
classic PySpark 3.4+ (Synapse runtimes) as well as PySpark 4 classic and Connect sessions.

Nothing here prints, except :func:`emit` (the Livy wire format: one marker line per message).
"""

from __future__ import annotations

import ast
import base64
import hashlib
import io
import json
import re
import sys
import traceback
from typing import Any

VERSION = 3
#: Filename the cell's code is compiled under, so errors can name the cell's line.
CELL_FILENAME = "<sparkhunt cell>"
#: Prefix of the lines that carry results over a Livy statement's text output.
MARKER = "\u2063KQLMP\u2063"

#: KQL type -> the Spark type a view column ends up with. JSON is read as text and converted with
#: try_cast: the export writes numbers as strings in places ("ResultType":"0"), which Spark's JSON
#: reader would turn into NULL in a numeric column while DuckDB (the local engine) converts them.
SPARK_TYPES = {"bool": "boolean", "int": "int", "long": "bigint", "real": "double", "decimal": "decimal(38,18)",
               "string": "string", "guid": "string", "dynamic": "string", "datetime": "timestamp",
               "timespan": "string"}

#: Jackson's limits (Spark 3.5+: 1,000 levels of nesting, 20 M characters a string) would turn a record past
#: them into a row of NULLs, dropped as unreadable: the export's records are read whole, as DuckDB reads them.
JSON_LIMITS = {"maxNestingDepth": str(2**31 - 1), "maxStringLen": str(2**31 - 1)}

_CANCEL_CONDITIONS = ("SPARK_JOB_CANCELLED", "OPERATION_CANCELED", "OPERATION_CANCELLED", "TASK_KILLED",
                      "SPARK_JOB_GROUP_CANCELLED", "JOB_GROUP_CANCELLED")

#: (session id, view) -> digest of the view's definition: an unchanged view is not rebuilt (listing
#: and binding thousands of files costs seconds), per session so two sessions never share an entry.
_VIEWS: dict[tuple[str, str], str] = {}


# -- lake views -------------------------------------------------------------------------------------


def register_lake(spark: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """Create or replace one temp view per table of *spec*; returns the views made and warnings.

    *spec*: ``{"tables": [{"name", "columns": [[col, kql_type]], "json": [paths or globs],
    "parquet": [...], "glob": bool}]}``. Columns come from the spec, never from Spark's inference or
    partition discovery (the export's ``y=/m=/d=/h=/m=`` folders repeat ``m=``).
    """
    out: dict[str, Any] = {"views": [], "reused": [], "warnings": []}
    sid = _session_key(spark)
    build = []
    for table in spec.get("tables", []):
        name = table["name"]
        digest = hashlib.sha256(json.dumps(table, sort_keys=True).encode()).hexdigest()
        if _VIEWS.get((sid, name)) == digest and _view_exists(spark, name):
            out["reused"].append(name)
        else:
            build.append((table, digest))
    if not build:
        return out  # every view stands over the same files: no conf round trips either
    conf_key = "spark.sql.sources.parallelPartitionDiscovery.threshold"
    listed = any(not t.get("glob") for t, _ in build)
    previous = _conf_get(spark, conf_key) if listed else None
    if listed:
        # Explicit file lists are stat-ed on the driver; Spark's default (a listing job past 32 paths)
        # costs more than the stat calls themselves. Set until the views are bound (a Connect server
        # lists files when the view is created, not when the reader is built).
        _conf_set(spark, conf_key, "1000000")
    try:
        for table, digest in build:
            name = table["name"]
            df = table_frame(spark, table, out["warnings"])
            df.createOrReplaceTempView(name)
            _VIEWS[(sid, name)] = digest
            out["views"].append(name)
    finally:
        if listed:
            _conf_set(spark, conf_key, previous)
    return out


def table_frame(spark: Any, table: dict[str, Any], warnings: list[str]) -> Any:
    """The DataFrame of one lake table: its files (or globs), with the spec's columns and types."""
    from pyspark.sql import types as T

    F = functions_for(spark)
    cols = [(c[0], c[1]) for c in table["columns"]]
    # [column, type, key]: a column named apart from a key of another case (ProcessId_1 reads ProcessId).
    keys = {c[0]: c[2] for c in table["columns"] if len(c) > 2}
    names = {c for c, _ in cols}
    parts = []
    if table.get("json"):
        raw = T.StructType([T.StructField(c, T.StringType(), True) for c, _ in cols if c not in keys])
        if keys:
            # Spark's JSON reader cannot hold two keys that differ only in case: parse the lines as text,
            # and read each renamed column by its key's exact (case-sensitive) path. (from_json keeps
            # Jackson's 1,000-level limit when it writes a nested value as text: deeper ones read as NULL.)
            df = _read(spark, "text", table["json"], None, bool(table.get("glob")), warnings, table["name"])
            if df is not None:
                df = df.select(F.from_json(F.col("value"), raw, JSON_LIMITS).alias("_r"), F.col("value"))
                df = df.select(*[F.col("_r").getField(c).alias(c) if c not in keys else
                                 F.get_json_object(F.col("value"), "$['" + keys[c] + "']").alias(c) for c, _ in cols])
        else:
            df = _read(spark, "json", table["json"], raw, bool(table.get("glob")), warnings, table["name"])
        if df is not None:
            if "TimeGenerated" in names and "Type" in names:
                # An unreadable line becomes a row of NULLs in PERMISSIVE mode: those are the lines the
                # lake report lists as skipped, so they are dropped (as the DuckDB view does).
                df = df.where(F.col("TimeGenerated").isNotNull() | F.col("Type").isNotNull())
            parts.append(df.select(*[_typed(F, c, t) for c, t in cols]))
    if table.get("parquet"):
        df = _read(spark, "parquet", table["parquet"], None, bool(table.get("glob")), warnings, table["name"])
        if df is not None:
            present = set(df.columns)
            parts.append(df.select(*[_typed(F, c, t) if c in present
                                     else F.lit(None).cast(SPARK_TYPES[t]).alias(c) for c, t in cols]))
    if not parts:
        schema = T.StructType([T.StructField(c, _spark_type(T, t), True) for c, t in cols])
        return spark.createDataFrame([], schema)
    df = parts[0]
    for p in parts[1:]:
        df = df.unionByName(p)
    return df


def functions_for(spark: Any) -> Any:
    """``pyspark.sql.functions`` for *spark*: the Connect ones for a Connect session even when a classic
    SparkContext runs in the same process (PySpark picks by process, not by session)."""
    if type(spark).__module__.startswith("pyspark.sql.connect"):
        from pyspark.sql.connect import functions

        return functions
    from pyspark.sql import functions

    return functions


def _typed(F: Any, col: str, kql_type: str) -> Any:
    target = SPARK_TYPES[kql_type]
    c = F.col(f"`{col}`")
    if target == "string":
        return c.cast("string").alias(col)
    return F.expr(f"try_cast(`{col}` AS {target})").alias(col)


def _spark_type(T: Any, kql_type: str) -> Any:
    return {"boolean": T.BooleanType(), "int": T.IntegerType(), "bigint": T.LongType(), "double": T.DoubleType(),
            "decimal(38,18)": T.DecimalType(38, 18), "string": T.StringType(),
            "timestamp": T.TimestampType()}[SPARK_TYPES[kql_type]]


def _read(spark: Any, fmt: str, paths: list[str], schema: Any, glob: bool, warnings: list[str], name: str) -> Any:
    reader = spark.read
    if fmt == "json":
        reader = reader.schema(schema).option("mode", "PERMISSIVE").options(**JSON_LIMITS)
    elif fmt == "parquet":
        reader = reader.option("mergeSchema", "true")
    try:
        df = reader.json(paths) if fmt == "json" else reader.text(paths) if fmt == "text" else reader.parquet(*paths)
        if glob:
            # A Connect server resolves paths lazily: ask for the columns so an empty glob shows here.
            _ = df.columns
        return df
    except Exception as exc:
        info = describe_error(exc, "")
        if info.get("condition") == "PATH_NOT_FOUND" or "Path does not exist" in info.get("message", ""):
            if not glob:
                warnings.append(f"{name}: a {fmt} file vanished while the view was built ({info['message']})")
            return None
        raise


def _conf_get(spark: Any, key: str) -> str | None:
    try:
        return spark.conf.get(key, None)
    except Exception:
        return None


def _conf_set(spark: Any, key: str, value: str | None) -> None:
    try:
        if value is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, value)
    except Exception:
        # A server that forbids the setting still reads the files, only slower.
        pass


def _view_exists(spark: Any, name: str) -> bool:
    try:
        return bool(spark.catalog.tableExists(name))
    except Exception:
        return False


def _session_key(spark: Any) -> str:
    sid = getattr(spark, "session_id", None)
    if isinstance(sid, str):
        return sid
    try:
        return str(spark._jsparkSession.sessionUUID())
    except Exception:
        return str(id(spark))


def list_folders(spark: Any, uri: str) -> list[str]:
    """Sub-folders of *uri* through the session's Hadoop file system (classic sessions only)."""
    jvm = getattr(spark, "_jvm", None) or getattr(getattr(spark, "sparkContext", None), "_jvm", None)
    if jvm is None:
        raise RuntimeError("NO_JVM")
    path = jvm.org.apache.hadoop.fs.Path(uri)
    fs = path.getFileSystem(spark._jsc.hadoopConfiguration() if hasattr(spark, "_jsc")
                            else spark.sparkContext._jsc.hadoopConfiguration())
    return [str(s.getPath().toString()) for s in fs.listStatus(path) if s.isDirectory()]


# -- running a cell ---------------------------------------------------------------------------------


def run_cell(spark: Any, mode: str, code: str, namespace: dict[str, Any] | None = None,
             limit: int | None = None, to_lake: str | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Run SQL or PySpark code; the result is collected (up to *limit* rows) or written as Parquet.

    Returns ``{"kind": "table", "table", "truncated"}``, ``{"kind": "written", ...}``, or
    ``{"kind": "value", "value"}`` for a PySpark cell whose last expression is no table (or nothing).
    """
    if mode == "sql":
        if "kqlmp_" in code.lower():  # sqlglot may print the function names upper-case
            _register_udfs(spark, code)
        value = spark.sql(code)
    elif mode == "pyspark":
        ns = namespace if namespace is not None else {}
        ns["spark"] = spark
        value = _exec_cell(code, ns)
    else:
        raise ValueError(f"mode {mode!r}")
    return finish(spark, value, limit, to_lake, overwrite)


def _register_udfs(spark: Any, sql: str) -> None:
    """The Python functions the compiled SQL calls (geo cells, polygons, hashes): kqlmagic_plus must be
    importable where this runs (true for local Spark and Spark Connect started from this Python)."""
    try:
        from kqlmagic_plus.language.udfs import register_spark
    except ImportError:
        raise RuntimeError("this query calls kqlmagic_plus's Python functions (kqlmp_*), and kqlmagic_plus is "
                           "not installed where the Spark driver runs: install it there, or run the query on the "
                           "local engine") from None
    register_spark(spark, sql)


def finish(spark: Any, value: Any, limit: int | None, to_lake: str | None, overwrite: bool) -> dict[str, Any]:
    """Turn a cell's value into what goes back: a collected table, a written folder, or the value."""
    if _is_spark_frame(value):
        if to_lake:
            return write_parquet(spark, value, to_lake, overwrite)
        table, truncated = collect(value, limit)
        return {"kind": "table", "table": table, "truncated": truncated}
    table = _as_arrow(value)
    if table is not None:
        if to_lake:
            return write_parquet(spark, spark.createDataFrame(table.to_pandas()), to_lake, overwrite)
        truncated = limit is not None and table.num_rows > limit
        return {"kind": "table", "table": table.slice(0, limit) if truncated else table, "truncated": truncated}
    return {"kind": "value", "value": value}


def _exec_cell(code: str, ns: dict[str, Any]) -> Any:
    """Exec *code* in *ns*; the value of its last line when that line is an expression (as a notebook)."""
    tree = ast.parse(code, filename=CELL_FILENAME, mode="exec")
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    exec(compile(tree, CELL_FILENAME, "exec"), ns)
    if last is None:
        return None
    return eval(compile(last, CELL_FILENAME, "eval"), ns)


def _is_spark_frame(value: Any) -> bool:
    t = type(value)
    return t.__name__ == "DataFrame" and t.__module__.startswith("pyspark.sql")


def _as_arrow(value: Any) -> Any:
    t = type(value)
    if t.__module__.startswith("pyarrow") and t.__name__ == "Table":
        return value
    if t.__module__.startswith("pandas") and t.__name__ == "DataFrame":
        import pyarrow as pa

        return pa.Table.from_pandas(value, preserve_index=False)
    return None


def collect(df: Any, limit: int | None) -> tuple[Any, bool]:
    """The rows of *df* as Arrow, at most *limit* of them; True when rows were left out."""
    if limit is None:
        return to_arrow(df), False
    table = to_arrow(df.limit(limit + 1))
    if table.num_rows > limit:
        return table.slice(0, limit), True
    return table, False


def to_arrow(df: Any) -> Any:
    import pyarrow as pa

    if hasattr(df, "toArrow"):
        return df.toArrow()
    # PySpark 3.x (Synapse runtimes) has no toArrow: its Arrow collection is the private one.
    batches = df._collect_as_arrow()
    if batches:
        return pa.Table.from_batches(batches)
    return pa.Table.from_pandas(df.limit(0).toPandas(), preserve_index=False)


def write_parquet(spark: Any, df: Any, path: str, overwrite: bool) -> dict[str, Any]:
    """Write *df* as Parquet under *path* (the whole result, not collected); rows counted from the footers."""
    df.write.mode("overwrite" if overwrite else "errorifexists").parquet(path)
    rows = spark.read.parquet(path).count()
    return {"kind": "written", "path": path, "rows": int(rows), "columns": list(df.columns)}


# -- errors -----------------------------------------------------------------------------------------


def describe_error(exc: BaseException, code: str) -> dict[str, Any]:
    """What went wrong, as plain data: kind (cancelled|spark|python), condition, message, line/column.

    Never a stack trace: the Spark error class and its first message line, or the Python exception and
    the cell line it came from.
    """
    if isinstance(exc, KeyboardInterrupt):
        return {"kind": "cancelled", "condition": None, "message": "interrupted"}
    condition = None
    get = getattr(exc, "getCondition", None) or getattr(exc, "getErrorClass", None)
    if callable(get):
        try:
            condition = get()
        except Exception:
            condition = None
    text = _exception_text(exc)
    if condition is None:
        m = re.search(r"\[([A-Z][A-Z0-9_]+(?:\.[A-Z0-9_]+)*)\]", text.split("\n", 1)[0])
        condition = m.group(1) if m else None
    first = _first_message_line(text)
    info: dict[str, Any] = {"kind": "spark" if _is_spark_error(exc) else "python", "condition": condition,
                            "message": first, "ename": type(exc).__name__}
    if (condition or "").split(".")[0] in _CANCEL_CONDITIONS or (re.search(
            r"\b(cancell?ed|interrupted)\b", first, re.IGNORECASE) and _is_spark_error(exc)):
        info["kind"] = "cancelled"
    if info["kind"] == "spark":
        params = _call(exc, "getMessageParameters")
        if isinstance(params, dict):
            info["parameters"] = {str(k): str(v) for k, v in params.items()}
        pos = _spark_position(exc, text, code)
        if pos:
            info["line"], info["column"] = pos
    else:
        tb = traceback.extract_tb(exc.__traceback__)
        lines = [f.lineno for f in tb if f.filename == CELL_FILENAME]
        if isinstance(exc, SyntaxError) and exc.filename == CELL_FILENAME:
            info["line"], info["column"] = exc.lineno, max((exc.offset or 1) - 1, 0)
            info["message"] = exc.msg
        elif lines:
            info["line"] = lines[-1]
    return info


def _call(obj: Any, name: str) -> Any:
    fn = getattr(obj, name, None)
    if not callable(fn):
        return None
    try:
        return fn()
    except Exception:
        return None


def _is_spark_error(exc: BaseException) -> bool:
    mod = type(exc).__module__
    return mod.startswith(("pyspark", "py4j")) or hasattr(exc, "getCondition") or hasattr(exc, "java_exception")


def _exception_text(exc: BaseException) -> str:
    """The message of *exc*; for a Java exception whose message says nothing ("Exception thrown in
    awaitResult"), the message of the first cause that says something."""
    java = getattr(exc, "java_exception", None)
    if java is not None:
        try:
            chain = []
            cur = java
            while cur is not None and len(chain) < 8:
                chain.append(str(cur.toString()))
                cur = cur.getCause()
            for text in chain:
                msg = _first_message_line(text)
                if msg and not re.match(r"^(Exception thrown in awaitResult|null)\b", msg):
                    return text
            return chain[0]
        except Exception:
            pass
    msg = getattr(exc, "_message", None) or getattr(exc, "message", None)
    text = msg if isinstance(msg, str) and msg else str(exc)
    return text


def _first_message_line(text: str) -> str:
    """The readable part of a Spark message: first line, without class names, SQLSTATE or plan."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    line = lines[0] if lines else ""
    if line.startswith("An error occurred while calling") and len(lines) > 1:
        line = lines[1].lstrip(": ").strip()
    m = re.match(r"^(?:[a-z][\w$]*\.)+[A-Z][\w$]*(?:Exception|Error)\s*:\s*(.*)$", line)
    if m:
        line = m.group(1)
    line = re.sub(r"\s*SQLSTATE:\s*\w+.*$", "", line)
    line = re.sub(r"^\[[A-Z0-9_.]+\]\s*", "", line)
    return line[:500].rstrip(" ;")


def _spark_position(exc: BaseException, text: str, code: str) -> tuple[int, int] | None:
    contexts = _call(exc, "getQueryContext") or []
    for ctx in contexts:
        start = _call(ctx, "startIndex")
        if isinstance(start, int) and start >= 0 and code:
            before = code[:start]
            return before.count("\n") + 1, start - (before.rfind("\n") + 1)
    m = re.search(r"\(line (\d+), pos (\d+)\)", text) or re.search(r"line (\d+):?\s*pos (\d+)", text)
    if m:
        return int(m.group(1)), int(m.group(2))
    return None


# -- the Livy wire format ---------------------------------------------------------------------------


def encode_table(table: Any) -> str:
    import pyarrow as pa

    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return base64.b64encode(sink.getvalue()).decode("ascii")


def decode_table(text: str) -> Any:
    import pyarrow as pa

    return pa.ipc.open_stream(base64.b64decode(text)).read_all()


def emit(message: dict[str, Any]) -> None:
    """Print one message for the client reading the statement output."""
    sys.stdout.write("\n" + MARKER + json.dumps(message, default=str) + "\n")
    sys.stdout.flush()


def livy_cell(spark: Any, ns: dict[str, Any], mode: str, code_b64: str, limit: int | None,
              to_lake: str | None, overwrite: bool, lake_spec: str | None) -> None:
    """One ``%%sparkhunt`` cell inside a Livy session: everything is reported through :func:`emit`."""
    code = base64.b64decode(code_b64).decode("utf-8")
    try:
        if lake_spec:
            spec = json.loads(base64.b64decode(lake_spec).decode("utf-8"))
            made = register_lake(spark, spec)
            for name in [t["name"] for t in spec.get("tables", [])]:
                ns[name] = spark.table(name)
            emit({"lake": made})
        out = run_cell(spark, mode, code, ns, limit, to_lake, overwrite)
    except BaseException as exc:  # everything goes back as a message; the statement itself succeeds
        emit({"error": describe_error(exc, code)})
        return
    if out["kind"] == "table":
        emit({"table": encode_table(out["table"]), "truncated": out["truncated"]})
    elif out["kind"] == "written":
        emit({"written": {k: v for k, v in out.items() if k != "kind"}})
    else:
        value = out["value"]
        emit({"value": None if value is None else repr(value)[:10000]})


def livy_call(fn: Any, *args: Any) -> None:
    """Run a helper inside a Livy session and report its return value or error through :func:`emit`."""
    try:
        emit({"return": fn(*args)})
    except BaseException as exc:
        emit({"error": describe_error(exc, "")})
