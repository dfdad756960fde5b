"""KQL completion through a real kernel: what JupyterLab, Notebook and VS Code send on Tab.

A real ipykernel is started with jupyter_client; each test sends ``complete_request`` exactly as a
frontend does and reads the reply (``matches``, ``cursor_start``, and the ``_jupyter_types_experimental``
metadata frontends show beside each match).
"""

from __future__ import annotations

import os
import queue
import sys
from datetime import UTC, datetime

import pytest
from servers.fixtures import WORKSPACE, la_conn, la_server, signin_rows  # noqa: F401 - la_server: a fixture
from test_lake import T0, blob, rec

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Kernel:
    """A real ipykernel driven as a frontend drives it (also used by tests/test_kqlmagic_compat.py)."""

    def __init__(self, env: dict[str, str], cwd: str = ROOT):
        from jupyter_client.manager import start_new_kernel

        self.km, self.kc = start_new_kernel(kernel_name="python3", env=env, cwd=cwd, startup_timeout=120)

    def run(self, code: str, timeout: float = 120) -> str:
        """Execute *code*; its stdout, stderr and text results (an error fails the test)."""
        out: list[str] = []

        def hook(msg: dict) -> None:
            c = msg["content"]
            if msg["msg_type"] == "stream":
                out.append(c["text"])
            elif msg["msg_type"] in ("execute_result", "display_data"):
                out.append(c["data"].get("text/plain", ""))
            elif msg["msg_type"] == "error":
                out.append("\n".join(c["traceback"]))

        reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=hook)
        assert reply["content"]["status"] == "ok", "".join(out)
        return "".join(out)

    def result(self, code: str, timeout: float = 120) -> dict:
        """The mimebundle of *code*'s execute_result (what the frontend draws)."""
        data: dict = {}

        def hook(msg: dict) -> None:
            if msg["msg_type"] == "execute_result":
                data.update(msg["content"]["data"])

        reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=hook)
        assert reply["content"]["status"] == "ok"
        return data

    def complete(self, code: str, cursor: int | None = None) -> dict:
        cursor = len(code) if cursor is None else cursor
        msg_id = self.kc.complete(code, cursor)
        while True:
            try:
                reply = self.kc.get_shell_msg(timeout=60)
            except queue.Empty:
                pytest.fail(f"no complete_reply for {code!r}")
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply["content"]

    def stop(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def _typed(reply: dict) -> dict[str, dict]:
    return {m["text"]: m for m in reply["metadata"].get("_jupyter_types_experimental", [])}


@pytest.fixture(scope="module")
def lake_dir(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("lake")
    lines = [rec(T0, "Syslog", Computer="web01", SyslogMessage="sshd: accepted", ProcessID=7)]
    blob(root, "am-syslog", T0, lines)
    return str(root)


@pytest.fixture(scope="module")
def kernel(la_server, tmp_path_factory):  # noqa: F811 - the fixture imported above
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "REQUESTS_CA_BUNDLE": la_server.ca_path, "HOME": str(tmp_path_factory.mktemp("home"))}
    k = Kernel(env)
    k.run("%load_ext kqlmagic_plus\n"
          "import pandas as pd\n"
          "SigninLogs = pd.DataFrame({'TimeGenerated': pd.to_datetime(['2024-05-01T00:00:00Z']),\n"
          "                           'UserPrincipalName': ['alice@contoso.example'], 'ResultType': [50126],\n"
          "                           'IPAddress': ['10.0.0.1']})")
    yield k
    k.stop()


def test_table_name_in_a_kql_cell(kernel):
    code = "%%kql\nSign"
    reply = kernel.complete(code)
    assert reply["matches"] == ["SigninLogs"]
    assert reply["cursor_start"] == len("%%kql\n") and reply["cursor_end"] == len(code)
    assert _typed(reply)["SigninLogs"]["type"] == "table"


def test_column_after_where(kernel):
    reply = kernel.complete("%%kql\nSigninLogs\n| where Us")
    assert reply["matches"] == ["UserPrincipalName"]
    assert _typed(reply)["UserPrincipalName"]["type"] == "column"
    assert _typed(reply)["UserPrincipalName"]["signature"] == "string"


def test_column_in_summarize_by_including_one_made_by_extend(kernel):
    code = "%%kql\nSigninLogs\n| extend Day = bin(TimeGenerated, 1d)\n| summarize n = count() by Da"
    reply = kernel.complete(code)
    assert reply["matches"][0] == "Day"  # the column first, then functions such as datepart
    assert {m["type"] for m in reply["metadata"]["_jupyter_types_experimental"][1:]} == {"function"}
    # after summarize only its by-columns and aggregates are in scope
    code = "%%kql\nSigninLogs | summarize Failures = countif(ResultType != 0) by IPAddress | where "
    matches = kernel.complete(code)["matches"]
    assert matches[:2] == ["IPAddress", "Failures"]
    assert "UserPrincipalName" not in matches


def test_operator_after_pipe(kernel):
    reply = kernel.complete("%%kql\nSigninLogs | proj")
    assert reply["matches"] == ["project", "project-away", "project-keep", "project-rename", "project-reorder"]
    assert _typed(reply)["project"]["type"] == "operator"
    everything = kernel.complete("%%kql\nSigninLogs | ")["matches"]
    assert {"where", "summarize", "extend", "join", "render"} <= set(everything)
    assert "SigninLogs" not in everything and "print" not in everything  # no Python names in KQL


def test_function_name_with_its_signature(kernel):
    reply = kernel.complete("%%kql\nSigninLogs | where tolow")
    assert reply["matches"] == ["tolower"]
    assert _typed(reply)["tolower"]["type"] == "function"
    assert _typed(reply)["tolower"]["signature"] == "tolower(string) -> string"
    agg = _typed(kernel.complete("%%kql\nSigninLogs | summarize dcou"))
    assert agg["dcount"]["type"] == "aggregate" and agg["dcount"]["signature"].startswith("dcount(")


def test_column_in_a_kql_line(kernel):
    code = "failed = %kql SigninLogs | where Res"
    reply = kernel.complete(code)
    assert reply["matches"] == ["ResultType"]
    assert reply["cursor_start"] == len(code) - 3
    assert "SigninLogs" in kernel.complete("%kql ")["matches"]
    assert kernel.complete("%kql Signin")["matches"] == ["SigninLogs"]
    # a Python line around it is still Python's to complete
    assert "SigninLogs" in kernel.complete("x = Signin")["matches"]


def test_render_kinds_and_properties(kernel):
    assert "timechart" in kernel.complete("%%kql\nSigninLogs | render ")["matches"]
    props = kernel.complete("%%kql\nSigninLogs | render columnchart with (ti")["matches"]
    assert props == ["title"]
    assert kernel.complete("%%kql\nSigninLogs | render columnchart with (kind=st")["matches"] == \
        ["stacked", "stacked100"]


def test_no_kql_words_inside_a_string_or_a_comment(kernel):
    # (IPython lets other matchers answer when ours has nothing: only KQL words are checked here)
    assert "UserPrincipalName" not in kernel.complete("%%kql\nSigninLogs | where UserPrincipalName == 'Us")["matches"]
    assert "UserPrincipalName" not in kernel.complete("%%kql\nSigninLogs // Us")["matches"]


def test_mounted_file_and_duckdb_table_columns(kernel, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "flows.parquet"
    pq.write_table(pa.table({"SrcIp": ["10.0.0.1"], "DstPort": [443], "Bytes": [12.5]}), path)
    kernel.run(f"%kql --mount Flows={path}")
    reply = kernel.complete("%%kql\nFlows | where Dst")
    assert reply["matches"] == ["DstPort"] and _typed(reply)["DstPort"]["signature"] == "long"
    kernel.run("%kql .set Hosts <| print Host = 'web01', Owner = 'ops'")
    assert kernel.complete("%%kql\nHosts | project Ow")["matches"] == ["Owner"]


def test_sparkhunt_cell_completes_the_lake_it_binds_without_starting_spark(kernel, lake_dir):
    code = f"%%sparkhunt --lake {lake_dir}\nSyslog | where Comp"
    reply = kernel.complete(code)
    assert reply["matches"] == ["Computer"]
    assert kernel.complete(f"%%sparkhunt --lake {lake_dir}\nSys")["matches"] == ["Syslog"]
    # PySpark cells are Python: not ours
    assert "Computer" not in kernel.complete(f"%%sparkhunt --pyspark --lake {lake_dir}\nComp")["matches"]
    assert kernel.run("import sys; print('pyspark.sql' in sys.modules)").strip() == "False"


def test_schema_of_the_current_connection_draws_as_a_tree(kernel):
    data = kernel.result("%kql --schema")
    html = data["text/html"]
    assert "<summary>SigninLogs" in html and "UserPrincipalName" in html and "<script" not in html
    assert "SigninLogs (4): TimeGenerated:datetime, UserPrincipalName:string" in data["text/plain"]
    # Kqlmagic's use: the value is the {table: {column: type}} dict
    out = kernel.run("s = %kql --schema\nprint(s['SigninLogs']['ResultType'], type(s).__mro__[1].__name__)")
    assert out.strip() == "long dict"


def test_remote_schema_is_fetched_once_in_the_background_and_cached(kernel, la_server):  # noqa: F811
    la_server.reset()
    now = datetime.now(UTC)
    la_server.load(WORKSPACE, AADNonInteractiveUserSignInLogs=signin_rows(now, n=3))
    conn = la_conn(la_server)
    kernel.run(f"%kql {conn}")
    code = "%%kql\nAADNon"
    first = kernel.complete(code)["matches"]  # starts the fetch; Tab does not wait on the network
    matches = first
    for _ in range(100):
        if matches:
            break
        kernel.run("import time; time.sleep(0.1)")
        matches = kernel.complete(code)["matches"]
    assert matches == ["AADNonInteractiveUserSignInLogs"]
    cols = kernel.complete("%%kql\nAADNonInteractiveUserSignInLogs | where IPA")["matches"]
    assert cols == ["IPAddress"]
    for _ in range(3):
        kernel.complete("%%kql\nSigninLogs | where ")
    assert la_server.counts["metadata"] == 1  # one metadata GET for all these completions
    kernel.run("%kql local://")


if sys.platform == "win32":  # pragma: no cover - the kernel tests use POSIX paths
    pytestmark = pytest.mark.skip("POSIX only")
