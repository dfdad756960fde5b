"""``externaldata`` (#17): threat-intel and allowlist files over http(s), read on the local engine and on Spark.

A real loopback HTTP(S) server serves the files. Expected rows follow the KQL reference: the declared schema,
values cast to its types (a value that does not parse is null, a string never is: ""), ``ignoreFirstRecord``
dropping each file's first record, the format from ``format`` or the file's extension.
"""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from servers.tls import LoopbackServer, OwnedHandler, TlsLoopbackServer, free_port, make_tls

TI_CSV = (
    "IPAddress,Port,FirstSeen,Score,Active,Tags,Id\n"
    '203.0.113.5,443,2024-05-01T10:00:00Z,0.5,true,"[""c2"",""tor""]",F8E2A1B0-1C2D-4E5F-8A9B-0C1D2E3F4A5B\n'
    "198.51.100.7,not-a-port,2024-02-30,high,maybe,,\n"
    '"192.0.2.1, quoted",8080,05/02/2024 11:30,1e2,False,"{""a"":1}",bad-guid\n'
)
TI_SCHEMA = ("IPAddress:string, Port:int, FirstSeen:datetime, Score:real, Active:bool, Tags:dynamic, Id:guid")
TI_ROWS = [
    ("203.0.113.5", 443, datetime(2024, 5, 1, 10, 0, tzinfo=UTC), 0.5, True, ["c2", "tor"],
     "f8e2a1b0-1c2d-4e5f-8a9b-0c1d2e3f4a5b"),
    ("198.51.100.7", None, None, None, None, None, None),
    ("192.0.2.1, quoted", 8080, datetime(2024, 5, 2, 11, 30, tzinfo=UTC), 100.0, False, {"a": 1}, None),
]
SERVICE_TAGS = """{
  "changeNumber": 5,
  "cloud": "Public",
  "values": [
    {"name": "AzureVirtualDesktop", "properties": {"addressPrefixes": ["10.1.0.0/16", "10.2.0.0/16"]}},
    {"name": "Storage", "properties": {"addressPrefixes": ["10.9.0.0/16"]}}
  ]
}
"""


def _parquet() -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.table({"ip": ["10.0.0.1", None], "port": [22, 3389],
                             "seen": pa.array([datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), None],
                                              pa.timestamp("us", tz="UTC"))}), buf)
    return buf.getvalue()


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("top-1m.csv", "1,google.com\n2,example.org\n")
        z.writestr("README.md", "not data\n")
    return buf.getvalue()


FILES: dict[str, tuple[bytes, dict[str, str]]] = {
    "/feeds/ti.csv": (TI_CSV.encode(), {}),
    "/feeds/ti.csv.gz": (gzip.compress(TI_CSV.encode()), {}),
    "/feeds/encoded.csv": (gzip.compress(TI_CSV.encode()), {"Content-Encoding": "gzip"}),
    "/feeds/part1.csv": (b"ip,n\n10.0.0.1,1\n", {}),
    "/feeds/part2.csv": (b"ip,n\n10.0.0.2,2\n10.0.0.3,3\n", {}),
    "/feeds/ti.tsv": (b"10.0.0.1\t22\n10.0.0.2\tx\n", {}),
    "/feeds/ti.psv": (b"10.0.0.1|22\n", {}),
    "/feeds/ti.scsv": (b"10.0.0.1;22\n", {}),
    "/lists/allow.txt": ("alice\n\nbob\r\ncarol,dave\u2028 and erin\n".encode(), {}),
    "/feeds/events.json": (b'{"ip": "1.2.3.4", "n": 3, "meta": {"k": "v"}}\n{"ip": "5.6.7.8", "n": "7"}\n', {}),
    "/feeds/array.json": (b'[{"a": 1}, {"a": 2.0}, {"a": "x"}]', {}),
    "/feeds/tags.json": (SERVICE_TAGS.encode(), {}),
    "/feeds/nested.json": (b'{"timestamp": "2019-01-01 10:00:00.238521", "data": {"tenant": '
                           b'"e1ef54a6-c6f2-4389-836e-d289b37bcfe0", "method": "RefreshTableMetadata"}}\n', {}),
    "/feeds/hosts.parquet": (_parquet(), {}),
    "/feeds/top-1m.csv.zip": (_zip(), {}),
    "/feeds/big.csv": (b"x\n" * 5000, {}),
    "/feeds/nums.csv": (b"1.25,01:30:00,9223372036854775807\nx,1.02:00:00,9223372036854775808\n", {}),
}


class FileHandler(OwnedHandler):
    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        self.owner.hits.append(path)
        got = FILES.get(path)
        if got is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body, headers = got
        self.send_response(200)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class FileServer(LoopbackServer):
    handler = FileHandler
    thread_name = "externaldata-files"

    def __init__(self) -> None:
        self.hits: list[str] = []


class TlsFileServer(TlsLoopbackServer, FileServer):
    def __init__(self, tls) -> None:
        FileServer.__init__(self)
        self.tls = tls


@pytest.fixture(scope="module")
def server():
    s = FileServer().start()
    yield s
    s.stop()


def _kql(query: str):
    import kqlmagic_plus as kp

    return kp.kql(query, "local://", namespace={}, no_cache=True)


def _rows(result) -> list[tuple]:
    """The rows as Python values, dynamic cells parsed (engines may space JSON differently)."""
    out = []
    for row in result.table.to_pylist():
        out.append(tuple(json.loads(v) if t == "dynamic" and v is not None else v
                         for v, t in zip(row.values(), result.kql_types, strict=True)))
    return out


def _ti(url: str, props: str = 'with (format="csv", ignoreFirstRecord=true)') -> str:
    return f'externaldata({TI_SCHEMA}) [@"{url}"] {props}'


# -- the local engine ------------------------------------------------------------------------------


def test_csv_values_cast_to_the_declared_types(server):
    r = _kql(_ti(server.url + "/feeds/ti.csv"))
    assert r.kql_types == ["string", "int", "datetime", "real", "bool", "dynamic", "guid"]
    assert _rows(r) == TI_ROWS
    # each column with values that did not parse is named (31 February is no date)
    assert any("'Port'" in w and "1 value" in w for w in r.warnings)
    assert any("'FirstSeen'" in w for w in r.warnings)


@pytest.mark.parametrize("path", ["/feeds/ti.csv.gz", "/feeds/encoded.csv"])
def test_gzip_file_and_content_encoding(server, path):
    assert _rows(_kql(_ti(server.url + path))) == TI_ROWS


def test_several_urls_each_skip_their_first_record(server):
    q = (f'externaldata(ip:string, n:long) [@"{server.url}/feeds/part1.csv", @"{server.url}/feeds/part2.csv"] '
         'with (format="csv", ignoreFirstRecord=true) | order by n asc')
    assert _rows(_kql(q)) == [("10.0.0.1", 1), ("10.0.0.2", 2), ("10.0.0.3", 3)]


def test_format_from_the_extension_and_other_delimiters(server):
    tsv = _kql(f'externaldata(ip:string, port:int) [@"{server.url}/feeds/ti.tsv"]')
    assert _rows(tsv) == [("10.0.0.1", 22), ("10.0.0.2", None)]
    for ext in ("psv", "scsv"):
        r = _kql(f'externaldata(ip:string, port:int) [@"{server.url}/feeds/ti.{ext}"] with (format="{ext}")')
        assert _rows(r) == [("10.0.0.1", 22)]
    # a .txt file is one field a line (the reference's own example); empty lines are no records
    txt = _kql(f'externaldata(UserID:string) [@"{server.url}/lists/allow.txt"]')
    assert _rows(txt) == [("alice",), ("bob",), ("carol,dave\u2028 and erin",)]


NUMS = "externaldata(d:decimal, t:timespan, l:long) [@'{}/feeds/nums.csv'] | order by t asc"
NUMS_ROWS = [(Decimal("1.25"), timedelta(hours=1, minutes=30), 2**63 - 1), (None, timedelta(days=1, hours=2), None)]


def _nums(result) -> list[tuple]:
    return [(None if d is None else Decimal(d), t, n) for d, t, n in _rows(result)]


def test_decimal_timespan_and_long_bounds(server):
    assert _nums(_kql(NUMS.format(server.url))) == NUMS_ROWS  # 2**63 is past long: null


def test_users_in_an_allowlist(server):
    """The reference's example: rows whose UserID is in a list held one per line in a text file."""
    q = (f'datatable(UserID:string, n:long)["alice", 1, "mallory", 2, "bob", 3] '
         f'| where UserID in ((externaldata(UserID:string) [@"{server.url}/lists/allow.txt"])) | order by n asc')
    assert _rows(_kql(q)) == [("alice", 1), ("bob", 3)]


def test_join_a_table_with_threat_intel(server):
    """The Sentinel idiom: sign-ins joined with a threat-intel CSV on the IP address."""
    import pandas as pd

    import kqlmagic_plus as kp

    signins = pd.DataFrame({"UserPrincipalName": ["a@x", "b@x", "c@x"],
                            "IPAddress": ["203.0.113.5", "10.10.10.10", "192.0.2.1, quoted"]})
    q = (f"let TI = {_ti(server.url + '/feeds/ti.csv')};\n"
         "SigninLogs | join kind=inner (TI | project IPAddress, Port) on IPAddress "
         "| project UserPrincipalName, IPAddress, Port | order by UserPrincipalName asc")
    r = kp.kql(q, "local://", namespace={"SigninLogs": signins}, no_cache=True)
    assert _rows(r) == [("a@x", "203.0.113.5", 443), ("c@x", "192.0.2.1, quoted", 8080)]


def test_json_lines_map_properties_by_column_name(server):
    r = _kql(f'externaldata(ip:string, n:long, meta:dynamic, absent:string) [@"{server.url}/feeds/events.json"] '
             'with (format="json")')
    assert _rows(r) == [("1.2.3.4", 3, {"k": "v"}, ""), ("5.6.7.8", 7, None, "")]


def test_multijson_array_and_a_pretty_printed_object(server):
    arr = _kql(f'externaldata(a:long) [@"{server.url}/feeds/array.json"] with (format="multijson")')
    assert _rows(arr) == [(1,), (2,), (None,)]
    # Azure's service tags file, as 2 Sentinel rules read it
    q = (f'externaldata(changeNumber:string, cloud:string, values:dynamic) [@"{server.url}/feeds/tags.json"] '
         "with(format='multijson') | mv-expand values | where values contains \"VirtualDesktop\" "
         "| mv-expand p = values.properties.addressPrefixes | project prefix = tostring(p), changeNumber, cloud")
    assert _rows(_kql(q)) == [("10.1.0.0/16", "5", "Public"), ("10.2.0.0/16", "5", "Public")]


def test_ingestion_mapping_paths(server):
    """The reference's mapping example: nested JSON fields to columns."""
    mapping = ('[{"Column":"Timestamp","Properties":{"Path":"$.timestamp"}},'
               '{"Column":"TenantId","Properties":{"Path":"$.data.tenant"}},'
               '{"Column":"MethodName","Properties":{"Path":"$.data.method"}}]')
    q = (f"externaldata(Timestamp: datetime, TenantId: guid, MethodName: string) "
         f"[h@'{server.url}/feeds/nested.json'] with(format='multijson', ingestionMapping='{mapping}')")
    assert _rows(_kql(q)) == [(datetime(2019, 1, 1, 10, 0, 0, 238521, tzinfo=UTC),
                               "e1ef54a6-c6f2-4389-836e-d289b37bcfe0", "RefreshTableMetadata")]


def test_csv_mapping_by_ordinal_and_constant(server):
    mapping = ('[{"Column":"port","Properties":{"Ordinal":"1"}},{"Column":"ip","Properties":{"Ordinal":"0"}},'
               '{"Column":"feed","Properties":{"ConstValue":"part2"}}]')
    q = (f"externaldata(port:long, ip:string, feed:string, unmapped:long) [@'{server.url}/feeds/part2.csv'] "
         f"with (format='csv', ignoreFirstRecord=true, ingestionMapping='{mapping}')")
    assert _rows(_kql(q)) == [(2, "10.0.0.2", "part2", None), (3, "10.0.0.3", "part2", None)]


def test_parquet_columns_by_name(server):
    r = _kql(f'externaldata(ip:string, port:int, seen:datetime, other:long) [@"{server.url}/feeds/hosts.parquet"] '
             'with (format="parquet")')
    assert _rows(r) == [("10.0.0.1", 22, datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), None), ("", 3389, None, None)]


def test_zip_archive_members_chosen_by_zippattern(server):
    q = (f'externaldata(Position:int, Domain:string) [@"{server.url}/feeds/top-1m.csv.zip"] '
         'with (format="csv", zipPattern="*.csv")')
    assert _rows(_kql(q)) == [(1, "google.com"), (2, "example.org")]


def test_https_with_a_trusted_certificate(tmp_path, monkeypatch):
    tls = make_tls(str(tmp_path))
    monkeypatch.setenv("SSL_CERT_FILE", tls.ca_path)
    s = TlsFileServer(tls).start()
    try:
        assert s.url.startswith("https://")
        assert _rows(_kql(_ti(s.url + "/feeds/ti.csv"))) == TI_ROWS
    finally:
        s.stop()


def test_compiling_fetches_nothing(server):
    """The compiler records the sources; the engine fetches them when the query runs (not for a dry run)."""
    import kqlmagic_plus as kp
    from kqlmagic_plus.language.compiler import compile as kcompile

    url = server.url + "/feeds/ti.csv"
    before = len(server.hits)
    c = kcompile(f"let unused = externaldata(x:string) [@'{server.url}/never'];\n" + _ti(url) + " | count",
                 {}, "spark")
    assert [s.urls for s in c.external] == [(url,)]  # the let never used is not fetched either
    assert c.external[0].columns[1] == ("Port", "int")
    dry = kp.kql(_ti(url + "?sig=S3CRET"), "local://", namespace={}, dry_run=True)
    assert len(server.hits) == before
    assert dry.stats["externaldata"] == [url + "?sig=***"]  # what would be fetched, its SAS hidden


# -- errors: one line, no secret -------------------------------------------------------------------


def _error(query: str) -> str:
    from kqlmagic_plus.errors import KqlMagicPlusError

    with pytest.raises(KqlMagicPlusError) as got:
        _kql(query)
    return str(got.value)


def test_http_404_names_the_url_without_its_sas(server):
    msg = _error(f'externaldata(x:string) [@"{server.url}/feeds/gone.csv?sv=2024&sig=S3CRETsig%3D"]')
    assert "\n" not in msg
    assert "HTTP 404" in msg and "/feeds/gone.csv" in msg
    assert "S3CRET" not in msg and "2024" not in msg


def test_unreachable_host_is_one_line(server):
    msg = _error(f'externaldata(x:string) [@"http://127.0.0.1:{free_port()}/x.csv?token=abcdef123456"]')
    assert "\n" not in msg and "could not read http://127.0.0.1:" in msg and "abcdef123456" not in msg


def test_over_the_size_cap(server):
    from kqlmagic_plus.config import settings

    cfg = settings()
    old = cfg.externaldata_max_bytes
    cfg.externaldata_max_bytes = 1000
    try:
        msg = _error(f'externaldata(x:string) [@"{server.url}/feeds/big.csv"]')
    finally:
        cfg.externaldata_max_bytes = old
    assert "\n" not in msg and "size cap" in msg and "externaldata_max_bytes" in msg


def test_unknown_format_property_and_scheme_refused_by_name():
    first = _error('externaldata(x:string) ["https://example.invalid/a"] with (format="xml")').splitlines()[0]
    assert "externaldata format 'xml'" in first and "not an ingestion data format" in first
    first = _error('externaldata(x:string) ["https://example.invalid/a"] with (ingestionMapping="[")').splitlines()[0]
    assert "ingestionMapping is not JSON" in first
    first = _error('externaldata(x:string) ["https://example.invalid/a"] with (format="avro")').splitlines()[0]
    assert "externaldata format 'avro'" in first
    first = _error('externaldata(x:string) ["https://example.invalid/a"] with (compressed=true)').splitlines()[0]
    assert "externaldata property 'compressed'" in first
    first = _error('externaldata(x:string) ["/etc/passwd"]').splitlines()[0]
    assert "externaldata from a local file path" in first
    first = _error('externaldata(x:string) ["abfss://c@a.dfs.core.windows.net/x.csv"]').splitlines()[0]
    assert "externaldata from abfss://" in first


# -- Spark -----------------------------------------------------------------------------------------


def _spark(query: str):
    from kqlmagic_plus.sparkhunt import sparkhunt

    return sparkhunt(query, progress="none", say=lambda *a, **k: None, no_cache=True)


@pytest.mark.spark
@pytest.mark.slow
def test_spark_reads_the_same_rows(spark_local, server):
    r = _spark(_ti(server.url + "/feeds/ti.csv.gz"))
    assert r.stats["externaldata"] == [server.url + "/feeds/ti.csv.gz"]
    assert r.kql_types == ["string", "int", "datetime", "real", "bool", "dynamic", "guid"]
    assert sorted(_rows(r), key=lambda t: t[0]) == sorted(TI_ROWS, key=lambda t: t[0])
    q = (f"datatable(UserPrincipalName:string, IPAddress:string)['a@x', '203.0.113.5', 'b@x', '10.10.10.10']\n"
         f"| join kind=inner ({_ti(server.url + '/feeds/ti.csv')} | project IPAddress, Port) on IPAddress "
         "| project UserPrincipalName, Port")
    assert _rows(_spark(q)) == [("a@x", 443)]
    tags = (f'externaldata(changeNumber:string, cloud:string, values:dynamic) [@"{server.url}/feeds/tags.json"] '
            "with(format='multijson') | mv-expand values | project name = tostring(values.name) | order by name asc")
    assert _rows(_spark(tags)) == [("AzureVirtualDesktop",), ("Storage",)]
    assert _nums(_spark(NUMS.format(server.url))) == NUMS_ROWS
    # the tables the rows were read into are gone once the query has its rows
    assert not [t.name for t in spark_local.catalog.listTables() if t.name.startswith("__kqlc_ext_")]


@pytest.mark.spark
@pytest.mark.slow
def test_spark_connect_sends_the_rows_from_the_client(spark_connect, server):
    """A Spark Connect client has no driver here: the rows go to the server as Arrow, no file path."""
    from types import SimpleNamespace

    from kqlmagic_plus.engines.externaldata import register_spark
    from kqlmagic_plus.language.compiler import compile as kcompile
    from kqlmagic_plus.language.compiler.execute import run_spark

    c = kcompile(_ti(server.url + "/feeds/ti.csv") + " | order by IPAddress asc", {}, "spark")
    assert register_spark(spark_connect, c.external)  # the columns with values that did not parse
    got = SimpleNamespace(table=run_spark(spark_connect, c), kql_types=[t for _, t in c.columns])
    assert _rows(got) == sorted(TI_ROWS, key=lambda t: t[0])
