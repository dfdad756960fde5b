"""Remote connection strings (Kqlmagic-compatible), the registry, and the shared remote plumbing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kqlmagic_plus.connections import auth
from kqlmagic_plus.connections.spec import parse
from kqlmagic_plus.engines.registry import connections
from kqlmagic_plus.errors import ConnectionStringError, OptionError

SECRET = "Zz9-very~secret.value"


# -- parsing ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    f"loganalytics://workspace='w-1';tenant='t-1';clientid='c-1';clientsecret='{SECRET}'",
    f"loganalytics://workspace_id='w-1';Tenant_ID='t-1';client_id='c-1';Client_Secret='{SECRET}'",
    f"loganalytics://workspace('w-1').tenant('t-1').clientid('c-1').clientsecret('{SECRET}')",
    f"la://workspaceId=w-1; tenantId=t-1; appId=c-1; client-secret=\"{SECRET}\"",
])
def test_kqlmagic_spellings_mean_the_same_connection(text):
    spec = parse(text)
    assert spec.scheme == "loganalytics"
    assert (spec.get("workspace"), spec.get("tenant"), spec.get("clientid"), spec.get("clientsecret")) == \
        ("w-1", "t-1", "c-1", SECRET)
    assert SECRET not in repr(spec) + spec.identity()
    assert auth.sign_in_from_spec(spec).method == "clientsecret"


def test_kqlmagic_url_keys_and_flags():
    spec = parse("loganalytics://workspace('w').tenant('t').code().aad_url('https://login.example')"
                 ".data_source_url('https://la.example')")
    assert spec.flags == {"code"}
    assert spec.get("authority") == "https://login.example" and spec.get("endpoint") == "https://la.example"
    assert parse("kusto://cluster='c';database='d';azcli_login").flags == {"azcli"}
    assert parse("adx://cluster='c';database='d';managed_identity;client_id='mi'").flags == {"msi"}


def test_env_values_and_duplicates(monkeypatch):
    monkeypatch.setenv("KQLMP_TEST_SECRET", SECRET)
    spec = parse("loganalytics://workspace='w';tenant='t';clientid='c';clientsecret=$KQLMP_TEST_SECRET")
    assert spec.get("clientsecret") == SECRET and SECRET not in str(spec)
    with pytest.raises(ConnectionStringError, match="given twice"):
        parse("loganalytics://workspace='a';workspace_id='b'")


@pytest.mark.parametrize(("text", "database", "cluster"), [
    ("adx://Samples@help", "Samples", "help"),
    ("kusto://Samples@help.kusto.windows.net;code", "Samples", "help.kusto.windows.net"),
    ("azuredataexplorer://cluster='help';database='Samples'", "Samples", "help"),
])
def test_adx_forms(text, database, cluster):
    spec = parse(text)
    assert (spec.scheme, spec.get("database"), spec.get("cluster")) == ("adx", database, cluster)


def test_remote_engines_refuse_unknown_keys_and_need_their_target():
    from kqlmagic_plus.engines.adx import AdxEngine, cluster_url
    from kqlmagic_plus.engines.loganalytics import LogAnalyticsEngine

    with pytest.raises(OptionError, match="does not take colour"):
        LogAnalyticsEngine.from_spec(parse("loganalytics://workspace='w';colour='blue';code"))
    with pytest.raises(OptionError, match="needs workspace="):
        LogAnalyticsEngine.from_spec(parse("loganalytics://tenant='t';code"))
    with pytest.raises(OptionError, match="needs database="):
        AdxEngine.from_spec(parse("adx://cluster='help';code"))
    assert cluster_url("help", auth.CLOUDS["public"]) == "https://help.kusto.windows.net"
    assert cluster_url("mycluster.westeurope.kusto.windows.net", auth.CLOUDS["public"]) == \
        "https://mycluster.westeurope.kusto.windows.net"
    assert cluster_url("http://127.0.0.1:8080", auth.CLOUDS["public"]) == "http://127.0.0.1:8080"
    eng = AdxEngine.from_spec(parse(f"adx://Samples@help;tenant='t';clientid='c';clientsecret='{SECRET}'"))
    assert eng.target == "adx://https://help.kusto.windows.net/Samples" and SECRET not in repr(eng)


# -- the registry --------------------------------------------------------------------------------------------------


def test_alias_switching_and_listing_through_the_magic(ip, run_cell):
    for alias, ws in (("prod", "w-prod"), ("dev", "w-dev")):
        _, err, _ = run_cell(f"%kql loganalytics://workspace='{ws}';tenant='t';clientid='c';"
                             f"clientsecret='{SECRET}';alias='{alias}'")
        assert err is None, err
    _, err, out = run_cell("%kql --conn prod")
    assert err is None and "Connected: loganalytics://workspace=w-prod" in out
    value, err, _ = run_cell("%kql --conn")
    text = repr(value)
    lines = text.splitlines()
    assert any(ln.startswith("* prod") for ln in lines) and any(ln.startswith("  dev") for ln in lines)
    assert SECRET not in text and "clientsecret='***'" in text
    _, err, out = run_cell("%kql --conn nosuch")
    assert err is not None and "no connection named 'nosuch'" in str(err)


def test_conn_var_reads_a_string_variable_without_evaluating_it():
    ns = {"my_conn": "adx://Samples@help;azcli", "not_a_string": 42}
    _key, engine = connections().resolve("my_conn", namespace=ns)
    assert engine.target == "adx://https://help.kusto.windows.net/Samples"
    with pytest.raises(ConnectionStringError, match="no connection named 'not_a_string'"):
        connections().resolve("not_a_string", namespace=ns)
    with pytest.raises(ConnectionStringError, match="no connection named"):
        connections().resolve("__import__('os')", namespace=ns)


def test_db_at_cluster_borrows_the_sign_in_of_the_open_connection():
    connections().resolve(f"adx://cluster='help';database='Samples';tenant='t';clientid='c';clientsecret='{SECRET}'")
    _, engine = connections().resolve("Other@help")
    assert engine.database == "Other"
    assert engine._sign_in.method == "clientsecret" and engine._sign_in.client_id == "c"
    assert SECRET not in repr(connections().listing())


def test_a_corrected_secret_makes_a_new_engine():
    base = "loganalytics://workspace='w';tenant='t';clientid='c';clientsecret="
    k1, e1 = connections().resolve(base + "'wrong'")
    k2, e2 = connections().resolve(base + f"'{SECRET}'")
    assert e1 is not e2 and k1 != k2
    assert "wrong" not in k1 and SECRET not in k2


# -- +properties -------------------------------------------------------------------------------------------------


def test_plus_properties_are_read_not_evaluated():
    from kqlmagic_plus.engines.remote import split_plus_properties

    props, rest = split_plus_properties("+notruncation +!deferpartialqueryfailures +servertimeout=10m\n"
                                        "+query_take_max_records=5 +request_app_name='my app' +x=__import__('os')\n"
                                        "T | take 1")
    assert props == {"notruncation": True, "deferpartialqueryfailures": False, "servertimeout": "10m",
                     "query_take_max_records": 5, "request_app_name": "my app", "x": "__import__('os')"}
    assert rest.splitlines()[2] == "T | take 1" and rest.count("\n") == 2  # lines keep their numbers
    assert split_plus_properties("T | where x > +1") == ({}, "T | where x > +1")
    with pytest.raises(OptionError, match="takes no value"):
        split_plus_properties("+!notruncation=true T")
    with pytest.raises(OptionError, match="property name"):
        split_plus_properties("+ T")


# -- wire values -> canonical Arrow ------------------------------------------------------------------------------------


def test_service_values_become_canonical_columns():
    from kqlmagic_plus.engines.remote import arrow_table

    t = arrow_table(
        ["t", "span", "r", "b", "d", "g"],
        ["datetime", "timespan", "real", "bool", "dynamic", "guid"],
        [["2024-05-01T10:00:00.1234567Z", "1.02:03:04.5000000", "NaN", 1, {"a": [1]}, "0f8fad5b-d9cb-469f-a165"],
         ["2024-05-01T10:00:01Z", "-00:00:01", 2, 0, "text", None],
         [None, None, "-Infinity", None, None, None]],
        dynamic_as_text=False)
    rows = t.to_pylist()
    assert rows[0]["t"] == datetime(2024, 5, 1, 10, 0, 0, 123457, tzinfo=UTC)  # ticks to the nearest microsecond
    assert rows[0]["span"] == timedelta(days=1, hours=2, minutes=3, seconds=4, microseconds=500000)
    assert rows[1]["span"] == timedelta(seconds=-1)
    assert rows[0]["r"] != rows[0]["r"] and rows[2]["r"] == float("-inf")
    assert [r["b"] for r in rows] == [True, False, None]
    assert rows[0]["d"] == '{"a":[1]}' and rows[1]["d"] == '"text"'
    assert [f.metadata[b"kql_type"] for f in t.schema] == [b"datetime", b"timespan", b"real", b"bool", b"dynamic",
                                                           b"guid"]


def test_retry_after_header_forms():
    from email.utils import format_datetime

    from kqlmagic_plus.engines.remote import parse_retry_after

    assert parse_retry_after("3") == 3.0 and parse_retry_after(None) is None and parse_retry_after("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= parse_retry_after(later) <= 31


def _kusto_timespan(td: timedelta) -> str:
    """Kusto's text for *td*: ``[-][d.]hh:mm:ss[.fffffff]``."""
    sign = "-" if td < timedelta(0) else ""
    us = abs(td) // timedelta(microseconds=1)
    days, rest = divmod(us, 86_400_000_000)
    secs, frac = divmod(rest, 1_000_000)
    h, m, s = secs // 3600, secs // 60 % 60, secs % 60
    text = f"{sign}{f'{days}.' if days else ''}{h:02d}:{m:02d}:{s:02d}"
    return text + (f".{frac:06d}0" if frac else "")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.timedeltas(min_value=timedelta(days=-40000), max_value=timedelta(days=40000))),
                min_size=64, max_size=300))
def test_timespan_columns_parse_like_single_values(spans):
    """The column-wise parser (64+ values) gives exactly what the per-value parser gives."""
    import pyarrow as pa

    from kqlmagic_plus.engines.remote import _timespan_us, arrow_table

    texts = [None if s is None else _kusto_timespan(s) for s in spans]
    got = arrow_table(["span"], ["timespan"], [[t] for t in texts], dynamic_as_text=True).column(0).to_pylist()
    assert got == spans
    expected = pa.array([None if t is None else _timespan_us(t) for t in texts], pa.int64()).cast(pa.duration("us"))
    assert got == expected.to_pylist()


def test_timespan_column_with_another_spelling_falls_back_per_value():
    from kqlmagic_plus.engines.remote import arrow_table

    texts = ["00:00:01"] * 70 + ["1 day, 2:03:04", "00:00:00.0000001"]
    got = arrow_table(["span"], ["timespan"], [[t] for t in texts], dynamic_as_text=True).column(0).to_pylist()
    assert got[0] == timedelta(seconds=1) and got[70] == timedelta(days=1, hours=2, minutes=3, seconds=4)
    assert got[71] == timedelta(0)  # 100 ns is below the canonical microsecond


def test_values_needing_conversion_do_not_change_the_others():
    """Text numbers, text NaN and a JSON scalar in one row are converted; every other value is kept as is."""
    from kqlmagic_plus.engines import remote

    names = ["t", "n", "r", "b", "s", "d"]
    types = ["datetime", "long", "real", "bool", "string", "dynamic"]
    when = datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
    rows = [[when + timedelta(seconds=i), i, i / 3, i % 2 == 0, f"u{i}", '{"k":1}'] for i in range(50)]
    rows += [[None, None, None, None, None, None], [when, 2**62, float("-inf"), True, "", "[]"]]
    small = remote.arrow_table(names, types, rows, dynamic_as_text=True)
    odd = remote.arrow_table(names, types, [*rows, [when, "7", "NaN", "true", 5, '""']], dynamic_as_text=True)
    assert odd.slice(0, len(rows)).equals(small) and odd.to_pylist()[-1]["n"] == 7
