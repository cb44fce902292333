"""The Kubernetes release baseline (`applied.yaml`) as stored state: whatever is in the file,
`release status` gets the drift or one clear error naming the file, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from governance.errors import ConfigError
from governance.releases.baseline import _differences, _read_baseline


@pytest.mark.parametrize(
    "content",
    [
        "a: [unclosed",
        "- kind: Deployment\n  metadata: {name: x}\n",  # no apiVersion
        "{kind: Deployment}",
        "- 1\n- 2\n",
        "- apiVersion: v1\n  kind: Service\n  metadata: 7\n",
        "\x00",
        "x: " + "[" * 5000,
    ],
)
def test_a_damaged_baseline_is_refused_naming_the_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "applied.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=r"applied\.yaml"):
        _read_baseline(path)


def test_differences_name_only_what_the_baseline_sets_and_the_controller_does_not_manage() -> None:
    applied = {
        "replicas": 1,
        "template": {
            "metadata": {"labels": {"app.kubernetes.io/version": "1.0.0", "color": "blue"}},
            "spec": {
                "containers": [
                    {"name": "model-server", "image": "x@sha256:0", "env": [{"name": "PORT", "value": "8000"}],
                     "resources": {"limits": {"memory": "768Mi"}}},
                ]
            },
        },
    }  # fmt: skip
    live = {
        "replicas": 3,  # the controller's
        "progressDeadlineSeconds": 600,  # the cluster's default, not in the baseline
        "template": {
            "metadata": {"labels": {"app.kubernetes.io/version": "release-1", "color": "blue"}},
            "spec": {
                "containers": [
                    {"name": "model-server", "image": "y@sha256:1",
                     "env": [{"name": "MODEL_URI", "value": "models:/m/2"}, {"name": "PORT", "value": "8080"}],
                     "resources": {"limits": {"memory": "2Gi"}}},
                ]
            },
        },
    }  # fmt: skip
    assert _differences(applied, live, "spec") == [
        "spec.template.spec.containers[model-server].env[PORT].value is '8080' on the cluster, '8000' as applied",
        "spec.template.spec.containers[model-server].resources.limits.memory is '2Gi' on the cluster, '768Mi' as applied",
    ]
