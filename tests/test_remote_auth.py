"""Sign-in with real azure-identity credentials against a loopback identity provider (OIDC discovery,
token, device code, managed identity endpoints), the persistent token cache, and secret hygiene."""

# ruff: noqa: F811  (pytest fixtures imported from servers.fixtures are parameters here)
from __future__ import annotations

import logging
import os
import shutil
import stat

import pytest
from servers.fixtures import (  # noqa: F401  (fixtures)
    APP_ID,
    APP_SECRET,
    TENANT,
    WORKSPACE,
    files_under,
    home,
    la,
    la_conn,
    la_server,
    secret_free,
)

import kqlmagic_plus as kp
from kqlmagic_plus.connections import auth
from kqlmagic_plus.connections.spec import parse
from kqlmagic_plus.engines.registry import connections
from kqlmagic_plus.errors import AuthError, ConnectionStringError, KqlMagicPlusError

pytest.importorskip("azure.identity")


def code_conn(la) -> str:
    return f"loganalytics://workspace='{WORKSPACE}';tenant='{TENANT}';code;authority='{la.url}';endpoint='{la.url}'"


def restart_kernel() -> None:
    """What a kernel restart does to this process's state: connections and credentials are gone."""
    connections().close_all()
    auth.forget_credentials()


# -- device code and the persistent cache --------------------------------------------------------------------


def test_device_code_prints_a_plain_text_code_and_a_restart_does_not_ask_again(ip, la, home, run_cell):
    value, err, out = run_cell(f"%%kql {code_conn(la)}\nSigninLogs | count")
    assert err is None, err
    assert value.df["Count"][0] == 48
    prompt = [ln for ln in out.splitlines() if "devicelogin" in ln]
    assert len(prompt) == 1
    assert "open https://microsoft.com/devicelogin in a browser and enter the code " in prompt[0]
    assert "<" not in prompt[0]  # plain text, readable in every frontend
    assert la.counts["devicecode"] == 1

    restart_kernel()
    value, err, out = run_cell(f"%%kql {code_conn(la)}\nSigninLogs | count")
    assert err is None, err
    assert value.df["Count"][0] == 48
    assert "devicelogin" not in out
    assert la.counts["devicecode"] == 1  # no second sign-in: the refresh token came from the cache
    assert la.counts["token:refresh_token"] >= 1

    cache = home / ".IdentityService" / f"{auth.CACHE_NAME}.nocae"
    assert cache.exists()  # no keyring in this container: the documented plaintext fallback
    for path in files_under(home / ".IdentityService"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


def test_token_cache_off_asks_again_after_restart(ip, la, home, run_cell, monkeypatch):
    monkeypatch.setenv(auth.CACHE_ENV, "off")
    _, err, out = run_cell(f"%%kql {code_conn(la)}\nSigninLogs | count")
    assert err is None and "devicelogin" in out
    restart_kernel()
    _, err, out = run_cell(f"%%kql {code_conn(la)}\nSigninLogs | count")
    assert err is None and "devicelogin" in out
    assert la.counts["devicecode"] == 2
    assert not (home / ".IdentityService").exists()


def test_one_device_code_prompt_serves_every_connection_of_the_user(ip, la, home, run_cell):
    _, err, _ = run_cell(f"%%kql {code_conn(la)}\nSigninLogs | count")
    assert err is None
    other = code_conn(la).replace(WORKSPACE, "66666666-7777-8888-9999-000000000000")
    _, err, out = run_cell(f"%%kql {other}\nSigninLogs | count")
    assert err is None and "devicelogin" not in out
    assert la.counts["devicecode"] == 1


# -- the other methods ---------------------------------------------------------------------------------------


def test_certificate_sign_in(la, home):
    import trustme

    ca = trustme.CA(key_type=trustme.KeyType.RSA)
    pem = ca.issue_cert("kqlmagic-plus-app", key_type=trustme.KeyType.RSA).private_key_and_cert_chain_pem.bytes()
    path = home / "app.pem"
    path.write_bytes(pem)
    la.register_app("cert-app", certificate=True)
    conn = (f"loganalytics://workspace='{WORKSPACE}';tenant='{TENANT}';client_id='cert-app';"
            f"certificate_pem_file='{path}';aad_url='{la.url}';data_source_url='{la.url}'")
    r = kp.kql("SigninLogs | count", conn=conn)
    assert r.df["Count"][0] == 48
    assert any("client_assertion" in form for form in la.state.forms)
    with pytest.raises(ConnectionStringError, match="does not exist"):
        kp.kql("SigninLogs | count", conn=conn.replace("app.pem", "missing.pem"))


def test_certificate_given_inline_is_redacted():
    spec = parse("loganalytics://workspace='w';tenant='t';clientid='c';"
                 "certificate='-----BEGIN PRIVATE KEY-----MIIEv-----END PRIVATE KEY-----'")
    assert "MIIEv" not in repr(spec) and "MIIEv" not in spec.identity()
    assert auth.sign_in_from_spec(spec).method == "certificate"


def test_managed_identity_sign_in(la, home, monkeypatch):
    monkeypatch.setenv("IDENTITY_ENDPOINT", la.url + "/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", la.msi_header)
    r = kp.kql("SigninLogs | count", conn=f"loganalytics://workspace='{WORKSPACE}';msi;endpoint='{la.url}'")
    assert r.df["Count"][0] == 48 and la.counts["msi"] == 1


def test_default_uses_default_azure_credential(la, home, monkeypatch):
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", APP_ID)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", APP_SECRET)
    conn = f"loganalytics://workspace='{WORKSPACE}';default;authority='{la.url}';endpoint='{la.url}'"
    assert kp.kql("SigninLogs | count", conn=conn).df["Count"][0] == 48
    assert la.counts["token:client_credentials"] == 1


@pytest.mark.skipif(shutil.which("az") is not None, reason="needs a machine without the Azure CLI")
def test_azcli_without_the_cli_says_what_to_do(la, home):
    with pytest.raises(AuthError) as info:
        kp.kql("SigninLogs | count", conn=f"loganalytics://workspace='{WORKSPACE}';azcli;endpoint='{la.url}'")
    assert "Azure CLI not found" in str(info.value) and "az login" in str(info.value)
    assert info.value.user_message().startswith("Authentication failed: ")


def test_wrong_secret_is_one_line_with_the_service_reason(ip, la, home, run_cell):
    bad = la_conn(la, clientsecret="not-the-secret-0000")
    _, err, out = run_cell(f"%%kql {bad}\nSigninLogs | count")
    assert isinstance(err, AuthError)
    lines = [ln for ln in out.strip().splitlines() if ln.strip()]
    assert lines[0].startswith("Authentication failed: app ") and "AADSTS7000215" in lines[0]
    assert "Trace ID" not in out and "Traceback" not in out and len(lines) == 2  # reason + what to do
    # The corrected secret is a new connection, not the engine built with the wrong one.
    value, err, _ = run_cell(f"%%kql {la_conn(la)}\nSigninLogs | count")
    assert err is None and value.df["Count"][0] == 48


@pytest.mark.parametrize(("conn", "message"), [
    ("loganalytics://workspace='w';clientid='c';clientsecret='s'", "needs tenant"),
    ("loganalytics://workspace='w';tenant='t';clientid='c';clientsecret='s';code", "2 ways to sign in"),
    ("loganalytics://workspace='w';username='u';password='p'", "username/password"),
    ("loganalytics://workspace='w';appkey='k'", "appkey"),
    ("loganalytics://workspace='w';code;authority='http://login.example'", "https://"),
])
def test_sign_in_contradictions_are_named(conn, message):
    with pytest.raises(KqlMagicPlusError, match=message):
        auth.sign_in_from_spec(parse(conn))


# -- sovereign clouds ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("cloud", "login", "la_endpoint", "kusto"), [
    ("public", "https://login.microsoftonline.com", "https://api.loganalytics.io", "https://help.kusto.windows.net"),
    ("usgov", "https://login.microsoftonline.us", "https://api.loganalytics.us",
     "https://help.kusto.usgovcloudapi.net"),
    ("fairfax", "https://login.microsoftonline.us", "https://api.loganalytics.us",
     "https://help.kusto.usgovcloudapi.net"),
    ("china", "https://login.chinacloudapi.cn", "https://api.loganalytics.azure.cn",
     "https://help.kusto.chinacloudapi.cn"),
    ("mooncake", "https://login.chinacloudapi.cn", "https://api.loganalytics.azure.cn",
     "https://help.kusto.chinacloudapi.cn"),
])
def test_sovereign_clouds(cloud, login, la_endpoint, kusto):
    from kqlmagic_plus.engines.adx import AdxEngine
    from kqlmagic_plus.engines.loganalytics import LogAnalyticsEngine

    la_spec = parse(f"loganalytics://workspace='w';code;cloud='{cloud}'")
    assert auth.sign_in_from_spec(la_spec).authority == login
    assert LogAnalyticsEngine.from_spec(la_spec).endpoint == la_endpoint
    adx = AdxEngine.from_spec(parse(f"adx://cluster='help';database='Samples';azcli;cloud='{cloud}'"))
    assert adx.cluster == kusto


def test_unknown_cloud_is_refused():
    with pytest.raises(ConnectionStringError, match="public, usgov or china"):
        parse("loganalytics://workspace='w';cloud='mars'")


# -- no secret anywhere --------------------------------------------------------------------------------------


def test_the_secret_never_appears_in_output_logs_reprs_errors_or_files(ip, la, home, run_cell, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    for name in ("azure", "msal", "urllib3", "azure.core.pipeline.policies.http_logging_policy", "azure.identity"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    seen: list[object] = []
    value, err, out = run_cell(f"%%kql --show-query {la_conn(la)}\nSigninLogs | take 3")
    assert err is None, err
    seen += [out, repr(value), value._repr_html_(), value.connection, value.stats, value.executed]
    _, _listing, out2 = run_cell("%kql --conn")
    value2, _, out3 = run_cell("%kql --conn")
    seen += [out2, out3, repr(value2)]
    key, engine = connections().resolve(la_conn(la))
    seen += [key, repr(engine), engine.target, connections().names(), connections().listing(),
             repr(parse(la_conn(la))), repr(auth.sign_in_from_spec(parse(la_conn(la))))]
    _, err, out4 = run_cell(f"%%kql {la_conn(la, clientsecret=APP_SECRET + 'x')}\nSigninLogs | count")
    assert isinstance(err, AuthError)
    seen += [out4, str(err), repr(err), err.user_message()]
    # The wrong secret (which contains the right one) must not leak either.
    seen += [caplog.text]
    captured = capfd.readouterr()
    seen += [captured.out, captured.err]
    assert "POST" in caplog.text or "token" in caplog.text.lower()  # the SDK loggers did log
    assert secret_free(*seen)
    for path in files_under(home):
        with open(path, "rb") as fh:
            data = fh.read()
        assert APP_SECRET.encode() not in data, path
