"""The platform's site: the pages metadata links point to, over HTTP on loopback, and nothing else of
the home (its stores sit beside the pages)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from governance.errors import PermanentError
from governance.home import GovernanceHome
from governance.site import Site
from tests.browser import chromium
from tests.conftest import run_governance
from tests.services import free_port


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


def test_the_site_serves_pages_and_never_the_stores_beside_them(home: Path) -> None:
    governed = GovernanceHome(home)
    site = Site(f"http://127.0.0.1:{free_port()}", governed)
    docs = site.roots()["data-docs"]
    (docs / "validations" / "penguins").mkdir(parents=True)
    (docs / "index.html").write_text("<h1>Data Docs</h1>")
    page = docs / "validations" / "penguins" / "run 1.html"
    page.write_text("<p>23 expectations</p>")
    (docs / "styles.css").write_text("body{}")
    (governed.lineage / "lineage.svg").write_text("<svg/>")
    (governed.lineage / "outbox.db").write_bytes(b"SQLite format 3\x00")
    release = site.roots()["releases"] / "penguin_service"
    release.mkdir()
    (release / "provenance.html").write_text("<table></table>")
    (release / "state.json").write_text("{}")
    (home / "audit.db").write_bytes(b"SQLite format 3\x00")

    started = run_governance("site", "start", "--url", site.base_url)
    assert started.returncode == 0 and "started" in started.stdout, started.stderr
    try:
        url = site.url(page.as_uri())  # a file:// link, as Great Expectations gives it
        assert url == f"{site.base_url}/data-docs/validations/penguins/run%201.html"
        assert get(url) == (200, "text/html; charset=utf-8", b"<p>23 expectations</p>")
        assert get(f"{site.base_url}/data-docs/")[2] == b"<h1>Data Docs</h1>"
        assert get(f"{site.base_url}/data-docs/styles.css")[:2] == (200, "text/css")
        for built in ("lineage/lineage.svg", "lineage/explorer.html"):  # built live from the outbox,
            status, kind, body = get(f"{site.base_url}/{built}")  # which is no database here
            assert (status, kind) == (503, "text/plain; charset=utf-8"), built
            assert b"outbox.db cannot be used" in body and b"Traceback" not in body
        index = get(f"{site.base_url}/")[2].decode()
        assert 'href="/releases/penguin_service/provenance.html"' in index
        for refused in (
            "/lineage/outbox.db",
            "/releases/penguin_service/state.json",
            "/lineage/../audit.db",
            "/lineage/%2e%2e/audit.db",
            "/data-docs/../../audit.db",
            "/elsewhere/index.html",
            "/lineage/missing.svg",
        ):
            assert get(site.base_url + refused)[0] == 404, refused
        rebound = urllib.request.Request(f"{site.base_url}/", headers={"Host": "evil.example:80"})
        with pytest.raises(urllib.error.HTTPError, match="421"):
            urllib.request.urlopen(rebound, timeout=10)  # a page elsewhere, via a rebound name
        again = run_governance("site", "start", "--url", site.base_url)
        assert again.returncode == 0 and f"site answering at {site.base_url}" in again.stdout
    finally:
        stopped = run_governance("site", "stop")
        assert stopped.returncode == 0 and "site stopped" in stopped.stdout
    with pytest.raises(PermanentError, match="not a page the platform's site serves"):
        site.url(home / "audit.db")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://127.0.0.1:21", "must be an http URL with a host"),
        ("http://0.0.0.0:3070", "listens on loopback only, not '0.0.0.0'"),
        ("http://example.com:3070", "listens on loopback only"),
    ],
)
def test_a_site_url_it_must_not_serve_is_refused_before_anything_starts(
    home: Path, url: str, message: str
) -> None:
    refused = run_governance("site", "start", "--url", url)
    assert refused.returncode == 2 and message in refused.stderr, refused.stderr
    assert not (home / "site.pid").exists()


def test_a_real_validations_data_docs_page_opens_styled_and_offline(
    home: Path, clean_csv: Path, tmp_path: Path
) -> None:
    """In Chromium: every request the page makes goes to the site (its styles and scripts from the
    pinned npm packages, not the CDNs GX names; GX's tracking logo gone), and Bootstrap styles it."""
    validated = run_governance("datasets", "validate", "penguins", str(clean_csv))
    assert validated.returncode == 0, validated.stderr
    (file_url,) = [
        line.removeprefix("data docs: ") for line in validated.stdout.splitlines() if "data docs" in line
    ]
    site = Site(f"http://127.0.0.1:{free_port()}", GovernanceHome(home))
    assert run_governance("site", "start", "--url", site.base_url).returncode == 0
    try:
        status, kind, body = get(site.url(file_url))
        assert (status, kind) == (200, "text/html; charset=utf-8") and b"penguins" in body
        assert b"cdn.jsdelivr.net" not in body and b"great-expectations-web-assets" not in body
        with chromium(tmp_path / "tour") as tour:
            requested: list[str] = []
            tour.page.on("request", lambda request: requested.append(request.url))
            assert tour.open(site.url(file_url)) == 200
            tour.page.wait_for_load_state("networkidle")
            tour.shot("data-docs")
            font = tour.page.evaluate("getComputedStyle(document.body).fontFamily")
        outside = [url for url in requested if not url.startswith(site.base_url)]
        assert outside == [], outside
        assert any("/vendor/bootstrap@4.3.1/dist/css/bootstrap.min.css" in url for url in requested)
        assert "Segoe UI" in font  # Bootstrap 4's font stack, so its stylesheet applied
    finally:
        run_governance("site", "stop")


def test_site_stop_ends_a_site_started_where_sigterm_is_ignored(home: Path) -> None:
    """A background job of a script, or a CI runner, may hand its children SIGTERM ignored."""
    url = f"http://127.0.0.1:{free_port()}"
    governance = Path(sys.executable).parent / "governance"
    started = subprocess.run(
        ["bash", "-c", f"trap '' TERM INT; '{governance}' site start --url {url}"],
        capture_output=True, text=True, timeout=180,
        env={**os.environ, "GOVERNANCE_CLI_WORKER": "off"},
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    pid = int((home / "site.pid").read_text())
    assert run_governance("site", "stop").returncode == 0
    deadline = time.monotonic() + 10
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _running(pid)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")
