"""``spray``: password spraying and brute force from SigninLogs.

One source IP failing sign-ins (bad password, locked or disabled account, ...) across many distinct
accounts, with few successes: a NAT'd office egress has failures too, but mostly successes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.hunts.base import Column, Hunt, HuntRun, Param, ordered, typed_output
from kqlmagic_plus.hunts.sql import Dialect, Plan, time_filter

if TYPE_CHECKING:
    from kqlmagic_plus.hunts.inputs import Source

#: Entra ID sign-in failures that mean "wrong credentials" or a defended account.
FAILURE_CODES = ("50126", "50053", "50055", "50056", "50057", "50064", "50034", "50144")

COLUMNS = (
    Column("IPAddress", "string"), Column("FailedAccounts", "long"), Column("FailedSignins", "long"),
    Column("SuccessfulAccounts", "long"), Column("SuccessfulSignins", "long"), Column("SuccessPercent", "real"),
    Column("CompromisedAccounts", "string"), Column("ResultTypes", "string"), Column("Apps", "string"),
    Column("UserAgents", "string"), Column("FirstSeen", "datetime"), Column("LastSeen", "datetime"),
)


class Spray(Hunt):
    name = "spray"
    title = "password spray / brute force: one IP failing sign-ins across many accounts"
    description = (
        "Finds source IPs with failed sign-ins (wrong password, locked, disabled or expired accounts) across "
        "many distinct accounts in the window and few successful sign-ins (MITRE T1110.003). "
        "CompromisedAccounts lists the accounts that did sign in from that IP: the ones to reset first."
    )
    table = "SigninLogs"
    required = ("TimeGenerated", "IPAddress", "UserPrincipalName", "ResultType")
    optional = ("AppDisplayName", "UserAgent")
    columns = COLUMNS
    order = (("FailedAccounts", True), ("FailedSignins", True), ("IPAddress", False))
    params = (
        Param("end_date", "date", None, "Last day analysed (UTC), inclusive. Default: today for a lake; the last "
              "day in the data for a table or DataFrame.", metavar="DATE"),
        Param("lookback_days", "int", 1, "Days analysed, ending at end-date.", minimum=1, maximum=3660),
        Param("min_accounts", "int", 10, "Flag an IP whose failed sign-ins name at least this many distinct "
              "accounts.", minimum=1),
        Param("max_success_pct", "float", 10.0, "... and whose successful sign-ins are at most this share "
              "(percent) of its sign-ins.", minimum=0, maximum=100),
        Param("failure_codes", "list", FAILURE_CODES, "ResultType values that count as failures "
              "(comma-separated).", metavar="CODES"),
    )

    def plan(self, values: Mapping[str, Any], source: Source, d: Dialect,  # type: ignore[override]
             window: tuple[int, int] | None) -> Plan:
        v = values
        cols = source.columns
        plan = Plan(d, source=source.relation)
        t, where = time_filter(d, cols, window)
        codes = ", ".join(d.lit(str(c)) for c in v["failure_codes"]) or "''"

        def opt(name: str) -> str:
            return d.ident(name) if name in cols else "CAST(NULL AS STRING)"

        plan.add("ev", f"""
            SELECT {t} AS t, {d.ident('IPAddress')} AS ip, lower({d.ident('UserPrincipalName')}) AS upn,
                   CAST({d.ident('ResultType')} AS STRING) AS rt, {opt('AppDisplayName')} AS app,
                   {opt('UserAgent')} AS ua
            FROM @src WHERE {' AND '.join(where)} AND {d.ident('IPAddress')} IS NOT NULL
              AND {d.ident('IPAddress')} <> '' AND {d.ident('UserPrincipalName')} IS NOT NULL""")
        plan.add("marked", f"""
            SELECT *, CASE WHEN rt IN ({codes}) THEN 1 ELSE 0 END AS fail,
                      CASE WHEN rt = '0' THEN 1 ELSE 0 END AS ok FROM @ev""")
        pct_ppm = round(v["max_success_pct"] * 10_000)
        plan.add("ips", f"""
            SELECT ip, count(DISTINCT CASE WHEN fail = 1 THEN upn END) AS failed_accounts,
                   CAST(sum(fail) AS BIGINT) AS failed, count(DISTINCT CASE WHEN ok = 1 THEN upn END) AS ok_accounts,
                   CAST(sum(ok) AS BIGINT) AS ok_n, count(*) AS total,
                   {d.distinct_list('CASE WHEN ok = 1 THEN upn END')} AS compromised,
                   {d.distinct_list('CASE WHEN fail = 1 THEN rt END')} AS rts,
                   {d.distinct_list('app')} AS apps, {d.distinct_list('ua')} AS uas, min(t) AS first_t,
                   max(t) AS last_t
            FROM @marked GROUP BY ip""", materialize=True)
        plan.output("rows", f"""
            SELECT ip AS IPAddress, failed_accounts AS FailedAccounts, failed AS FailedSignins,
                   ok_accounts AS SuccessfulAccounts, ok_n AS SuccessfulSignins,
                   {d.idiv('ok_n * 2000 + total', '2 * total')} AS pct_x10, compromised AS CompromisedAccounts,
                   rts AS ResultTypes, apps AS Apps, uas AS UserAgents, first_t AS first_us, last_t AS last_us
            FROM @ips WHERE failed_accounts >= {int(v['min_accounts'])} AND ok_n * 1000000 <= {pct_ppm} * total""")
        plan.output("stats", """
            SELECT CAST(sum(total) AS BIGINT) AS events, count(*) AS source_ips, CAST(sum(failed) AS BIGINT) AS
                   failed_signins FROM @ips""")
        return plan

    def finish(self, run: HuntRun, values: Mapping[str, Any]) -> HuntRun:
        run.table = ordered(typed_output(run.table, _OUTPUT), self.order)
        return run


#: (output column, raw column, kind): see base.typed_output.
_OUTPUT = (
    ('IPAddress', 'IPAddress', 'string'),
    ('FailedAccounts', 'FailedAccounts', 'long'),
    ('FailedSignins', 'FailedSignins', 'long'),
    ('SuccessfulAccounts', 'SuccessfulAccounts', 'long'),
    ('SuccessfulSignins', 'SuccessfulSignins', 'long'),
    ('SuccessPercent', 'pct_x10', '/10'),
    ('CompromisedAccounts', 'CompromisedAccounts', 'string'),
    ('ResultTypes', 'ResultTypes', 'string'),
    ('Apps', 'Apps', 'string'),
    ('UserAgents', 'UserAgents', 'string'),
    ('FirstSeen', 'first_us', 'time'),
    ('LastSeen', 'last_us', 'time'),
)

HUNT = Spray()
