"""A real browser for the end-to-end tests: Playwright driving Debian's Chromium (scripts/setup.sh
installs it; Playwright's own browser download cannot work here), with a screenshot per step.

Screenshots go to `$GOVERNANCE_TOUR_DIR` when set (`make tour` refreshes the README's tour in
docs/tour), else beside the test's other files.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps dialling Google's hosts, which this
# machine's closed network refuses, many at a time.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class Tour:
    """One page of Chromium, and the numbered screenshots of what it was shown."""

    def __init__(self, page: Page, directory: Path) -> None:
        self.page = page
        self.directory = directory
        self.shots: list[Path] = []

    def shot(self, name: str, *, full_page: bool = False) -> Path:
        path = self.directory / f"{len(self.shots) + 1:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        self.shots.append(path)
        return path

    def open(self, url: str) -> int:
        """Load `url`, give its scripts a moment to fetch what they show (an app that polls, such
        as MLflow's, never falls quiet), and return its HTTP status (0 when nothing answered)."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        if url.split("#")[0] == self.page.url.split("#")[0]:
            self.page.goto("about:blank")  # a new fragment alone would load nothing to check
        response = self.page.goto(url, wait_until="load", timeout=60_000)
        with contextlib.suppress(PlaywrightTimeout):
            self.page.wait_for_load_state("networkidle", timeout=10_000)
        return response.status if response is not None else 0

    def step_away(self) -> None:
        """Leave the page for a blank one while a long run goes, as a person switches tabs: the UI
        polls the webserver every few seconds, and Chromium re-renders every answer (the UI test's
        Chromium took 151 CPU-s with the pages left open, 81 stepping away, beside the builds)."""
        self.page.goto("about:blank")

    def dismiss_dagster_welcome(self) -> None:
        """The community dialog Dagster shows a new browser once, a moment after the page loads."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        skip = self.page.get_by_role("button", name="Skip")
        try:
            skip.wait_for(timeout=15_000)
        except PlaywrightTimeout:
            return
        skip.click()
        skip.wait_for(state="detached")

    def text(self) -> str:
        return " ".join(self.page.inner_text("body").split())

    def type_run_config(self, config: str) -> None:
        """Replace the launchpad's run config with `config`, pasted as a person would (typed keys
        would be re-indented by the editor)."""
        self.page.locator(".CodeMirror").click()
        self.page.keyboard.press("Control+A")
        self.page.keyboard.insert_text(config)

    def launched_run_id(self) -> str:
        """The run a launchpad's *Launch Run* started: Dagster opens its page."""
        self.page.wait_for_url(re.compile(r".*/runs/[0-9a-f-]{36}"), timeout=60_000)
        match = re.search(r"/runs/([0-9a-f-]{36})", self.page.url)
        assert match, self.page.url
        return match.group(1)

    def launched_run_prefix(self) -> str:
        """The run id prefix from Dagster's "Launched run …" toast."""
        toast = self.page.get_by_text(re.compile(r"Launched run [0-9a-f]{8}"))
        toast.first.wait_for(timeout=60_000)
        match = re.search(r"Launched run ([0-9a-f]{8})", toast.first.inner_text())
        assert match, toast.first.inner_text()
        return match.group(1)


@contextmanager
def chromium(directory: Path) -> Iterator[Tour]:
    from playwright.sync_api import sync_playwright

    target = Path(os.environ.get("GOVERNANCE_TOUR_DIR") or directory)
    target.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.set_default_timeout(30_000)
            yield Tour(page, target)
        finally:
            browser.close()
