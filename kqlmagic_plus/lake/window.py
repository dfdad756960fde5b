"""Time pruning: the export folders a time window reads, and the window a query's filter asks for.

Time pruning rule
-----------------
A blob's folder names the interval in which the export wrote its records - ``PT05M`` covers
``[F, F + 5 min)``, ``PT1H`` covers ``[F, F + 1 h)`` - not their TimeGenerated. A record is exported
after it reaches the workspace, and reaches it after it was generated, so a record with
TimeGenerated ``T`` sits in a folder at or after ``T``; late-arriving records sit in folders later
still, never earlier. Two margins bound the rule:

- ``skew``: a source clock running fast stamps a TimeGenerated ahead of arrival. Default 1 hour;
  the service itself accepts up to one day (set ``skew=timedelta(days=1)`` for that hard bound).
- ``max_late``: the service replaces a TimeGenerated more than 2 days before arrival with the arrival
  time (learn.microsoft.com, "Standard columns in Azure Monitor Logs"), so a record arrives at most
  2 days after its TimeGenerated; add an hour of export delay. Default 2 days 1 hour; ``None`` trusts
  no bound and keeps every folder after the window's start.

So a blob covering ``[F, F + D)`` can hold a record with ``F - max_late <= T < F + D + skew``, and
for a query window ``[start, end)`` (either side open) a blob is read exactly when
``F + D + skew > start`` and ``F - max_late < end``. A folder is pruned only when no blob in it can
pass. A window at the lake's end (``ago(1d)``) reads its day plus ``skew``; a window in the past
also reads the ``max_late`` of folders after it, where its late rows are.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from kqlmagic_plus.errors import OptionError
from kqlmagic_plus.lake.layout import US
from kqlmagic_plus.request import TimeWindow

DEFAULT_SKEW = timedelta(hours=1)
DEFAULT_MAX_LATE = timedelta(days=2, hours=1)


def _us(value: datetime | None) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * US + delta.microseconds


def as_window(window: TimeWindow | tuple | None) -> TimeWindow | None:
    if window is None or isinstance(window, TimeWindow):
        return window
    if isinstance(window, tuple) and len(window) == 2:
        return TimeWindow(*window)
    raise OptionError(f"not a time window: {window!r}")


def _td_us(value: timedelta | None) -> int | None:
    return None if value is None else int(value / timedelta(microseconds=1))


def bounds(window: TimeWindow | None, skew: timedelta, max_late: timedelta | None) -> tuple[int | None, int | None]:
    """Blob start times that can hold rows of *window*: (lowest allowed end, highest allowed start)."""
    if window is None:
        return None, None
    start, end = _us(window.start), _us(window.end)
    skew_us = _td_us(skew) or 0
    late = _td_us(max_late)
    lo = None if start is None else start - skew_us  # need F + D > lo
    hi = None if end is None or late is None else end + late  # need F < hi
    return lo, hi


# -- the window a query asks for ---------------------------------------------------------------------


#: Operators that bring in other tables or rows: a leading filter then no longer bounds every table.
_MULTI_SOURCE = {"join", "union", "lookup", "let", "materialize", "toscalar", "table", "database", "cluster",
                 "workspace", "app", "evaluate", "invoke", "fork", "facet", "externaldata", "datatable",
                 "range", "find", "search", "view", "as", "print", "external_table", "materialized_view"}
_UNITS = {"d": 86_400, "day": 86_400, "days": 86_400, "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600,
          "hours": 3600, "m": 60, "min": 60, "minute": 60, "minutes": 60, "s": 1, "sec": 1, "second": 1,
          "seconds": 1, "ms": 1e-3, "milli": 1e-3, "millis": 1e-3, "millisecond": 1e-3, "milliseconds": 1e-3,
          "microsecond": 1e-6, "microseconds": 1e-6, "tick": 1e-7, "ticks": 1e-7}


def window_from_query(query: str, now: datetime | None = None) -> TimeWindow | None:
    """The TimeGenerated window a query's leading ``where`` clauses bound, or None.

    Reads ``T | where TimeGenerated > ago(7d)``, ``>= datetime(..)``, ``< now()``, ``between
    (datetime(..) .. datetime(..))`` and ``and`` of those, over one or more leading ``where``.
    Returns None when the query reads more than one source (join, union, let, ...), since one window
    then would prune tables the filter does not cover; and ignores any condition it does not understand,
    so the window it returns is never narrower than the query's own filter.
    """
    from kqlmagic_plus.language.lexer import significant, tokenize

    toks = significant(tokenize(query))
    if not toks or toks[0].kind != "ident":
        return None
    if any(t.kind == "ident" and t.text in _MULTI_SOURCE for t in toks) or any(t.text == ";" for t in toks):
        return None
    now = now or datetime.now(UTC)
    start: datetime | None = None
    end: datetime | None = None
    i = 1
    while i + 1 < len(toks) and toks[i].text == "|" and toks[i + 1].text in ("where", "filter"):
        j = i + 2
        depth = 0
        clause = []
        while j < len(toks) and not (depth == 0 and toks[j].text == "|"):
            depth += toks[j].text in "([{"
            depth -= toks[j].text in ")]}"
            clause.append(toks[j])
            j += 1
        for lo, hi in _clause_bounds(query, clause, now):
            if lo is not None and (start is None or lo > start):
                start = lo
            if hi is not None and (end is None or hi < end):
                end = hi
        i = j
    if start is None and end is None:
        return None
    return TimeWindow(start, end)


def _split_top(tokens: list, word: str) -> list[list]:
    out: list[list] = [[]]
    depth = 0
    for t in tokens:
        if t.text in ("(", "[", "{"):
            depth += 1
        elif t.text in (")", "]", "}"):
            depth -= 1
        if depth == 0 and t.kind == "ident" and t.text == word:
            out.append([])
        else:
            out[-1].append(t)
    return out


def _clause_bounds(query: str, clause: list, now: datetime) -> list[tuple[datetime | None, datetime | None]]:
    if len(_split_top(clause, "or")) > 1:
        return []
    out = []
    for conj in _split_top(clause, "and"):
        b = _conjunct_bounds(query, conj, now)
        if b is not None:
            out.append(b)
    return out


def _conjunct_bounds(query: str, toks: list, now: datetime) -> tuple[datetime | None, datetime | None] | None:
    while len(toks) >= 2 and toks[0].text == "(" and toks[-1].text == ")":
        toks = toks[1:-1]
    if not toks:
        return None
    tick = timedelta(microseconds=1)
    if toks[0].text == "TimeGenerated" and len(toks) > 2 and toks[1].text == "between":
        inner = toks[2:]
        if inner[0].text != "(" or inner[-1].text != ")":
            return None
        parts = _split_dots(inner[1:-1])
        if parts is None:
            return None
        lo, hi = (_time_value(query, p, now) for p in parts)
        if lo is None or hi is None:
            return None
        return lo, hi + tick
    ops = {">": "gt", ">=": "ge", "<": "lt", "<=": "le"}
    flipped = {"gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}
    if toks[0].text == "TimeGenerated" and len(toks) > 2 and toks[1].text in ops:
        op, value = ops[toks[1].text], _time_value(query, toks[2:], now)
    elif toks[-1].text == "TimeGenerated" and len(toks) > 2 and toks[-2].text in ops:
        op, value = flipped[ops[toks[-2].text]], _time_value(query, toks[:-2], now)
    else:
        return None
    if value is None:
        return None
    if op in ("gt", "ge"):
        return value, None
    return None, value + (tick if op == "le" else timedelta(0))


def _split_dots(toks: list) -> list[list] | None:
    depth = 0
    for k, t in enumerate(toks):
        depth += t.text == "("
        depth -= t.text == ")"
        if depth == 0 and t.text == "..":
            return [toks[:k], toks[k + 1:]]
    return None


def _time_value(query: str, toks: list, now: datetime) -> datetime | None:
    """``ago(ts)``, ``now()``, ``now(ts)`` or ``datetime(lit)`` as an absolute UTC time (None otherwise)."""
    if len(toks) < 3 or toks[1].text != "(" or toks[-1].text != ")":
        return None
    fn = toks[0].text
    inner = query[toks[1].end:toks[-1].start].strip()
    if fn == "ago":
        span = _timespan(inner)
        return None if span is None else now - span
    if fn == "now":
        if not inner:
            return now
        sign = -1 if inner.startswith("-") else 1
        span = _timespan(inner.lstrip("+-").strip())
        return None if span is None else now + sign * span
    if fn in ("datetime", "todatetime"):
        return _parse_datetime(inner)
    return None


def _timespan(text: str) -> timedelta | None:
    text = text.strip()
    m = re.fullmatch(r"(?:time|timespan)\((.*)\)", text)
    if m:
        text = m.group(1).strip()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-zA-Z]+)", text)
    if m and m.group(2).lower() in _UNITS:
        return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2).lower()])
    m = re.fullmatch(r"(?:(\d+)\.)?(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?", text)
    if m:
        days, h, mi, s, frac = m.groups()
        return timedelta(days=int(days or 0), hours=int(h), minutes=int(mi), seconds=int(s or 0),
                         microseconds=int((frac or "0")[:6].ljust(6, "0")))
    return None


def _parse_datetime(text: str) -> datetime | None:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1].strip()
    m = re.fullmatch(r"(.*?\.\d{6})\d+(.*)", text)
    if m:
        text = m.group(1) + m.group(2)  # Python keeps microseconds; KQL writes up to 7 digits
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)

