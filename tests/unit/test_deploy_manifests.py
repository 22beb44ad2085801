"""The deployment files: kustomize output, Kubernetes schemas (offline), probes, configuration coverage,
compose and the image. No network, no cluster, no Docker engine."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = sorted(p.parent.name for p in (K8S / "overlays").glob("*/kustomization.yaml"))
KUBERNETES_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
SERVICE_DEPLOYMENTS = {
    "dp-gateway": "shared.settings.GatewaySettings",
    "dp-scheduler": "shared.settings.SchedulerSettings",
    "dp-step-runner": "shared.settings.RunnerSettings",
    "dp-log-collector": "shared.settings.CollectorSettings",
}
# Custom resources have no schema in kubernetes-validate: their required keys are checked here.
CRD_REQUIRED: dict[str, list[str]] = {
    "RabbitmqCluster": ["spec.replicas", "spec.image", "spec.persistence.storage"],
    "Cluster": ["spec.instances", "spec.imageName", "spec.storage.size", "spec.bootstrap.initdb.database"],
    "ScaledObject": ["spec.scaleTargetRef.name", "spec.triggers"],
    "TriggerAuthentication": ["spec.secretTargetRef"],
}


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


render = _load("dp_k8s_render", K8S / "render.py")
settings_env = _load("dp_k8s_settings_env", K8S / "settings_env.py")


def _dig(node: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _by_key(resources: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["kind"], r["metadata"]["name"]): r for r in resources}


def _pod_spec(resource: dict[str, Any]) -> dict[str, Any] | None:
    if resource["kind"] == "CronJob":
        return resource["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    if resource["kind"] in {"Deployment", "StatefulSet", "Job", "DaemonSet"}:
        return resource["spec"]["template"]["spec"]
    return None


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> dict[tuple[str, str], dict[str, Any]]:
    return _by_key(render.build(K8S / "overlays" / request.param))


@pytest.fixture(scope="module")
def base() -> dict[tuple[str, str], dict[str, Any]]:
    return _by_key(render.build(K8S / "base"))


def test_there_are_overlays_for_both_datastore_flavours() -> None:
    assert {"operators", "statefulsets"} <= set(OVERLAYS)


@pytest.mark.parametrize("target", ["base", *(f"overlays/{o}" for o in OVERLAYS)])
def test_render_matches_kustomize_when_available(target: str) -> None:
    kubectl = shutil.which("kubectl")
    kustomize = shutil.which("kustomize")
    if not (kubectl or kustomize):
        pytest.skip("no kustomize binary on this machine: render.py alone builds the manifests")
    command = [kustomize, "build"] if kustomize else [kubectl, "kustomize"]
    out = subprocess.run(
        [*command, str(K8S / target)], capture_output=True, text=True, check=True, timeout=120
    )
    theirs = _by_key([d for d in yaml.safe_load_all(out.stdout) if d])
    mine = _by_key(render.build(K8S / target))
    assert mine.keys() == theirs.keys()
    for key in mine:
        assert mine[key] == theirs[key], key


def test_every_manifest_is_valid_against_the_kubernetes_schemas(rendered: dict) -> None:
    for version in KUBERNETES_VERSIONS:
        for (kind, name), resource in rendered.items():
            try:
                kubernetes_validate.validate(resource, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                assert kind in CRD_REQUIRED, f"{kind} {name}: no schema and not a known custom resource"
                missing = [path for path in CRD_REQUIRED[kind] if _dig(resource, path) in (None, "", [])]
                assert not missing, f"{kind} {name} lacks {missing}"
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{kind} {name} (Kubernetes {version}): {exc.message} at {list(exc.path)}")


def test_components_exist_and_hpa_and_keda_never_target_the_same_deployment(rendered: dict) -> None:
    hpa = {
        r["spec"]["scaleTargetRef"]["name"]
        for (k, _), r in rendered.items()
        if k == "HorizontalPodAutoscaler"
    }
    keda = {r["spec"]["scaleTargetRef"]["name"] for (k, _), r in rendered.items() if k == "ScaledObject"}
    assert hpa or keda, "step runners must autoscale"
    assert not hpa & keda


def test_keda_scales_on_the_steps_queue(base: dict) -> None:
    resources = _by_key(render.build(K8S / "components" / "keda", list(base.values())))
    scaled = resources[("ScaledObject", "dp-step-runner")]
    prefix = base[("ConfigMap", "dp-config")]["data"]["DP_BROKER_PREFIX"]
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "rabbitmq"
    assert trigger["metadata"]["queueName"] == f"{prefix}.steps"
    assert scaled["spec"]["scaleTargetRef"]["name"] == "dp-step-runner"
    auth = resources[("TriggerAuthentication", trigger["authenticationRef"]["name"])]
    for ref in auth["spec"]["secretTargetRef"]:
        assert ref["key"] in base[("Secret", ref["name"])]["stringData"]


def test_hpa_component_renders_against_base(base: dict) -> None:
    resources = _by_key(render.build(K8S / "components" / "hpa", list(base.values())))
    hpa = resources[("HorizontalPodAutoscaler", "dp-step-runner")]
    kubernetes_validate.validate(hpa, KUBERNETES_VERSIONS[-1], strict=True)
    assert ("Deployment", hpa["spec"]["scaleTargetRef"]["name"]) in resources


def test_services_have_probes_on_their_real_health_endpoints(rendered: dict) -> None:
    config = rendered[("ConfigMap", "dp-config")]["data"]
    for name, cls_path in SERVICE_DEPLOYMENTS.items():
        fields = _settings_class(cls_path).model_fields
        (container,) = rendered[("Deployment", name)]["spec"]["template"]["spec"]["containers"]
        if "http_port" in fields:
            port = int(config["DP_HTTP_PORT"])
        elif "health_port" in fields:
            port = int(config["DP_HEALTH_PORT"])
        else:
            assert "livenessProbe" not in container, f"{name} serves no HTTP, its probe could never pass"
            continue
        ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            http = container[probe]["httpGet"]
            assert http["path"] == path, (name, probe)
            assert ports.get(http["port"], http["port"]) == port, (name, probe)


def test_termination_grace_outlasts_the_shutdown_grace(rendered: dict) -> None:
    config = rendered[("ConfigMap", "dp-config")]["data"]
    for name, cls_path in SERVICE_DEPLOYMENTS.items():
        fields = _settings_class(cls_path).model_fields
        spec = rendered[("Deployment", name)]["spec"]["template"]["spec"]
        grace = float(config.get("DP_SHUTDOWN_GRACE_SECONDS", 0)) if "shutdown_grace_seconds" in fields else 0
        assert spec["terminationGracePeriodSeconds"] >= grace + 10, name
    assert rendered[("Deployment", "dp-step-runner")]["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"
    ] > float(config["DP_SHUTDOWN_GRACE_SECONDS"])


def test_workloads_are_hardened_and_sized(rendered: dict) -> None:
    for (kind, name), resource in rendered.items():
        spec = _pod_spec(resource)
        if spec is None or not name.startswith("dp-") or kind == "StatefulSet":
            continue
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] != 0, name
        assert spec.get("serviceAccountName") == "dp-service", name
        for container in spec["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
            assert container["resources"]["requests"] and container["resources"]["limits"], name
            assert {"configMapRef": {"name": "dp-config"}} in container["envFrom"], name
            assert {"secretRef": {"name": "dp-secrets"}} in container["envFrom"], name


def test_scheduler_runs_two_replicas_and_every_service_has_a_disruption_budget(rendered: dict) -> None:
    assert rendered[("Deployment", "dp-scheduler")]["spec"]["replicas"] == 2
    for name in SERVICE_DEPLOYMENTS:
        labels = rendered[("Deployment", name)]["spec"]["selector"]["matchLabels"]
        assert rendered[("PodDisruptionBudget", name)]["spec"]["selector"]["matchLabels"] == labels


def test_task_volume_is_read_write_many_and_mounted_at_the_data_root(rendered: dict) -> None:
    pvc = rendered[("PersistentVolumeClaim", "dp-tasks")]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    data_root = rendered[("ConfigMap", "dp-config")]["data"]["DP_DATA_ROOT"]
    for name in ("dp-gateway", "dp-step-runner", "dp-log-collector"):
        spec = rendered[("Deployment", name)]["spec"]["template"]["spec"]
        claims = {
            v["name"]: v["persistentVolumeClaim"]["claimName"]
            for v in spec["volumes"]
            if "persistentVolumeClaim" in v
        }
        mounts = {m["mountPath"]: m["name"] for m in spec["containers"][0]["volumeMounts"]}
        assert claims.get(mounts.get(data_root)) == "dp-tasks", name


def test_migration_job_and_retention_cronjob(rendered: dict) -> None:
    job = rendered[("Job", "dp-migrate")]
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    cron = rendered[("CronJob", "dp-retention")]
    args = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:3] == ["dpctl", "task", "prune"] and "--older-than-days" in args
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"


def _settings_class(dotted: str) -> Any:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_every_variable_the_services_read_is_in_the_configmap_or_secret(base: dict) -> None:
    data, secret, unset = settings_env.base_config()
    variables = settings_env.env_vars()
    assert len(variables) > 30, "settings discovery found too little"
    per_workload_env = {
        e["name"]
        for r in base.values()
        if (spec := _pod_spec(r))
        for c in spec["containers"]
        for e in c.get("env", [])
    }
    missing = [
        v.name
        for v in variables
        if v.name not in data
        and v.name not in secret
        and v.name not in unset
        and v.name not in per_workload_env
    ]
    assert not missing, (
        f"add to deploy/k8s/base (see `python deploy/k8s/settings_env.py --missing`): {missing}"
    )
    leaked = [v.name for v in variables if v.secret and v.name in data]
    assert not leaked, f"secrets in the ConfigMap: {leaked}"
    defaults = {v.name: v.default for v in variables}
    for name in unset:
        assert name in defaults and defaults[name] is None, f"{name} is declared unset but has a default"
    # No stale or misspelt names: every DP_ key is read by some settings class (or belongs to a
    # settings module that is not written yet).
    _, absent = settings_env.settings_classes()
    pending_prefixes = {
        "services.step_runner.llm.settings": ("DP_LLM_",),
        "shared.embeddings": ("DP_EMBEDDING_",),
    }
    allowed = tuple(p for module in absent for p in pending_prefixes.get(module, ()))
    stale = [
        k for k in [*data, *secret] if k.startswith("DP_") and k not in defaults and not k.startswith(allowed)
    ]
    assert not stale, f"ConfigMap/Secret keys no settings class reads: {stale}"


def test_compose_file_parses_and_services_use_the_env_file() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["rabbitmq"]["image"] == "rabbitmq:3.13-management"
    assert any("15672" in str(p) for p in services["rabbitmq"]["ports"])
    for name in ("gateway", "scheduler", "step-runner", "log-collector", "migrate"):
        service = services[name]
        assert service["env_file"] == ["compose.env"], name
        assert service["command"][0] == name if name != "migrate" else service["command"] == ["migrate"]
        if name != "migrate":
            assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["step-runner"]["deploy"]["replicas"] == 2
    assert "tasks:/data/tasks" in services["step-runner"]["volumes"]
    env = dict(
        line.split("=", 1)
        for line in (DEPLOY / "compose.env").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    )
    known = {v.name for v in settings_env.env_vars()}
    assert {"DP_DATABASE_URL", "DP_RABBITMQ_URL", "DP_DATA_ROOT", "DP_HEALTH_PORT"} <= env.keys()
    assert not [k for k in env if k not in known], "compose.env sets variables nothing reads"


def test_dockerfile_is_multi_stage_and_runs_as_non_root() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, flags=re.MULTILINE | re.IGNORECASE)
    assert len(stages) >= 2
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in text
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    assert re.search(r'^ENTRYPOINT \["dp-service"\]', text, flags=re.MULTILINE)
    ignore = (REPO / ".dockerignore").read_text(encoding="utf-8")
    assert "!services/" in ignore and "!shared/" in ignore


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["gateway", "--x"], "dp-gateway --x"),
        (["scheduler"], "dp-scheduler"),
        (["step-runner"], "dp-step-runner"),
        (["log-collector"], "dp-log-collector"),
        (["migrate"], "dp-migrate"),
        (["rebuild"], "python -m services.log_collector.main rebuild"),
        (["demo-db"], "python -m services.step_runner.demo --url postgresql://db/dp_demo"),
        (["dpctl", "task", "list"], "dpctl task list"),
    ],
)
def test_entrypoint_dispatches_to_the_service(tmp_path: Path, command: list[str], expected: str) -> None:
    for stub in (
        "dp-gateway",
        "dp-scheduler",
        "dp-step-runner",
        "dp-log-collector",
        "dp-migrate",
        "python",
        "dpctl",
    ):
        path = tmp_path / stub
        path.write_text(f'#!/bin/sh\necho {stub} "$@"\n', encoding="utf-8")
        path.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "DP_DEMO_DATABASE_URL": "postgresql://db/dp_demo"}
    out = subprocess.run(
        ["sh", str(DEPLOY / "entrypoint.sh"), *command], capture_output=True, text=True, env=env, timeout=10
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == expected


def test_entrypoint_rejects_unknown_commands() -> None:
    env = {"PATH": os.defpath}
    out = subprocess.run(
        ["sh", str(DEPLOY / "entrypoint.sh"), "no-such-service"],
        capture_output=True,
        text=True,
        env=env,
        timeout=10,
    )
    assert out.returncode == 64
    assert "unknown command" in out.stderr
