"""The deployment files: kustomize output, Kubernetes schemas (offline), probes, configuration coverage,
compose and the image. No network, no cluster, no Docker engine."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.support.k8s import render, settings_env

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
# Each workload reads its own Secret (deploy/k8s/secrets/<template>.env.example), created by the operator.
WORKLOAD_SECRETS = {
    "dp-gateway": "dp-gateway-secrets",
    "dp-scheduler": "dp-scheduler-secrets",
    "dp-step-runner": "dp-step-runner-secrets",
    "dp-log-collector": "dp-log-collector-secrets",
    "dp-migrate": "dp-migrate-secrets",
    "dp-retention": "dp-retention-secrets",
}
# The settings classes each workload reads (its Secret may hold only what they read).
WORKLOAD_SETTINGS = {
    "dp-gateway": [
        "shared.settings.GatewaySettings",
        "shared.embeddings.EmbeddingSettings",
        "shared.pipeline_settings.PipelineSettings",
    ],
    "dp-scheduler": ["shared.settings.SchedulerSettings"],
    "dp-step-runner": [
        "shared.settings.RunnerSettings",
        "shared.embeddings.EmbeddingSettings",
        "shared.pipeline_settings.PipelineSettings",
        "services.step_runner.llm.settings.LLMSettings",
    ],
    "dp-log-collector": ["shared.settings.CollectorSettings"],
    "dp-migrate": ["shared.settings.CommonSettings"],
    "dp-retention": ["services.dpctl.settings.DpctlSettings"],
}
DIGEST_REF = re.compile(r"^[^\s@]+@sha256:[0-9a-f]{64}$")
# Custom resources have no schema in kubernetes-validate: their required keys are checked here.
CRD_REQUIRED: dict[str, list[str]] = {
    "RabbitmqCluster": ["spec.replicas", "spec.image", "spec.persistence.storage"],
    "Cluster": ["spec.instances", "spec.imageName", "spec.storage.size", "spec.bootstrap.initdb.database"],
    "ScaledObject": ["spec.scaleTargetRef.name", "spec.triggers"],
    "TriggerAuthentication": ["spec.secretTargetRef"],
}


# StatefulSets of components/statefulsets: PostgreSQL and RabbitMQ, not pipeline workloads.
DATA_STORES = {"dp-postgres", "dp-rabbitmq"}


def _workload(rendered: dict, name: str) -> dict:
    """A service's workload: a Deployment, or a StatefulSet (the log collector: replicas need numbers)."""
    return rendered.get(("Deployment", name)) or rendered[("StatefulSet", name)]


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
    templates = settings_env.secret_templates()
    for ref in auth["spec"]["secretTargetRef"]:
        assert ref["name"] == "dp-keda-secrets"
        assert ref["key"] in templates["keda"]


def test_keda_scales_collectors_on_the_partition_queues_up_to_one_per_partition(base: dict) -> None:
    resources = _by_key(render.build(K8S / "components" / "keda", list(base.values())))
    scaled = resources[("ScaledObject", "dp-log-collector")]
    config = base[("ConfigMap", "dp-config")]["data"]
    partitions = int(config["DP_COLLECTOR_PARTITIONS"])
    assert scaled["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "name": "dp-log-collector",
    }
    assert ("StatefulSet", "dp-log-collector") in resources
    queues = {t["metadata"]["queueName"] for t in scaled["spec"]["triggers"]}
    assert queues == {f"{config['DP_BROKER_PREFIX']}.collector.{n}" for n in range(partitions)}
    assert scaled["spec"]["maxReplicaCount"] == partitions == int(config["DP_COLLECTOR_REPLICAS"])


def test_hpa_component_renders_against_base(base: dict) -> None:
    resources = _by_key(render.build(K8S / "components" / "hpa", list(base.values())))
    hpa = resources[("HorizontalPodAutoscaler", "dp-step-runner")]
    kubernetes_validate.validate(hpa, KUBERNETES_VERSIONS[-1], strict=True)
    assert ("Deployment", hpa["spec"]["scaleTargetRef"]["name"]) in resources


def test_services_have_probes_on_their_real_health_endpoints(rendered: dict) -> None:
    config = rendered[("ConfigMap", "dp-config")]["data"]
    for name, cls_path in SERVICE_DEPLOYMENTS.items():
        fields = _settings_class(cls_path).model_fields
        (container,) = _workload(rendered, name)["spec"]["template"]["spec"]["containers"]
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
        spec = _workload(rendered, name)["spec"]["template"]["spec"]
        grace = float(config.get("DP_SHUTDOWN_GRACE_SECONDS", 0)) if "shutdown_grace_seconds" in fields else 0
        assert spec["terminationGracePeriodSeconds"] >= grace + 10, name
    assert rendered[("Deployment", "dp-step-runner")]["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"
    ] > float(config["DP_SHUTDOWN_GRACE_SECONDS"])


def test_workloads_are_hardened_and_sized(rendered: dict) -> None:
    for (_kind, name), resource in rendered.items():
        spec = _pod_spec(resource)
        if spec is None or not name.startswith("dp-") or name in DATA_STORES:
            continue
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] != 0, name
        assert spec.get("serviceAccountName") == "dp-service", name
        for container in spec["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
            assert container["resources"]["requests"] and container["resources"]["limits"], name
            assert {"configMapRef": {"name": "dp-config"}} in container["envFrom"], name
            assert {"secretRef": {"name": WORKLOAD_SECRETS[name]}} in container["envFrom"], name


def test_scheduler_runs_two_replicas_and_every_service_has_a_disruption_budget(rendered: dict) -> None:
    assert rendered[("Deployment", "dp-scheduler")]["spec"]["replicas"] == 2
    for name in SERVICE_DEPLOYMENTS:
        labels = _workload(rendered, name)["spec"]["selector"]["matchLabels"]
        assert rendered[("PodDisruptionBudget", name)]["spec"]["selector"]["matchLabels"] == labels


def test_task_volume_is_read_write_many_and_mounted_at_the_data_root(rendered: dict) -> None:
    pvc = rendered[("PersistentVolumeClaim", "dp-tasks")]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    data_root = rendered[("ConfigMap", "dp-config")]["data"]["DP_DATA_ROOT"]
    for name in ("dp-gateway", "dp-step-runner", "dp-log-collector"):
        spec = _workload(rendered, name)["spec"]["template"]["spec"]
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
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim@sha256:[0-9a-f]{64}$", text, flags=re.MULTILINE)
    # Dependencies come from the hash-pinned lock file, the project itself without dependencies.
    assert "--require-hashes -r requirements.lock" in text
    assert re.search(r"pip wheel --no-deps", text)
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
        (["demo-db"], "python -m services.demo_db --url postgresql://db/dp_demo"),
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


# --- least privilege (issue 7, finding 14) ------------------------------------------------------------


def _image_refs(resource: dict[str, Any]) -> list[str]:
    refs: list[str] = []
    if (spec := _pod_spec(resource)) is not None:
        refs += [c["image"] for c in [*spec.get("containers", []), *spec.get("initContainers", [])]]
    if resource["kind"] == "Cluster":
        refs.append(resource["spec"]["imageName"])
    if resource["kind"] == "RabbitmqCluster":
        refs.append(resource["spec"]["image"])
    return refs


def test_no_build_applies_a_secret_or_a_template_value() -> None:
    for target in [K8S / "base", *(K8S / "overlays" / o for o in OVERLAYS)]:
        resources = render.build(target)
        secrets = [r["metadata"]["name"] for r in resources if r["kind"] == "Secret"]
        assert not secrets, f"{target}: Secrets are created by the operator, never applied: {secrets}"
        assert "CHANGE-ME" not in render.dump(resources), target


def test_every_workload_reads_only_its_own_secret_with_only_what_it_uses(rendered: dict) -> None:
    templates = settings_env.secret_templates()
    by_secret = {f"dp-{stem}-secrets": keys for stem, keys in templates.items()}
    for (_kind, name), resource in rendered.items():
        spec = _pod_spec(resource)
        if spec is None or not name.startswith("dp-") or name in DATA_STORES:
            continue
        (container,) = spec["containers"]
        refs = {e["secretRef"]["name"] for e in container["envFrom"] if "secretRef" in e}
        assert refs == {WORKLOAD_SECRETS[name]}, (name, refs)
        readable = {
            f"{cls.model_config.get('env_prefix', '')}{field_name}".upper()
            for cls_path in WORKLOAD_SETTINGS[name]
            if importlib.util.find_spec(cls_path.rpartition(".")[0]) is not None
            for cls in [_settings_class(cls_path)]
            for field_name in cls.model_fields
        }
        extra = set(by_secret[WORKLOAD_SECRETS[name]]) - readable
        assert not extra, f"{name}'s Secret holds keys it never reads: {sorted(extra)}"
    runner_keys = set(templates["step-runner"])
    assert "DP_DATABASE_URL" not in runner_keys and "DP_API_TOKENS" not in runner_keys
    assert (
        set(templates["scheduler"])
        == set(templates["log-collector"])
        == {"DP_DATABASE_URL", "DP_RABBITMQ_URL"}
    )
    assert set(templates["retention"]) == {"DP_API_TOKEN"}
    assert "dp_runtime" in templates["gateway"]["DP_DATABASE_URL"]
    assert "dp_migrator" in templates["migrate"]["DP_DATABASE_URL"]


def test_network_policies_deny_by_default_and_open_only_the_gateway(rendered: dict) -> None:
    policies = {name: r["spec"] for (kind, name), r in rendered.items() if kind == "NetworkPolicy"}
    deny = policies["dp-default-deny"]
    assert deny["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "data-pipeline"}}
    assert (
        sorted(deny["policyTypes"]) == ["Egress", "Ingress"]
        and "ingress" not in deny
        and "egress" not in deny
    )
    open_ingress = [
        (name, rule)
        for name, spec in policies.items()
        for rule in spec.get("ingress", [])
        if "from" not in rule
    ]
    assert [(n, [p["port"] for p in r["ports"]]) for n, r in open_ingress] == [("dp-gateway-ingress", [8084])]
    assert (
        policies["dp-gateway-ingress"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
        == "gateway"
    )
    # Egress to the outside world (business databases, LLM) only from the gateway and the runners.
    outside = [
        name
        for name, spec in policies.items()
        for rule in spec.get("egress", [])
        for peer in rule.get("to", [])
        if "ipBlock" in peer
    ]
    assert outside and set(outside) == {"dp-task-egress"}
    selector = policies["dp-task-egress"]["podSelector"]["matchExpressions"]
    assert {
        "key": "app.kubernetes.io/component",
        "operator": "In",
        "values": ["gateway", "step-runner"],
    } in selector
    # Every pipeline workload is covered by the default deny.
    for (_kind, name), resource in rendered.items():
        if _pod_spec(resource) is not None and name.startswith("dp-") and name not in DATA_STORES:
            labels = resource["spec"].get("template") or resource["spec"]["jobTemplate"]["spec"]["template"]
            assert labels["metadata"]["labels"]["app.kubernetes.io/name"] == "data-pipeline", name


def test_overlays_refer_to_every_image_by_digest(rendered: dict) -> None:
    refs = [(name, ref) for (_, name), r in rendered.items() for ref in _image_refs(r)]
    assert refs
    loose = [(name, ref) for name, ref in refs if not DIGEST_REF.match(ref)]
    assert not loose, f"images not pinned by digest: {loose}"


def _locked(path: Path) -> dict[str, tuple[str, list[str]]]:
    """{normalized name: (version, hashes)} of a `uv pip compile --generate-hashes` lock file."""
    pins: dict[str, tuple[str, list[str]]] = {}
    name = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)", line):
            name = re.sub(r"[-_.]+", "-", match[1]).lower()
            pins[name] = (match[2], [])
        elif (hashed := re.search(r"--hash=sha256:([0-9a-f]{64})", line)) and name:
            pins[name][1].append(hashed[1])
    return pins


@pytest.mark.parametrize(("lock", "extras"), [("requirements.lock", ()), ("requirements-dev.lock", ("dev",))])
def test_lock_files_pin_every_dependency_with_hashes(lock: str, extras: tuple[str, ...]) -> None:
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    for extra in extras:
        wanted += [Requirement(r) for r in project["optional-dependencies"][extra]]
    pins = _locked(REPO / lock)
    assert pins and all(hashes for _, hashes in pins.values()), f"{lock}: every pin needs --hash lines"
    for requirement in wanted:
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        assert name in pins, f"{lock} lacks {requirement.name}: run `make lock`"
        assert requirement.specifier.contains(pins[name][0], prereleases=True), (
            f"{lock} pins {name}=={pins[name][0]}, pyproject.toml wants {requirement}: run `make lock`"
        )
    if not extras:
        assert "pytest" not in pins, "the runtime lock must not carry dev tools"
