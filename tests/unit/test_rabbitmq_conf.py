"""deploy/rabbitmq/dp.conf is the broker's configuration in compose and in both Kubernetes flavours
(kustomize reads no file outside its directory, so the manifests repeat its lines: held equal here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.support.k8s import render

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CONF = DEPLOY / "rabbitmq" / "dp.conf"
CONF_D = "/etc/rabbitmq/conf.d/"


def _settings(text: str) -> dict[str, str]:
    """The `key = value` lines of a rabbitmq.conf (sysctl format), comments and blank lines left out."""
    pairs = (
        line.split("=", 1) for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    )
    return {key.strip(): value.strip() for key, value in pairs}


def _rendered(overlay: str) -> list[dict[str, Any]]:
    return render.build(DEPLOY / "k8s" / "overlays" / overlay)  # type: ignore[no-any-return]


def test_the_conf_sets_a_wal_smaller_than_rabbitmqs_default() -> None:
    wal = int(_settings(CONF.read_text(encoding="utf-8"))["raft.wal_max_size_bytes"])
    assert wal < 512 * 1024 * 1024


def test_compose_mounts_the_conf_into_the_brokers_conf_d() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    mounts = [v.split(":") for v in compose["services"]["rabbitmq"]["volumes"]]
    assert [m[1].startswith(CONF_D) and m[2] == "ro" for m in mounts if m[0] == "./rabbitmq/dp.conf"] == [
        True
    ]


def test_the_statefulset_flavour_mounts_the_same_settings() -> None:
    resources = {(r["kind"], r["metadata"]["name"]): r for r in _rendered("statefulsets")}
    data = resources[("ConfigMap", "dp-rabbitmq-conf")]["data"]
    assert [_settings(text) for text in data.values()] == [_settings(CONF.read_text(encoding="utf-8"))]
    pod = resources[("StatefulSet", "dp-rabbitmq")]["spec"]["template"]["spec"]
    volume = next(
        v["name"] for v in pod["volumes"] if v.get("configMap", {}).get("name") == "dp-rabbitmq-conf"
    )
    mounts = [m for c in pod["containers"] for m in c["volumeMounts"] if m["name"] == volume]
    assert [(m["mountPath"].startswith(CONF_D), m["subPath"] in data) for m in mounts] == [(True, True)]


def test_the_operator_flavour_gives_the_cluster_the_same_settings() -> None:
    cluster = next(r for r in _rendered("operators") if r["kind"] == "RabbitmqCluster")
    additional = cluster["spec"]["rabbitmq"]["additionalConfig"]
    assert _settings(additional) == _settings(CONF.read_text(encoding="utf-8"))
