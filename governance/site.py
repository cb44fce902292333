"""The platform's own pages over HTTP on loopback: Data Docs, the lineage graph and explorer, each
release's provenance.

A browser will not follow a `file://` link from the Dagster UI's `http://` page, so every page a
metadata link points to is served here, read-only, from the home: only these trees, only page
files (never the stores beside them: the outbox, the audit log, release state). A generated page
(the lineage explorer and graph) is built on each request from the stores, so it is never stale.
"""

from __future__ import annotations

import html
import http.server
import os
import signal
import sys
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from governance import background
from governance.errors import GovernanceError, PermanentError
from governance.home import GovernanceHome
from governance.redaction import redact
from governance.site_vendor import PREFIX, Vendor

DEFAULT_SITE_URL = "http://127.0.0.1:3070"
PAGE_SUFFIXES = frozenset(
    {".html", ".css", ".js", ".svg", ".png", ".jpg", ".gif", ".ico", ".woff", ".woff2", ".ttf"}
)


@dataclass(frozen=True)
class Site:
    base_url: str
    home: GovernanceHome
    generated: Mapping[str, Callable[[], bytes]] = field(default_factory=dict)  # path -> its body
    vendor: Vendor | None = None  # Data Docs' styles and scripts, instead of their CDNs

    def page_url(self, path: str) -> str:
        """The URL of a generated page (`lineage/explorer.html`)."""
        if path not in self.generated:
            raise PermanentError(f"{path} is not a page the platform's site generates")
        return f"{self.base_url.rstrip('/')}/{path}"

    def roots(self) -> dict[str, Path]:
        """URL prefix -> the directory of the home it serves."""
        return {
            "data-docs": self.home.gx
            / "gx"
            / "uncommitted"
            / "data_docs"
            / "local_site",  # GX nests its context
            "lineage": self.home.lineage,
            "releases": self.home.dir("releases"),
        }

    def url(self, target: Path | str) -> str:
        """The http URL of a page under one of the served trees (a path or a `file://` URL)."""
        text = str(target)
        path = Path(urllib.parse.unquote(urllib.parse.urlparse(text).path) if "://" in text else text)
        resolved = path.resolve()
        for prefix, root in self.roots().items():
            if resolved.is_relative_to(root.resolve()) and resolved.suffix in PAGE_SUFFIXES:
                relative = resolved.relative_to(root.resolve()).as_posix()
                return f"{self.base_url.rstrip('/')}/{prefix}/{urllib.parse.quote(relative)}"
        raise PermanentError(f"{path} is not a page the platform's site serves")

    def local_path(self, url_path: str) -> Path | None:
        """The file a request path names, or None: outside the trees, not a page, or missing."""
        prefix, _, rest = urllib.parse.unquote(url_path.split("?", 1)[0]).lstrip("/").partition("/")
        root = self.roots().get(prefix)
        if root is None:
            return None
        path = (root / rest).resolve()
        if rest.endswith("/") or not rest:
            path = path / "index.html"
        if not path.is_relative_to(root.resolve()) or path.suffix not in PAGE_SUFFIXES:
            return None
        return path if path.is_file() else None

    def address(self) -> tuple[str, int]:
        """Where to listen: loopback only, since the pages hold audit records and lineage and the
        site has no authentication of its own (put a proxy with one in front to share it)."""
        parsed = urllib.parse.urlparse(self.base_url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise PermanentError(f"the site URL must be an http URL with a host, not {self.base_url!r}")
        if not _loopback(parsed.hostname):
            raise PermanentError(
                f"the site listens on loopback only, not {parsed.hostname!r}: it has no "
                "authentication (use 127.0.0.1 and a proxy with one to share it)"
            )
        return parsed.hostname, parsed.port or 80

    def answering(self, timeout_s: float = 2.0) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url.rstrip('/')}/", timeout=timeout_s) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(site: Site) -> None:
    """Serve the site in this process until it is stopped. Data Docs' styles are fetched first
    (once per machine); without them the pages still open, unstyled, and the index says why."""
    host, port = site.address()
    # Stoppable whatever its launcher ignored (a background job of a script ignores SIGINT, a CI
    # runner may ignore SIGTERM): `site stop` and Ctrl-C must end it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    problems = site.vendor.fetch() if site.vendor else []
    for problem in problems:
        print(f"Data Docs styles unavailable: {problem}", file=sys.stderr, flush=True)

    hosts = {f"{host}:{port}", *([host] if port == 80 else [])}

    class Pages(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.headers.get("Host") not in hosts:  # a rebound DNS name from another page
                self._send(421, "text/plain; charset=utf-8", b"misdirected request\n")
                return
            requested = urllib.parse.unquote(self.path.split("?", 1)[0]).lstrip("/")
            if not requested:
                self._send(200, "text/html; charset=utf-8", _index(site, problems).encode())
                return
            if requested in site.generated:
                try:
                    body = site.generated[requested]()
                except GovernanceError as exc:  # a store it is built from is unusable: say which
                    self._send(503, "text/plain; charset=utf-8", f"{redact(str(exc))}\n".encode())
                    return
                self._send(200, _TYPES.get(Path(requested).suffix, "text/plain"), body)
                return
            path = site.local_path(self.path)
            if path is None and site.vendor and self.path.startswith(PREFIX):
                path = site.vendor.file(urllib.parse.unquote(self.path.split("?", 1)[0]))
            if path is None or path.suffix not in PAGE_SUFFIXES:
                self._send(404, "text/plain; charset=utf-8", b"not found\n")
                return
            body = path.read_bytes()
            if site.vendor and path.suffix == ".html" and requested.startswith("data-docs/"):
                body = site.vendor.rewrite(body.decode("utf-8", "replace")).encode()
            self._send(200, _TYPES.get(path.suffix, "application/octet-stream"), body)

        def _send(self, status: int, kind: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # quiet: `make dev`'s terminal belongs to Dagster

    http.server.ThreadingHTTPServer((host, port), Pages).serve_forever()


def start(site: Site, timeout_s: float = 120.0) -> int | None:
    """Start the site in the background unless it answers already; returns the new pid. The first
    start on a machine also fetches Data Docs' styles (about 18 MB from the npm registry)."""
    if site.answering():
        return None
    site.address()  # a bad URL is refused here, not in the background
    return background.start(
        [sys.executable, "-m", "governance", "site", "serve", "--url", site.base_url],
        directory=site.home.root,
        name="site",
        answering=lambda: site.answering(timeout_s=1),
        what=f"the site at {site.base_url}",
        timeout_s=timeout_s,
        env={**os.environ, "GOVERNANCE_HOME": str(site.home.root), "GOVERNANCE_CLI_WORKER": "off"},
    )


def stop(home: GovernanceHome) -> bool:
    return background.stop(home.root, "site")


_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".gif": "image/gif",
    ".ico": "image/x-icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
}


def _index(site: Site, problems: list[str]) -> str:
    links = [
        ("data-docs/index.html", "Data Docs: every validation of every dataset"),
        ("lineage/explorer.html", "Lineage explorer: every version, its facets and audit records"),
        ("lineage/lineage.svg", "Lineage graph"),
    ]
    releases = sorted(p.parent.name for p in site.roots()["releases"].glob("*/provenance.html"))
    links += [(f"releases/{name}/provenance.html", f"Provenance of release {name}") for name in releases]
    items = "".join(f'<li><a href="/{href}">{html.escape(text)}</a></li>' for href, text in links)
    head = "<!doctype html><meta charset=utf-8><title>Governance</title><h1>Governance</h1>"
    notes = "".join(f"<p>Data Docs styles unavailable: {html.escape(p)}</p>" for p in problems)
    return f"{head}<ul>{items}</ul>{notes}"
