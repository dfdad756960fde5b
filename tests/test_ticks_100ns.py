"""The local engine keeps Kusto's 100 ns ticks (#17 item 5): a 7th fraction digit written in a datetime literal,
made by make_datetime or by endof* reaches datetime_part, datetime_diff, tostring and the result DataFrame
(datetime64[ns]); where a nanosecond timestamp cannot hold the value (outside 1678-2261) the digit is cut, as
on Spark, or the query says so, never a wrapped or rounded-up value. Expected values are worked out by hand
from the ticks."""

from __future__ import annotations

import pandas as pd
import pytest

import kqlmagic_plus as kp
from kqlmagic_plus.errors import KqlMagicPlusError


def run(query: str):
    return kp.kql(query, "local://", namespace={}, no_cache=True)


def ns(text: str) -> int:
    """Nanoseconds since the epoch of a UTC timestamp text (pandas parses 9 digits exactly)."""
    return pd.Timestamp(text, tz="UTC").value


def test_a_seventh_digit_of_a_literal_reaches_the_dataframe():
    df = run("print d = datetime(2020-01-01 12:00:00.1234567), p = datetime(2020-01-01 12:00:00.123456)").df
    assert str(df["d"].dtype) == "datetime64[ns, UTC]"
    assert df["d"][0].value == ns("2020-01-01 12:00:00.123456700")
    # A column with whole microseconds keeps the usual microsecond dtype.
    assert str(df["p"].dtype) == "datetime64[us, UTC]"
    assert df["p"][0] == pd.Timestamp("2020-01-01 12:00:00.123456", tz="UTC")


def test_tostring_prints_seven_digits_of_the_ticks():
    r = run("let d = datetime(2020-01-01 12:00:00.1234567); print s = tostring(d), z = tostring(datetime(2020-01-01)),"
            " b = tostring(dynamic({\"t\": datetime(2017-10-30 01:02:03.7654321)}))")
    assert r.table.to_pylist() == [{"s": "2020-01-01T12:00:00.1234567Z", "z": "2020-01-01T00:00:00.0000000Z",
                                    "b": '{"t":"2017-10-30T01:02:03.7654321Z"}'}]


def test_datetime_part_below_the_second():
    r = run('let dt = datetime(2017-10-30 01:02:03.7654321); print ns = datetime_part("nanosecond", dt), '
            'us = datetime_part("microsecond", dt), ms = datetime_part("millisecond", dt), '
            's = datetime_part("second", dt)')
    assert r.table.to_pylist() == [{"ns": 765432100, "us": 765432, "ms": 765, "s": 3}]


def test_datetime_part_before_1970_is_never_negative():
    # One microsecond before the epoch is the 999999th microsecond of 23:59:59 (was -1: a truncating modulo).
    r = run('let dt = datetime(1969-12-31 23:59:59.9999991); print us = datetime_part("microsecond", dt), '
            'ns = datetime_part("nanosecond", dt), ms = datetime_part("millisecond", dt)')
    assert r.table.to_pylist() == [{"us": 999999, "ns": 999999100, "ms": 999}]


def test_endof_functions_end_one_tick_before_the_next_period():
    df = run("print d = endofday(datetime(2017-01-01 10:10:17)), w = endofweek(datetime(2017-01-01 10:10:17)), "
             "m = endofmonth(datetime(2017-01-01 10:10:17), 1), y = endofyear(datetime(2017-01-01 10:10:17), -1)").df
    assert [df[c][0].value for c in "dwmy"] == [
        ns("2017-01-01 23:59:59.9999999"), ns("2017-01-07 23:59:59.9999999"),
        ns("2017-02-28 23:59:59.9999999"), ns("2016-12-31 23:59:59.9999999")]
    # The next period's start is one tick later: not the same instant, not a microsecond apart.
    r = run("print t = datetime_diff('nanosecond', startofday(datetime(2017-01-02)), endofday(datetime(2017-01-01)))")
    assert r.table.to_pylist() == [{"t": 100}]


def test_make_datetime_keeps_the_ticks_of_its_seconds():
    df = run("print a = make_datetime(2017, 10, 1, 12, 11, 0.1234567), b = make_datetime(2020, 2, 3, 4, 5, 6.7654329)"
             ", c = make_datetime(2024, 3, 1, 10, 30, 15.5)").df
    assert df["a"][0].value == ns("2017-10-01 12:11:00.1234567")
    assert df["b"][0].value == ns("2020-02-03 04:05:06.7654329")
    assert df["c"][0].value == ns("2024-03-01 10:30:15.5")
    # Seconds without ticks below the microsecond stay a microsecond timestamp, which holds every year.
    r = run("print a = make_datetime(2500, 1, 1), b = make_datetime(1, 2, 3, 4, 5, 6.5)")
    assert r.df["a"][0] == pd.Timestamp("2500-01-01", tz="UTC")
    assert r.table.to_pylist()[0]["b"].isoformat() == "0001-02-03T04:05:06.500000+00:00"


def test_datetime_diff_in_nanoseconds_counts_the_ticks():
    r = run("print n = datetime_diff('nanosecond', datetime(2017-10-30 23:00:00.0000000), "
            "datetime(2017-10-30 23:00:00.0000007)), u = datetime_diff('microsecond', "
            "datetime(2017-10-30 23:00:00.1009001), datetime(2017-10-30 23:00:00.1008009)), "
            "m = datetime_diff('nanosecond', datetime(2020-01-01 00:00:01), datetime(2020-01-01 00:00:00.000250))")
    assert r.table.to_pylist() == [{"n": -700, "u": 100, "m": 999750000}]


def test_a_literal_outside_the_nanosecond_years_is_cut_to_the_microsecond_not_refused():
    df = run("print d = datetime(2300-01-01 00:00:00.1234567)").df
    assert df["d"][0] == pd.Timestamp("2300-01-01 00:00:00.123456", tz="UTC")
    # A datatable column mixing such a year with ticks holds them all as microseconds (one column type).
    r = run("datatable(d:datetime)[datetime(2020-01-01 00:00:00.1234567), datetime(0001-01-01), datetime(null)]")
    got = r.df["d"].tolist()
    assert got[0] == pd.Timestamp("2020-01-01 00:00:00.123456", tz="UTC")
    assert got[1].year == 1 and pd.isna(got[2])


def test_endofday_outside_the_nanosecond_years_says_so():
    with pytest.raises(KqlMagicPlusError) as info:
        run("print d = endofday(datetime(9999-12-30))")
    assert "1678-2261" in str(info.value) and "Traceback" not in str(info.value)
    assert run("print d = endofday(datetime(null))").table.to_pylist() == [{"d": None}]


def test_ticks_survive_filters_and_comparisons():
    r = run("range k from 0 to 2 step 1 | extend d = datetime(2020-01-01 00:00:00.1234567) "
            "| where d > datetime(2020-01-01 00:00:00.123456) | summarize c = count(), m = max(d)")
    row = r.df.iloc[0]
    assert int(row["c"]) == 3 and row["m"].value == ns("2020-01-01 00:00:00.1234567")


def test_datetime_plus_timespan_keeps_the_ticks():
    df = run("print a = datetime(2020-01-01 12:00:00.1234567) + 1h, b = 1d + datetime(2020-01-01 12:00:00.1234567), "
             "c = datetime(2020-01-01 12:00:00.1234567) - 1ms, d = datetime(2020-01-01) + 90m").df
    assert df["a"][0].value == ns("2020-01-01 13:00:00.1234567")
    assert df["b"][0].value == ns("2020-01-02 12:00:00.1234567")
    assert df["c"][0].value == ns("2020-01-01 12:00:00.1224567")
    assert df["d"][0] == pd.Timestamp("2020-01-01 01:30", tz="UTC")
    # On a column too, and back again.
    df = run("range k from 0 to 2 step 1 | extend d = datetime(2020-01-01 00:00:00.1234567) + k * 1s "
             "| extend e = d - 1s | project d, e").df
    assert [v.value for v in df["d"]] == [ns(f"2020-01-01 00:00:0{k}.1234567") for k in range(3)]
    assert df["e"][0].value == ns("2019-12-31 23:59:59.1234567")
    # Through summarize as well.
    df = run("range k from 0 to 1 step 1 | extend d = endofday(datetime(2020-01-01)) | summarize m = max(d) "
             "| extend n = m + 1s").df
    assert df["n"][0].value == ns("2020-01-02 00:00:00.9999999")


def test_range_of_datetimes_counts_in_ticks():
    # 00:00:01.1234567 is past a to of 00:00:01.1234561: one row, not the two a count in microseconds gives.
    df = run("range d from datetime(2020-01-01 00:00:00.1234567) to datetime(2020-01-01 00:00:01.1234561) step 1s").df
    assert [v.value for v in df["d"]] == [ns("2020-01-01 00:00:00.1234567")]
    df = run("range d from datetime(2020-01-01 00:00:00.1234567) to datetime(2020-01-01 00:00:02) step 1s").df
    assert [v.value for v in df["d"]] == [ns("2020-01-01 00:00:00.1234567"), ns("2020-01-01 00:00:01.1234567")]
    df = run("range d from datetime(2020-01-03) to datetime(2020-01-01) step -1d").df
    assert df["d"].tolist() == [pd.Timestamp(f"2020-01-0{k}", tz="UTC") for k in (3, 2, 1)]


def test_format_datetime_seven_fraction_digits():
    r = run('let d = datetime(2020-01-01 12:00:00.1234567); '
            'print a = format_datetime(d, "yyyy-MM-dd HH:mm:ss.fffffff"), b = format_datetime(d, "fffffff"), '
            'c = format_datetime(d, "HH:mm:ss.fff"), '
            'e = format_datetime(datetime(2020-01-01 12:00:00.5), "ss.fffffff")')
    assert r.table.to_pylist() == [{"a": "2020-01-01 12:00:00.1234567", "b": "1234567", "c": "12:00:00.123",
                                    "e": "00.5000000"}]


@pytest.mark.spark
@pytest.mark.slow
def test_spark_cuts_the_ticks_to_the_microsecond(spark_local):
    # Spark's TIMESTAMP holds microseconds: the same query gives the value cut (never rounded up), the named
    # limit docs/support-matrix.md states, where the local engine gives the ticks.
    from kqlmagic_plus.sparkhunt import sparkhunt

    q = ('let d = datetime(2017-10-30 01:02:03.7654321); print e = endofday(d), m = make_datetime(2017, 10, 1, 12, 11, '
         '0.1234567), ns = datetime_part("nanosecond", d), s = tostring(d), f = format_datetime(d, "ss.fffffff"), '
         "n = datetime_diff('nanosecond', datetime(2017-10-30 23:00:00.0000000), "
         "datetime(2017-10-30 23:00:00.0000007))")
    row = sparkhunt(q, progress="none", say=lambda *a, **k: None, no_cache=True).df.iloc[0]
    assert row["e"] == pd.Timestamp("2017-10-30 23:59:59.999999", tz="UTC")
    assert row["m"] == pd.Timestamp("2017-10-01 12:11:00.123456", tz="UTC")
    assert (int(row["ns"]), row["s"], row["f"], int(row["n"])) == (765432000, "2017-10-30T01:02:03.7654320Z",
                                                                  "03.7654320", 0)
    local = run(q).df.iloc[0]
    assert local["e"].value == ns("2017-10-30 23:59:59.9999999")
    assert (int(local["ns"]), local["s"], local["f"], int(local["n"])) == (765432100, "2017-10-30T01:02:03.7654321Z",
                                                                          "03.7654321", -700)


def test_a_result_with_ticks_is_served_from_the_cache_with_them(cache_dir):
    q = "print d = datetime(2020-01-01 12:00:00.1234567), e = endofday(datetime(2020-01-01))"
    fresh = kp.kql(q, "local://", namespace={}, cache="1h")
    hit = kp.kql(q, "local://", namespace={}, cache="1h")
    assert not fresh.from_cache and hit.from_cache
    assert [hit.df[c][0].value for c in "de"] == [ns("2020-01-01 12:00:00.1234567"), ns("2020-01-01 23:59:59.9999999")]


def test_ticks_compare_and_convert():
    r = run("let a = datetime(2020-01-01 00:00:00.1234567); let b = datetime(2020-01-01 00:00:00.1234562); "
            "print gt = a > b, eq = a == b, t = tolong(a), old = tolong(datetime(1960-01-01 00:00:00.9999999))")
    # tolong(datetime) is 100 ns ticks since 0001-01-01: 637134336000000000 is 2020-01-01.
    assert r.table.to_pylist() == [{"gt": True, "eq": False, "t": 637134336001234567, "old": 618199776009999999}]


def test_the_support_matrix_states_the_microsecond_limit():
    from kqlmagic_plus.language.compiler.matrix import render

    text = " ".join(render().split())
    assert "Spark's timestamps hold microseconds: there a 7th digit is cut everywhere" in text
    assert "for the years 1678-2261" in text and "timespans (held to the microsecond)" in text
