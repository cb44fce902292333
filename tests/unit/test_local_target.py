"""Homes that share one builder storage (GOVERNANCE_IMAGE_STORAGE) share its container namespace."""

from __future__ import annotations

from pathlib import Path

from governance.config import load_estate
from governance.releases.local import LocalTarget
from tests.conftest import ESTATE_FILE
from tests.release_evidence import RELEASE, candidate


def _target(home: Path) -> LocalTarget:
    spec = load_estate(ESTATE_FILE).release(RELEASE)
    directory = home / "releases" / RELEASE
    return LocalTarget(spec, directory, storage=None, model_dir=lambda c: None, upstreams={})  # type: ignore[arg-type]


def test_two_homes_name_their_containers_apart_and_version_a_candidate_alike(tmp_path: Path) -> None:
    first, second = _target(tmp_path / "first"), _target(tmp_path / "second")
    names = {target.container_name(color) for target in (first, second) for color in ("blue", "green")}
    assert len(names) == 4  # a deploy in one home never replaces the other's container
    assert first.container_name("blue") == _target(tmp_path / "first").container_name("blue")
    served = candidate("127.0.0.1:5000/penguins/model-server@sha256:" + "ab" * 32, "1")
    assert first.render(served) == second.render(served)  # the release version names no home
    assert not any(name in first.render(served) for name in names)


def test_a_service_down_after_a_restart_still_routes_to_its_color(tmp_path: Path) -> None:
    """nginx's configuration says which color the service routes to, running or not: after the
    machine restarts the release is down, not unreleased, so self-heal brings it back."""
    target = _target(tmp_path)
    assert target.active_color() is None  # never switched
    target.nginx_dir.mkdir(parents=True)
    (target.nginx_dir / "upstream.conf").write_text("# color: green\nserver 127.0.0.1:1;\n")
    (target.nginx_dir / "nginx.pid").write_text("999999999\n")  # the pid of a process that is gone
    assert target.active_color() == "green"
