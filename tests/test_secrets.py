"""Secrets never shown, wherever the text comes from: connection strings without their scheme, credentials
inside URLs (``https://user:pass@host``, ``?sig=``, ``code=``, ``token=``, ``key=``), Spark targets, and a
property test over every secret-bearing key of every scheme and every URL credential form.

Everything runs on real parts: the magic in a real IPython shell, ``kqlmagic_plus.kql``, the CLI as a
subprocess, the loopback Log Analytics (TLS, with its identity provider) and ``duckdb-kql serve`` as a Kusto
endpoint; logging at DEBUG on the root logger; every file written under a temporary HOME and cache folder.
"""

# ruff: noqa: F811  (pytest fixtures imported from servers.fixtures are parameters here)
from __future__ import annotations

import logging
import os
import string
import subprocess
import sys
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from servers.fixtures import (  # noqa: F401  (fixtures)
    APP_ID,
    APP_SECRET,
    TENANT,
    WORKSPACE,
    files_under,
    home,
    kusto_serve,
    la,
    la_server,
)

import kqlmagic_plus as kp
from kqlmagic_plus import config
from kqlmagic_plus.connections import auth
from kqlmagic_plus.connections.spec import SECRET_KEYS, parse
from kqlmagic_plus.engines.registry import connections
from kqlmagic_plus.errors import ConnectionStringError, KqlMagicPlusError

pytest.importorskip("azure.identity")
pytest.importorskip("azure.kusto.data")

#: A secret for the fixed-form tests (the property test draws its own).
S = "Zq7-Hidden~Value.0xC0FFEE"


# -- what is looked at -------------------------------------------------------------------------------------


class Seen:
    """Every text a user or a file could get: outputs, exception texts, reprs, log records, files."""

    def __init__(self, *roots: os.PathLike | str):
        self.texts: list[str] = []
        self.roots = roots

    def add(self, *items: object) -> None:
        for item in items:
            if isinstance(item, BaseException):
                self.texts += [str(item), repr(item), "".join(map(str, item.args))]
                if isinstance(item, KqlMagicPlusError):
                    self.texts += [item.user_message(), *item._render_traceback_()]
            elif item is not None:
                self.texts.append(item if isinstance(item, str) else repr(item))
                if hasattr(item, "_repr_html_") and hasattr(item, "table"):
                    self.texts += [item._repr_html_(), str(item.connection), str(item.executed), repr(item.stats)]

    def leaks(self, secret: str) -> list[str]:
        forms = {secret, secret[::-1], quote(secret, safe=""), repr(secret)[1:-1]}
        found = [t for t in self.texts if any(f in t for f in forms)]
        for root in self.roots:
            for path in files_under(root):
                with open(path, "rb") as fh:
                    data = fh.read()
                if any(f.encode() in data for f in forms):
                    found.append(f"file {path}")
        return found


@pytest.fixture
def logs():
    """Every log record at DEBUG (the SDKs' too), as text."""
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record) + "".join(map(repr, record.args or ())))

    root = logging.getLogger()
    handler = Keep(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    names = ("", "azure", "msal", "urllib3", "azure.identity", "azure.core.pipeline.policies.http_logging_policy",
             "azure.kusto", "kqlmagic_plus")
    saved = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.DEBUG)
    root.addHandler(handler)
    yield records
    root.removeHandler(handler)
    for n, level in saved.items():
        logging.getLogger(n).setLevel(level)


@pytest.fixture
def cache_dir(cache_dir):
    """The shared private cache folder (tests/conftest.py), with results cached (1h) by default."""
    config.settings().cache = "1h"
    return cache_dir


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kqlmagic_plus.cli", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def attempt(fn, *args, **kwargs):
    """(value, exception) of one call."""
    try:
        return fn(*args, **kwargs), None
    except Exception as exc:
        return None, exc


# -- 1. a connection string without its scheme ---------------------------------------------------------------


NO_SCHEME = [
    f"loganalytics//workspace='{WORKSPACE}';tenant='{TENANT}';clientid='{APP_ID}';clientsecret='{S}'",
    f"workspace='{WORKSPACE}';tenant='{TENANT}';clientid='{APP_ID}';clientsecret='{S}'",
    f"loganalytics:workspace('{WORKSPACE}').tenant('{TENANT}').clientid('{APP_ID}').clientsecret('{S}')",
    f"adx:/cluster=help;database=Samples;tenant={TENANT};clientid={APP_ID};client_secret={S}",
]


@pytest.mark.parametrize("conn", NO_SCHEME, ids=["loganalytics//", "no scheme", "loganalytics:", "adx:/"])
def test_a_connection_string_without_its_scheme_shows_no_secret(conn, ip, run_cell, tmp_path):
    seen = Seen(tmp_path)
    _, exc = attempt(kp.kql, "print 1", conn=conn)
    assert isinstance(exc, ConnectionStringError)
    assert "no scheme" in str(exc) and ("'***'" in str(exc) or "=***" in str(exc))
    _, err, out = run_cell(f"%%kql {conn}\nprint 1")
    assert isinstance(err, ConnectionStringError)
    p = cli("query", "--conn", conn, "print 1", env={"HOME": str(tmp_path)})
    assert p.returncode == 1 and "no scheme" in p.stderr
    seen.add(exc, err, out, p.stdout, p.stderr)
    assert seen.leaks(S) == []


def test_the_missing_scheme_is_named():
    _, exc = attempt(connections().resolve, NO_SCHEME[0])
    assert str(exc) == ("\"loganalytics//workspace='11111111-2222-3333-4444-555555555555';tenant='contoso.example';"
                        "clientid='a1b2c3d4-0000-4000-8000-00000000c11e';clientsecret='***'\" has no scheme: "
                        "write loganalytics://...")


def test_a_name_that_is_no_connection_still_says_so():
    _, exc = attempt(connections().resolve, "prod")
    assert isinstance(exc, ConnectionStringError)
    assert str(exc).startswith("no connection named 'prod'")


# -- 2. credentials inside URLs --------------------------------------------------------------------------------


def test_url_user_info_is_hidden_in_the_listing_result_show_query_cache_and_replay(
        ip, run_cell, kusto_serve, cache_dir, logs, tmp_path):
    cluster = kusto_serve.url.replace("http://", f"http://analyst:{S}@")
    conn = f"adx://cluster='{cluster}';database='{kusto_serve.name}';anonymous"
    seen = Seen(tmp_path)
    value, err, out = run_cell(f"%%kql --show-query {conn}\nEvents | count")
    assert err is None, err
    shown = f"adx://{kusto_serve.url.replace('http://', 'http://analyst:***@')}/{kusto_serve.name}"
    assert value.connection == shown
    assert f"-- ran on {shown}" in out
    listing, err2, out2 = run_cell("%kql --conn")
    assert err2 is None and f"cluster='{cluster.replace(S, '***')}'" in repr(listing)
    _, err3, out3 = run_cell(f"%kql {conn}")
    assert err3 is None and out3.strip() == f"Connected: {shown}"
    again, err4, _ = run_cell(f"%%kql {conn}\nEvents | count")
    assert err4 is None and again.from_cache and again.connection == shown
    replay = tmp_path / "replay"
    report, err5, out5 = run_cell(f"%kql --cache export {replay}")
    assert err5 is None and list(replay.iterdir())
    listed, _, out6 = run_cell("%kql --cache list")
    key, engine = connections().resolve(conn)
    seen.add(out, out2, out3, out5, out6, value, again, listing, report, listed, key, repr(engine), engine.target,
             connections().names(), connections().listing(), repr(parse(conn)), *logs)
    assert seen.leaks(S) == []


@pytest.mark.parametrize("query", [f"?sig={S}", f"?sv=2022-11-02&sr=c&sig={S}", f"?code={S}", f"?token={S}",
                                   f"/path?key={S}", f"?access_token={S}&x=1"])
def test_url_query_credentials_are_hidden(query, ip, run_cell, la, tmp_path):
    endpoint = f"{la.url}{query}"
    conn = f"loganalytics://workspace='{WORKSPACE}';endpoint='{endpoint}';anonymous"
    seen = Seen(tmp_path)
    _, err, out = run_cell(f"%kql {conn}")
    assert err is None, err
    assert out.strip().startswith(f"Connected: loganalytics://workspace={WORKSPACE};endpoint=https://127.0.0.1:")
    assert "=***" in out
    listing, _, _ = run_cell("%kql --conn")
    _, exc = attempt(kp.kql, "SigninLogs | take 1", conn=conn)
    assert isinstance(exc, KqlMagicPlusError)
    seen.add(out, listing, exc, connections().names(), connections().listing())
    assert seen.leaks(S) == []


def test_credentials_in_the_authority_url_are_hidden(tmp_path):
    seen = Seen(tmp_path)
    _, exc = attempt(kp.kql, "print 1", conn=f"loganalytics://workspace='w';code;authority='http://me:{S}@127.0.0.1:1'")
    assert str(exc).startswith("authority 'http://me:***@127.0.0.1:1' must be an https:// URL")
    sign_in = auth.sign_in_from_spec(parse(f"loganalytics://workspace='w';code;authority='https://me:{S}@idp.test'"))
    assert repr(sign_in) == "SignIn(code, device-code sign-in, authority=https://me:***@idp.test)"
    seen.add(exc, sign_in)
    assert seen.leaks(S) == []


def test_a_secret_an_sdk_error_echoes_is_hidden():
    """The last line of defence: every error message passes the one redaction."""
    err = KqlMagicPlusError(f"cannot reach https://bob:{S}@host/x?sig={S}2&sv=1: refused",
                            hint=f"Authorization: Bearer {S}")
    assert str(err) == "cannot reach https://bob:***@host/x?sig=***&sv=1: refused\nAuthorization: Bearer ***"


def test_spark_targets_hide_url_credentials(ip, run_cell, tmp_path):
    from kqlmagic_plus.engines.spark.livy import parse_synapse
    from kqlmagic_plus.engines.spark.sessions import ConnectSession, parse_target

    seen = Seen(tmp_path)
    target = parse_target(f"sc://analyst:{S}@127.0.0.1:15002/;token={S}x;user_id=me")
    assert target.display == "sc://analyst:***@127.0.0.1:15002/;token=***;user_id=me"
    refused = ConnectSession(target)._connect_error(RuntimeError("UNAVAILABLE: failed to connect"))
    syn = parse_synapse(f"synapse://ws/pool;endpoint='https://bob:{S}@127.0.0.1:1/?sig={S}y'")
    assert syn.display == "synapse://ws/pool;endpoint=https://bob:***@127.0.0.1:1/?sig=***"
    _, exc = attempt(parse_synapse, f"synapse://ws/pool;endpoint='http://bob:{S}@127.0.0.1:1'")
    assert str(exc).startswith("endpoint 'http://bob:***@127.0.0.1:1' must be https://")
    _, err, out = run_cell(f"%%sparkhunt --connect synapse://ws/pool;endpoint='http://bob:{S}@127.0.0.1:1'\nprint 1")
    assert err is not None
    _, exc2 = attempt(parse_target, f"sc:/127.0.0.1:1/;token={S}")
    seen.add(target, str(target), target.key, refused, syn, repr(syn), syn.key, exc, err, out, exc2)
    assert seen.leaks(S) == []


@pytest.mark.parametrize("text, shown", [
    (f"https://u:{S}@host/p", "https://u:***@host/p"),
    (f"https://{S}@host", "https://***@host"),
    (f"abfss://container@account.dfs.core.windows.net/x?sv=1&sig={S}",
     "abfss://container@account.dfs.core.windows.net/x?sv=1&sig=***"),
    ("adx://Samples@help", "adx://Samples@help"),
    (f"loganalytics://workspace='w';ClientSecret=\"{S}\";code", "loganalytics://workspace='w';ClientSecret=\"***\";code"),
    (f"x://a(1).client_secret('{S}')", "x://a(1).client_secret('***')"),
    (f"DefaultEndpointsProtocol=https;AccountName=a;AccountKey={S};", "DefaultEndpointsProtocol=https;AccountName=a;"
     "AccountKey=***;"),
    (f"{{'clientsecret': '{S}'}}", "{'clientsecret': '***'}"),
    ("T | where code == 5 | extend key = 1, token=2", "T | where code == 5 | extend key = 1, token=2"),
    ("T\n| extend\n    token = tostring(x)", "T\n| extend\n    token = tostring(x)"),
    ('{"error": {"code": "BadArgumentError"}}', '{"error": {"code": "BadArgumentError"}}'),
    (f"{{'access_token': '{S}', 'key': 'k1'}}", "{'access_token': '***', 'key': 'k1'}"),
    ("clientsecret=$AZURE_SECRET", "clientsecret=$AZURE_SECRET"),
    (f"sc//me:{S}@host:15002", "sc//me:***@host:15002"),
    (f"adx:cluster='https://h/x?sig={S}';database='d'", "adx:cluster='https://h/x?sig=***';database='d'"),
    (f"certificate='-----BEGIN PRIVATE KEY-----\n{S}\n-----END PRIVATE KEY-----'",
     "certificate='-----BEGIN PRIVATE KEY-----***-----END PRIVATE KEY-----'"),
])
def test_redact_forms(text, shown):
    from kqlmagic_plus.redaction import redact

    assert redact(text) == shown


# -- 3. the property: no secret-bearing value appears anywhere ----------------------------------------------------

#: Secret-bearing keys, as a user may spell them (case, ``_`` and ``-`` do not matter).
KEYS = sorted({k for k in SECRET_KEYS if "_" not in k})
SAFE = string.ascii_letters + string.digits


def _spellings(key: str) -> st.SearchStrategy[str]:
    return st.sampled_from([key, key.upper(), key.title(), key[:3] + "_" + key[3:], key[:2] + "-" + key[2:].upper()])


def values(alphabet: str) -> st.SearchStrategy[str]:
    """Random secrets: 12-24 characters of *alphabet*, at least 8 of them distinct letters or digits (so that
    one cannot occur by chance in an output), starting and ending with one."""
    distinct = st.lists(st.sampled_from(SAFE), min_size=8, max_size=8, unique=True).map("".join)
    middle = st.text(alphabet=alphabet, min_size=4, max_size=16)
    return st.tuples(distinct, middle).map(lambda p: p[0][:4] + p[1] + p[0][4:])


URL_PLACES = ("la-endpoint", "la-authority", "adx-cluster", "synapse-endpoint")
SPARK_FORMS = ("sc://127.0.0.1:15002/;token={v}", "sc://127.0.0.1:15002/;Token={v};user_id=me",
               "sc://me:{v}@127.0.0.1:15002", "sc://127.0.0.1:15002/;x-api-key={v}",
               "sc://127.0.0.1:15002/;authorization=Bearer%20{v}")
URL_FORMS = ("user:{v}@", "{v}@", "?sig={v}", "?sv=2022-11-02&se=2030&sig={v}", "?code={v}", "?token={v}",
             "?key={v}", "/x?access_token={v}")


def _with_url(url: str, form: str, v: str) -> str:
    scheme, _, rest = url.partition("://")
    if form.endswith("@"):
        return f"{scheme}://{form.format(v=v)}{rest}"
    return url + form.format(v=v)


SCHEMES = ("loganalytics", "adx", "local", "synapse")


KINDS = (*(f"key:{s}" for s in SCHEMES), *(f"url:{p}" for p in URL_PLACES), "spark")
#: How a connection string may be broken: intact, its scheme dropped, or ``scheme//`` / ``scheme:`` for ``://``.
BREAKS = ("", "", "drop-scheme", "scheme//", "scheme:")


def _broken(conn: str, how: str) -> str:
    scheme, _, rest = conn.partition("://")
    return {"": conn, "drop-scheme": rest, "scheme//": f"{scheme}//{rest}", "scheme:": f"{scheme}:{rest}"}[how]


@st.composite
def cases(draw, la_url: str, kusto_url: str, kusto_db: str, kind: str | None = None, key: str | None = None,
          form: str | None = None):
    """(label, connection text, secret, env): one secret-bearing value in one place of one scheme, the
    string intact or broken (:data:`BREAKS`).

    *kind*: ``key:<scheme>`` (a secret-bearing key), ``url:<place>`` (a credential inside a URL value),
    ``spark`` (an sc:// target); drawn when None. *key*, *form*: the secret-bearing key, the URL or sc:// form
    (drawn when None). The label starts with the entry point that takes the string: ``kql:``, ``sparkhunt:``
    or ``spark-target:``."""
    kind = kind or draw(st.sampled_from(KINDS))
    env: dict[str, str] = {}
    if kind.startswith("key:"):
        scheme = kind.split(":", 1)[1]
        key = key or draw(st.sampled_from(KEYS))
        spelled = draw(_spellings(key))
        style = draw(st.sampled_from(["single", "double", "bare", "paren", "env"]))
        v = draw(values(SAFE + "-._~" + ("+/=" if style in ("single", "double", "env") else "")))
        sign_in = {"tenant": TENANT, "clientid": APP_ID, "authority": la_url}
        if key != "clientsecret":
            sign_in["clientsecret"] = APP_SECRET
        props = {"loganalytics": {"workspace": WORKSPACE, "endpoint": la_url, **sign_in},
                 "adx": {"cluster": kusto_url, "database": kusto_db, **sign_in},
                 "local": {},
                 "synapse": {"endpoint": la_url, **sign_in}}[scheme]
        value = {"single": f"'{v}'", "double": f'"{v}"', "bare": v, "paren": f"'{v}'", "env": "$KQLMP_TEST_SECRET"}
        if style == "env":
            env["KQLMP_TEST_SECRET"] = v
        items = [*props.items(), (spelled, value[style])]
        draw(st.randoms()).shuffle(items)
        if style == "paren" and scheme != "synapse":
            body = ".".join(f"{k}({x if k == spelled else repr(x)})" for k, x in items)
        else:
            body = ";".join(f"{k}={x if k == spelled else repr(x)}" for k, x in items)
        head = {"synapse": "synapse://ws/pool;"}.get(scheme, f"{scheme}://")
        entry = "sparkhunt" if scheme == "synapse" else "kql"
        label, conn = f"{entry}:{scheme}:{key}:{style}", head + body
    elif kind.startswith("url:"):
        v = draw(values(SAFE + "-._~"))
        form = form or draw(st.sampled_from(URL_FORMS))
        where = kind.split(":", 1)[1]
        if where == "la-endpoint":
            conn = (f"loganalytics://workspace='{WORKSPACE}';tenant='{TENANT}';clientid='{APP_ID}';"
                    f"clientsecret='{APP_SECRET}';authority='{la_url}';endpoint='{_with_url(la_url, form, v)}'")
        elif where == "la-authority":
            conn = (f"loganalytics://workspace='{WORKSPACE}';tenant='{TENANT}';clientid='{APP_ID}';"
                    f"clientsecret='{APP_SECRET}';authority='{_with_url(la_url, form, v)}';endpoint='{la_url}'")
        elif where == "adx-cluster":
            sign_in = draw(st.sampled_from(["anonymous", f"tenant='{TENANT}';clientid='{APP_ID}';"
                                                         f"clientsecret='{APP_SECRET}';authority='{la_url}'"]))
            conn = f"adx://cluster='{_with_url(kusto_url, form, v)}';database='{kusto_db}';{sign_in}"
        else:
            conn = (f"synapse://ws/pool;endpoint='{_with_url(la_url, form, v)}';"
                    f"tenant='{TENANT}';clientid='{APP_ID}';clientsecret='{APP_SECRET}';authority='{la_url}'")
        label = f"{'sparkhunt' if where.startswith('synapse') else 'kql'}:url:{where}:{form}"
    else:
        v = draw(values(SAFE + "-._~"))
        form = form or draw(st.sampled_from(SPARK_FORMS))
        label, conn = f"spark-target:{form}", form.format(v=v)
    how = draw(st.sampled_from(BREAKS))
    return label + (f":broken={how}" if how else ""), _broken(conn, how), v, env


def _run_spark(text: str, seen: Seen) -> None:
    from kqlmagic_plus.engines.spark.sessions import ConnectSession, parse_target

    target, exc = attempt(parse_target, text)
    seen.add(exc)
    if target is not None:
        session = ConnectSession(target)
        seen.add(target, str(target), target.display, target.key,
                 session._connect_error(RuntimeError("UNAVAILABLE: failed to connect")),
                 session._connect_error(RuntimeError("UNAUTHENTICATED")))


def check_hidden(label: str, conn: str, secret: str, env: dict[str, str], run_cell, home, logs) -> None:
    """Use *conn* through its entry points in this process; *secret* must appear nowhere."""
    connections().close_all()
    auth.forget_credentials()
    logs.clear()
    seen = Seen(home)
    os.environ.update(env)
    try:
        if label.startswith("spark-target:"):
            _run_spark(conn, seen)
            _, err, out = run_cell(f"%sparkhunt --connect {conn} --status")
            seen.add(err, out)
        elif label.startswith("sparkhunt:"):
            _, err, out = run_cell(f"%%sparkhunt --connect {conn}\nprint x = 1")
            assert err is not None
            seen.add(err, out)
        else:
            query = "Events | take 2" if ":adx" in label else "SigninLogs | take 2"
            result, exc = attempt(kp.kql, query, conn=conn)
            value, err, out = run_cell(f"%%kql --show-query {conn}\n{query}")
            listing, err2, out2 = run_cell("%kql --conn")
            seen.add(result, exc, value, err, out, listing, err2, out2, connections().names(),
                     connections().listing())
            for _, engine in list(connections()._engines.items()):
                seen.add(repr(engine), engine.target)
        seen.add(*logs)
        leaks = seen.leaks(secret) + seen.leaks(APP_SECRET)
        assert leaks == [], (label, conn, leaks[:3])
    finally:
        for name in env:
            os.environ.pop(name, None)


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=12, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_no_secret_value_appears_in_any_output_repr_log_error_or_file(
        kind, data, ip, run_cell, la, home, kusto_serve, cache_dir, logs):
    label, conn, secret, env = data.draw(cases(la.url, kusto_serve.url, kusto_serve.name, kind=kind))
    event(label.split(":broken")[0].rsplit(":", 1)[0])
    event("broken" if ":broken=" in label else "intact")
    check_hidden(label, conn, secret, env, run_cell, home, logs)


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=1, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_every_secret_bearing_key_and_url_form_of_every_scheme_is_hidden(
        kind, data, ip, run_cell, la, home, kusto_serve, cache_dir, logs):
    """Every key of SECRET_KEYS on every scheme, every URL credential form in every place that takes a URL,
    every sc:// form: each once, with its own random value, spelling, quoting and breakage."""
    for one in (KEYS if kind.startswith("key:") else URL_FORMS if kind.startswith("url:") else SPARK_FORMS):
        fixed = {"key": one} if kind.startswith("key:") else {"form": one}
        case = data.draw(cases(la.url, kusto_serve.url, kusto_serve.name, kind=kind, **fixed))
        check_hidden(*case, run_cell, home, logs)


@settings(max_examples=6, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_the_cli_never_prints_a_secret_value(data, la, home, kusto_serve):
    kind = data.draw(st.sampled_from(["key:loganalytics", "key:adx", "key:local", "url:la-endpoint",
                                      "url:la-authority", "url:adx-cluster"]))
    label, conn, secret, env = data.draw(cases(la.url, kusto_serve.url, kusto_serve.name, kind=kind)
                                         .filter(lambda c: c[0].startswith("kql:")))
    query = "Events | take 2" if ":adx" in label else "SigninLogs | take 2"
    p = cli("query", "--show-query", "--conn", conn, query,
            env={"HOME": str(home), "REQUESTS_CA_BUNDLE": la.ca_path, **env})
    seen = Seen(home)
    seen.add(p.stdout, p.stderr)
    assert seen.leaks(secret) == [], (label, conn, p.stderr)


def test_a_secret_written_into_a_query_is_not_kept_by_the_cache(cache_dir, tmp_path):
    """The cache keys on the query as written, but keeps only redacted text on disk and in --cache list."""
    import kqlmagic_plus as kp
    from kqlmagic_plus.cache import commands

    secret = "Qz9" + "".join(reversed(string.ascii_letters[:24]))
    query = f'print n = strlen("https://acct.blob.core.windows.net/c/f.csv?sv=2022-11-02&sig={secret}")'
    first = kp.kql(query, cache="1h")
    again = kp.kql(query, cache="1h")
    assert again.from_cache and again.df["n"].tolist() == first.df["n"].tolist()
    written = files_under(cache_dir)
    assert written, "the entry was written"
    for path in written:
        with open(path, "rb") as fh:
            assert secret.encode() not in fh.read(), path
    assert secret not in repr(commands.list_entries())
    out = tmp_path / "replay"
    commands.export(str(out))
    for path in files_under(out):
        with open(path, "rb") as fh:
            assert secret.encode() not in fh.read(), path
