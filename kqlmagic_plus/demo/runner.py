"""``kqlmagic-plus demo``: a synthetic lake, the hunting-tour notebook executed against it, an HTML copy,
and a summary of what the hunts found against the planted ground truth. Works offline.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kqlmagic_plus.errors import KqlMagicPlusError, OptionError

NOTEBOOK = "hunting_tour.ipynb"


class DemoError(KqlMagicPlusError):
    label = "Demo failed"


@dataclass
class Finding:
    attack: str
    expected: str
    found: str
    ok: bool


@dataclass
class DemoReport:
    out: Path
    lake: Path
    notebook: Path
    html: Path
    rows: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    elapsed: float = 0.0

    def __str__(self) -> str:
        lines = [f"kqlmagic-plus demo: {sum(self.rows.values()):,} events in {self.lake}"]
        lines += [f"  {t:<18} {n:>10,} rows" for t, n in self.rows.items()]
        lines.append("findings vs ground truth:")
        for f in self.findings:
            mark = "found" if f.ok else "MISSED"
            lines.append(f"  [{mark:>6}] {f.attack:<22} expected {f.expected}; hunt found {f.found}")
        lines.append(f"executed notebook: {self.notebook}")
        lines.append(f"HTML (open in a browser, works offline): {self.html}")
        lines.append(f"done in {self.elapsed:.0f} s")
        return "\n".join(lines)


def find_notebook() -> Path:
    """The tour notebook: beside the package in a source checkout, or installed as package data."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package.parent / "examples" / NOTEBOOK, package / "examples" / NOTEBOOK):
        if candidate.is_file():
            return candidate
    raise DemoError(f"cannot find examples/{NOTEBOOK}: run the demo from a clone of the repository "
                    "(pip install -e .)")


def run_demo(out: str = "kqlmagic-plus-demo", days: int = 2, events_per_day: int = 50_000, seed: int = 7,
             *, timeout: int = 600, echo: bool = True) -> DemoReport:
    from kqlmagic_plus.demo import datagen

    if days < 1 or events_per_day < 1000:
        raise OptionError("the demo needs --days >= 1 and --events-per-day >= 1000")
    started = time.perf_counter()
    out_dir = Path(out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    lake = out_dir / "lake"
    say = print if echo else (lambda *a, **k: None)
    say(f"generating {days} day(s) x {events_per_day:,} events into {lake} ...", flush=True)
    summary = datagen.generate(lake, days=days, events_per_day=events_per_day, seed=seed, overwrite=True)
    report = DemoReport(out=out_dir, lake=lake, notebook=out_dir / NOTEBOOK,
                        html=out_dir / NOTEBOOK.replace(".ipynb", ".html"), rows=dict(summary.rows))
    say(f"running {NOTEBOOK} ...", flush=True)
    _execute_notebook(find_notebook(), report.notebook, report.html, lake, timeout)
    truth = json.loads((lake / "_truth.json").read_text(encoding="utf-8"))
    report.findings = score(lake, truth)
    report.elapsed = time.perf_counter() - started
    say(str(report))
    return report


def _execute_notebook(src: Path, dest: Path, html: Path, lake: Path, timeout: int) -> None:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from nbconvert import HTMLExporter

    nb = nbformat.read(src, as_version=4)
    previous = os.environ.get("KQLMAGIC_PLUS_DEMO_LAKE")
    os.environ["KQLMAGIC_PLUS_DEMO_LAKE"] = str(lake)  # the kernel inherits it
    # The kernel's own stderr (ipykernel warns about its loopback TCP transport at every start) goes
    # to a file that is shown only when the notebook cannot run.
    with tempfile.TemporaryFile(mode="w+") as kernel_log:
        try:
            client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                    resources={"metadata": {"path": str(dest.parent)}})
            client.execute(stderr=kernel_log)
        except CellExecutionError as exc:
            first = str(exc).strip().splitlines()
            raise DemoError(f"a cell of {src.name} failed: {first[-1] if first else exc}") from None
        except Exception as exc:  # kernel start-up problems must say what to do
            kernel_log.seek(0)
            said = [line.strip() for line in kernel_log.read().splitlines() if line.strip()]
            raise DemoError(f"could not run {src.name}: {type(exc).__name__}: {exc} "
                            f"(is ipykernel installed for {sys.executable}?)"
                            + (f"; the kernel said: {said[-1]}" if said else "")) from None
        finally:
            if previous is None:
                os.environ.pop("KQLMAGIC_PLUS_DEMO_LAKE", None)
            else:
                os.environ["KQLMAGIC_PLUS_DEMO_LAKE"] = previous
    nbformat.write(nb, dest)
    # No CDN script tags: the page must open offline (plotly.js is embedded in the first chart).
    body, _ = HTMLExporter(mathjax_url="", require_js_url="").from_notebook_node(nb)
    html.write_text(body, encoding="utf-8")


def score(lake: Path, truth: dict[str, Any]) -> list[Finding]:
    """Run the tour's hunts through the Python API and compare with the planted ground truth."""
    from kqlmagic_plus import api

    conn = f"lake://{lake}"
    by_id = {a["id"]: a for a in truth.get("attacks", [])}
    findings: list[Finding] = []
    spray = by_id.get("password_spray")
    if spray:
        r = api.kql('SigninLogs | where ResultType == "50126" | summarize A = dcount(UserPrincipalName) '
                    "by IPAddress | where A >= 10", conn=conn)
        found = sorted(r.df["IPAddress"].tolist())
        want = spray.get("IPAddress") or spray.get("source_ip")
        findings.append(Finding("password spray", str(want), ", ".join(found) or "nothing", want in found))
    masq = by_id.get("masquerading_process")
    if masq:
        r = api.kql("SecurityEvent | where EventID == 4688 | extend P = tolower(extract(@\"([^\\\\]+)$\", 1, "
                    'NewProcessName)) | where P in ("svch0st.exe", "scvhost.exe", "svchosts.exe", "lsasss.exe", '
                    '"expl0rer.exe") | distinct NewProcessName', conn=conn)
        found = r.df["NewProcessName"].tolist()
        want = masq.get("NewProcessName") or masq.get("process")
        findings.append(Finding("masquerading process", str(want), ", ".join(found) or "nothing", want in found))
    rare = by_id.get("rare_process")
    if rare:
        r = api.kql("SecurityEvent | where EventID == 4688 | summarize n = count() by NewProcessName "
                    "| where n == 1", conn=conn)
        found = r.df["NewProcessName"].tolist()
        want = rare.get("NewProcessName") or rare.get("process")
        findings.append(Finding("rare process", str(want), f"{len(found)} singleton(s)", want in found))
    beacon = by_id.get("beacon")
    if beacon:
        findings.append(_score_beacon(lake, beacon))
    return findings


def _score_beacon(lake: Path, beacon: dict[str, Any]) -> Finding:
    want = sorted({(p["SourceIP"], p["DestinationIP"]) for p in beacon.get("pairs", [])
                   if p.get("expected") == "flagged"})
    expected = f"{len(want)} flagged pairs"
    try:
        from kqlmagic_plus import hunts
    except ImportError:
        return Finding("C2 beacon", expected, "beacon hunt not available in this build", False)
    last = max(p["last_seen"] for p in beacon["pairs"])[:10]
    r = hunts.run_hunt("beacon", lake=str(lake), end_date=last)
    got = sorted(zip(r.df["SourceIP"], r.df["DestinationIP"], strict=True))
    missed = [p for p in want if p not in got]
    extra = [p for p in got if p not in want]
    found = f"{len(got)} flagged" + (f", {len(missed)} missed" if missed else "") + \
        (f", {len(extra)} unexpected" if extra else "")
    return Finding("C2 beacon", expected, found, not missed and not extra)
