"""``evaluate ipv4_lookup``, which Sentinel detections use to tag addresses with a network list: the rows the
KQL reference describes (a join on the lookup key's CIDR range; extra keys matched as by ``lookup``, kept once;
``return_unmatched`` keeps the rest with null lookup columns), on DuckDB and on Spark, with data of our own;
and ``arraylength()``, the deprecated name of ``array_length()``.
"""

from __future__ import annotations

import duckdb
import pytest

from kqlmagic_plus.errors import QueryError, UnsupportedQueryError
from kqlmagic_plus.language.compiler import compile as kcompile
from kqlmagic_plus.language.compiler.execute import run_duckdb, run_spark

NETS = ('let Nets = datatable(net:string, site:string, zone:string)["10.1.0.0/16","lab","red", '
        '"10.1.2.0/24","bench","blue", "192.0.2.7","probe","red", "198.51.100.0/22","dmz","blue"];')
HOSTS = 'let Hosts = datatable(addr:string, zone:string)["10.1.2.3","blue", "10.1.9.9","red", "192.0.2.7","blue", ' \
        '"203.0.113.5","red", "198.51.103.255","blue"];'

#: (query, expected column names, expected rows in order): every query orders its rows.
CASES = [
    # 10.1.2.3 lies in both 10.1.0.0/16 and 10.1.2.0/24: one row for each; 203.0.113.5 in none: dropped
    (f"{NETS}{HOSTS} Hosts | evaluate ipv4_lookup(Nets, addr, net) | order by addr asc, net asc",
     ["addr", "zone", "net", "site", "zone1"],
     [("10.1.2.3", "blue", "10.1.0.0/16", "lab", "red"), ("10.1.2.3", "blue", "10.1.2.0/24", "bench", "blue"),
      ("10.1.9.9", "red", "10.1.0.0/16", "lab", "red"), ("192.0.2.7", "blue", "192.0.2.7", "probe", "red"),
      ("198.51.103.255", "blue", "198.51.100.0/22", "dmz", "blue")]),
    # an extra key must match as well; it appears once
    (f"{NETS}{HOSTS} Hosts | evaluate ipv4_lookup(Nets, addr, net, zone) | order by addr asc",
     ["addr", "zone", "net", "site"],
     [("10.1.2.3", "blue", "10.1.2.0/24", "bench"), ("10.1.9.9", "red", "10.1.0.0/16", "lab"),
      ("198.51.103.255", "blue", "198.51.100.0/22", "dmz")]),
    # return_unmatched keeps the unmatched source rows, lookup columns empty (named and by position; they are
    # strings here, and a KQL string is never null)
    (f"{NETS}{HOSTS} Hosts | where addr !startswith '10.' | evaluate ipv4_lookup(Nets, addr, net, "
     "return_unmatched = true) | order by addr asc",
     ["addr", "zone", "net", "site", "zone1"],
     [("192.0.2.7", "blue", "192.0.2.7", "probe", "red"), ("198.51.103.255", "blue", "198.51.100.0/22", "dmz", "blue"),
      ("203.0.113.5", "red", "", "", "")]),
    (f"{NETS}{HOSTS} let NoNets = Nets | where site == 'nowhere'; "
     "Hosts | evaluate ipv4_lookup(NoNets, addr, net, true) | summarize n=count(), matched=countif(isnotempty(net))",
     ["n", "matched"], [(5, 0)]),
    # `arraylength()`, the deprecated name Sentinel hunting queries still use, is array_length()
    ("print n=arraylength(dynamic([1, 2, 3])), m=arraylength(dynamic([]))", ["n", "m"], [(3, 0)]),
]


def _result(table) -> tuple[list[str], list[tuple]]:
    cols = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return list(table.column_names), list(zip(*cols, strict=True))


@pytest.mark.parametrize(("query", "names", "want"), CASES)
def test_duckdb(query: str, names: list[str], want: list[tuple]) -> None:
    con = duckdb.connect()
    assert _result(run_duckdb(con, kcompile(query, {}, "duckdb"))) == (names, want)


@pytest.mark.spark
def test_spark(spark_local) -> None:
    got = {q: _result(run_spark(spark_local, kcompile(q, {}, "spark"))) for q, _, _ in CASES}
    assert got == {q: (n, w) for q, n, w in CASES}


@pytest.mark.parametrize("dialect", ["duckdb", "spark"])
def test_ipv4_lookup_says_what_is_wrong(dialect: str) -> None:
    with pytest.raises(QueryError, match="the lookup table has no column network"):
        kcompile(f"{NETS}{HOSTS} Hosts | evaluate ipv4_lookup(Nets, addr, network)", {}, dialect)
    with pytest.raises(QueryError, match="the source table has no column ip"):
        kcompile(f"{NETS}{HOSTS} Hosts | evaluate ipv4_lookup(Nets, ip, net)", {}, dialect)
    with pytest.raises(UnsupportedQueryError, match="both extra keys and return_unmatched"):
        kcompile(f"{NETS}{HOSTS} Hosts | evaluate ipv4_lookup(Nets, addr, net, zone, return_unmatched=true)",
                 {}, dialect)

