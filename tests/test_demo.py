"""`kqlmagic-plus demo` end to end: a fresh folder, the real CLI, the HTML opened offline in chromium."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from browser import chromium  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    proc = subprocess.run([sys.executable, "-m", "kqlmagic_plus.cli", "demo", "--out", str(out), "--days", "1",
                           "--events-per-day", "20000", "--seed", "3"], capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The kernel's start-up chatter (ipykernel's TCP-transport warning) stays out of the demo's output.
    assert "WARNING" not in proc.stderr and "Kernel is running" not in proc.stdout + proc.stderr, proc.stderr
    return out, proc.stdout


def test_demo_summary_matches_ground_truth(demo):
    out, stdout = demo
    truth = json.loads((out / "lake" / "_truth.json").read_text())
    spray_ip = next(a for a in truth["attacks"] if a["id"] == "password_spray")["IPAddress"]
    assert "findings vs ground truth:" in stdout
    assert stdout.count("[ found]") == 4 and "MISSED" not in stdout, stdout
    assert spray_ip in stdout
    for table in ("SigninLogs", "SecurityEvent", "CommonSecurityLog", "Syslog"):
        assert table in stdout


def test_demo_notebook_executed_without_errors(demo):
    import nbformat

    out, _ = demo
    nb = nbformat.read(out / "hunting_tour.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.get("execution_count") for c in code)
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []


def test_demo_html_draws_chart_and_findings_offline(demo, chromium):  # noqa: F811
    out, _ = demo
    truth = json.loads((out / "lake" / "_truth.json").read_text())
    page = chromium.new_page()
    page.open(out / "hunting_tour.html",
              ready="document.querySelectorAll('.js-plotly-plot .scatterlayer .trace').length > 0")
    traces = page.page.evaluate("document.querySelectorAll('.js-plotly-plot .scatterlayer .trace').length")
    vendors = page.page.evaluate(
        "Array.from(document.querySelectorAll('.js-plotly-plot .legendtext')).map(e => e.textContent)")
    text = page.page.inner_text("body")
    page.screenshot("demo-hunting-tour.png")
    # One line per firewall vendor in the events-per-hour timechart.
    assert traces >= 2 and len(vendors) == traces, vendors
    spray_ip = next(a for a in truth["attacks"] if a["id"] == "password_spray")["IPAddress"]
    masq = next(a for a in truth["attacks"] if a["id"] == "masquerading_process")["NewProcessName"]
    beacon_a = next(p for a in truth["attacks"] if a["id"] == "beacon" for p in a["pairs"] if p["label"] == "A")
    assert spray_ip in text and masq in text and beacon_a["DestinationIP"] in text
    assert page.outside_requests() == [] and page.errors == []
