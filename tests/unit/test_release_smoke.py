"""A release's smoke request waits as long as its spec says: a fresh color's first answer, or a page
that asks its model service before it answers, is slow and still right."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from governance.config import LocalTargetSpec, load_estate
from governance.releases.controller import smoke_request
from governance.releases.local import LocalTarget
from tests.conftest import ESTATE_FILE, REPO

WEB = "penguin_web"
SLOW_S = 1.0
PAGE = b'<p data-testid="species">Adelie</p><p data-testid="model-version">penguin-classifier/1</p>'


class SlowPage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        time.sleep(SLOW_S)
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def slow_service() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("timeout_s", "ok"), [(SLOW_S / 4, False), (SLOW_S * 5, True)])
def test_the_smoke_request_waits_as_long_as_its_spec_says(
    tmp_path: Path, slow_service: int, timeout_s: float, ok: bool
) -> None:
    spec = load_estate(ESTATE_FILE).release(WEB)
    spec = spec.model_copy(update={"local": LocalTargetSpec(service_port=slow_service)})
    target = LocalTarget(spec, tmp_path, storage=None, model_dir=lambda c: None, upstreams={})  # type: ignore[arg-type]
    answer = smoke_request(target, spec.smoke.model_copy(update={"timeout_s": timeout_s}), None)
    assert answer.ok is ok, answer.detail
    assert ok or "timed out" in answer.detail


def test_the_web_release_outwaits_its_pages_own_call_to_the_model_service() -> None:
    """Were the smoke request to give up first, a page slowed by its model service would be
    refused though it would have answered."""
    source = (REPO / "examples/penguins/apps/frontend/apps/web/lib/model-service.ts").read_text()
    found = re.search(r"const TIMEOUT_MS = ([\d_]+);", source)
    assert found is not None, "the page's call to the model service has no timeout to compare"
    page_s = int(found.group(1).replace("_", "")) / 1000
    assert load_estate(ESTATE_FILE).release(WEB).smoke.timeout_s > page_s
