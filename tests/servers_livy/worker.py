"""A Livy session's interpreter: a Python process with PySpark that runs statements one at a time.

Started by :mod:`servers_livy.server` for each session. ``spark`` is a Spark Connect session on the
URL in ``KQLMP_LIVY_SPARK_URL`` (the test run's shared Spark), so a session costs a Python process,
not a JVM. Requests arrive as JSON lines on stdin (``{"id", "code", "kind"}``); answers leave as JSON
lines on the original stdout: ``{"ready"}``, ``{"id", "progress"}``, ``{"id", "output"}``, where
``output`` is Livy's statement output (``status`` ok with ``data: {"text/plain": ...}``, or error
with ``ename``/``evalue``/``traceback``). Printing in a statement is captured, as Livy does, and the
value of a last-line expression is appended to it. SIGINT cancels the running statement: the
worker interrupts its Spark operations and raises KeyboardInterrupt in the statement.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import signal
import sys
import threading
import traceback

_out = sys.stdout
_lock = threading.Lock()


def send(msg: dict) -> None:
    with _lock:
        _out.write(json.dumps(msg) + "\n")
        _out.flush()


def main() -> None:
    from pyspark.sql.connect.session import SparkSession

    spark = SparkSession.builder.remote(os.environ["KQLMP_LIVY_SPARK_URL"]).create()
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    ns: dict = {"spark": spark, "__name__": "__main__"}
    current: dict = {"id": None}

    def progress(stages=None, inflight_tasks=0, operation_id=None, done=False):
        total = sum(s.num_tasks for s in stages or [])
        if current["id"] is not None and total:
            send({"id": current["id"], "progress": sum(s.num_completed_tasks for s in stages) / total})

    spark.registerProgressHandler(progress)

    def on_sigint(signum, frame):
        if current["id"] is None:  # a cancel that arrived after its statement finished
            return
        threading.Thread(target=lambda: spark.interruptAll(), daemon=True).start()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)
    send({"ready": True})
    count = 0
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        count += 1
        current["id"] = req["id"]
        buf = io.StringIO()
        try:
            with contextlib.redirect_stdout(buf):
                if req.get("kind") == "sql":
                    rows = [r.asDict() for r in spark.sql(req["code"]).limit(1000).collect()]
                    print(json.dumps(rows, default=str))
                else:
                    run(req["code"], ns)
            output = {"status": "ok", "execution_count": count, "data": {"text/plain": buf.getvalue()}}
        except KeyboardInterrupt:
            output = {"status": "error", "execution_count": count, "ename": "KeyboardInterrupt",
                      "evalue": "cancelled", "traceback": [], "cancelled": True}
        except BaseException as exc:
            output = {"status": "error", "execution_count": count, "ename": type(exc).__name__,
                      "evalue": str(exc), "traceback": traceback.format_exception(exc)[-5:]}
        finally:
            current["id"] = None
        send({"id": req["id"], "output": output})


def run(code: str, ns: dict) -> None:
    tree = ast.parse(code, mode="exec")
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    exec(compile(tree, "<stdin>", "exec"), ns)
    if last is not None:
        value = eval(compile(last, "<stdin>", "eval"), ns)
        if value is not None:
            print(repr(value))


if __name__ == "__main__":
    main()
