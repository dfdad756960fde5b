"""Fixtures for browser tests: Debian's chromium, driven by Playwright, offline, every request recorded.

Import the fixture into a test module (``from browser import chromium``). Pages only ever get
``file://`` content; any other request is aborted *and* recorded, so a test can assert that nothing
tried to leave the page. A missing chromium fails the test (it is part of the test environment),
with the command that installs it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

#: Flags for a quiet, offline, sandbox-less headless chromium (containers have no user namespaces).
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)

#: Where screenshots go (gitignored).
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def chromium_executable() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("Debian's chromium is not installed; browser tests need it: apt-get install chromium",
                    pytrace=False)
    return path


def _is_local(url: str) -> bool:
    return url.startswith(("file:", "data:", "blob:", "about:"))


@dataclass
class OfflinePage:
    """A Playwright page plus what it asked the network for and what went wrong in it."""

    page: Any
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def outside_requests(self) -> list[str]:
        """Requests for anything but local content (all of them were aborted)."""
        return [u for u in self.requests if not _is_local(u)]

    def open(self, path: Path, ready: str | None = None, timeout_ms: int = 60_000) -> None:
        """Load a local file; wait until the JS expression *ready* is true."""
        self.page.goto(path.resolve().as_uri())
        if ready is not None:
            self.page.wait_for_function(ready, timeout=timeout_ms)

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        out = ARTIFACTS / name
        self.page.screenshot(path=str(out), full_page=True)
        return out


@dataclass
class Chromium:
    context: Any
    _pages: list[OfflinePage] = field(default_factory=list)

    def new_page(self) -> OfflinePage:
        page = self.context.new_page()
        wrapped = OfflinePage(page)
        page.on("request", lambda req: wrapped.requests.append(req.url))
        page.on("pageerror", lambda exc: wrapped.errors.append(str(exc)))
        page.on("console", lambda msg: wrapped.errors.append(msg.text) if msg.type == "error" else None)
        page.route(lambda url: not _is_local(url), lambda route: route.abort())
        self._pages.append(wrapped)
        return wrapped


def launch(profile_dir: Path) -> Iterator[Chromium]:
    """A headless chromium with a fresh profile in *profile_dir*; closed when the generator ends."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is not installed: pip install playwright (the browser itself comes from "
                    "apt-get install chromium)", pytrace=False)
    executable = chromium_executable()
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile_dir), executable_path=executable, headless=True, args=list(CHROMIUM_FLAGS),
            viewport={"width": 1200, "height": 900}, service_workers="block")
        try:
            yield Chromium(context)
        finally:
            context.close()


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    """One browser per test module; each test opens its own page with ``chromium.new_page()``."""
    yield from launch(tmp_path_factory.mktemp("chromium-profile"))


def wait_for_all(selector: str, predicate: str) -> str:
    """A JS expression: every element matching *selector* satisfies *predicate* (``el => ...``)."""
    sel = selector.replace('"', '\\"')
    return f'Array.from(document.querySelectorAll("{sel}")).every({predicate})'


__all__ = ["ARTIFACTS", "CHROMIUM_FLAGS", "Chromium", "OfflinePage", "chromium", "chromium_executable",
           "launch", "wait_for_all"]
