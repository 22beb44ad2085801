"""A small kustomize renderer for the subset of kustomize this directory uses, so that CI can build the
manifests on a machine without a kustomize binary:

    python deploy/k8s/render.py deploy/k8s/overlays/operators > manifests.yaml

Supported: `resources` (files and directories), `components`, `labels` (pairs on metadata.labels),
`images` (newName / newTag / digest), and `patches` (strategic merge, from `path` or inline `patch`,
applied to the resource of the same kind and name, or to every resource matched by `target`: kind,
name (regex), labelSelector `k=v,...`). Anything else in a kustomization is an error, never ignored.
Where `kubectl kustomize` exists, tests/unit/test_deploy_manifests.py checks both give the same output.
"""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_KEYS = {"apiVersion", "kind", "resources", "components", "labels", "images", "patches"}

# Strategic-merge keys of the lists this project patches (Kubernetes' patchMergeKey).
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
}

# Kinds that are not Kubernetes built-ins: lists in them are replaced by a patch, not merged.
BUILTIN_GROUPS = {
    "",
    "v1",
    "apps",
    "batch",
    "policy",
    "autoscaling",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
}


class KustomizeError(Exception):
    """The kustomization uses something this renderer does not implement, or is invalid."""


def _load_docs(path: Path) -> list[Resource]:
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    # YAML anchors make several keys share one dict (labels and selectors): give each its own copy.
    return [_unshare(d) for d in docs]


def _unshare(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _unshare(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_unshare(v) for v in node]
    return node


def _kustomization(directory: Path) -> dict[str, Any]:
    for name in KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            data = yaml.safe_load((directory / name).read_text(encoding="utf-8")) or {}
            unknown = set(data) - SUPPORTED_KEYS
            if unknown:
                raise KustomizeError(f"{directory}: unsupported kustomization fields {sorted(unknown)}")
            return data
    raise KustomizeError(f"{directory}: no kustomization file")


def _key(resource: Resource) -> tuple[str, str]:
    return resource["kind"], resource["metadata"]["name"]


def _group(resource: Resource) -> str:
    api_version = str(resource.get("apiVersion", ""))
    return api_version.split("/")[0] if "/" in api_version else ""


def _add(resources: list[Resource], new: list[Resource], origin: Path) -> None:
    seen = {_key(r) for r in resources}
    for resource in new:
        if _key(resource) in seen:
            raise KustomizeError(f"{origin}: {_key(resource)} is defined twice")
        seen.add(_key(resource))
        resources.append(resource)


def strategic_merge(target: Any, patch: Any, merge_lists: bool = True) -> Any:
    """Merge `patch` into `target` (kustomize's order: patched items of a keyed list first)."""
    if isinstance(target, dict) and isinstance(patch, dict):
        merged = dict(target)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            elif key in merged and isinstance(value, list) and isinstance(merged[key], list):
                merge_key = MERGE_KEYS.get(key) if merge_lists else None
                merged[key] = _merge_list(merged[key], value, merge_key, merge_lists) if merge_key else value
            elif key in merged:
                merged[key] = strategic_merge(merged[key], value, merge_lists)
            else:
                merged[key] = copy.deepcopy(value)
        return merged
    return copy.deepcopy(patch)


def _merge_list(target: list[Any], patch: list[Any], merge_key: str, merge_lists: bool) -> list[Any]:
    by_key = {item.get(merge_key): item for item in target if isinstance(item, dict)}
    result: list[Any] = []
    for item in patch:
        existing = by_key.get(item.get(merge_key))
        result.append(
            strategic_merge(existing, item, merge_lists) if existing is not None else copy.deepcopy(item)
        )
    patched = {item.get(merge_key) for item in patch}
    result.extend(item for item in target if not (isinstance(item, dict) and item.get(merge_key) in patched))
    return result


def _matches(resource: Resource, target: dict[str, Any]) -> bool:
    unknown = set(target) - {"kind", "name", "labelSelector", "group", "version"}
    if unknown:
        raise KustomizeError(f"unsupported patch target fields {sorted(unknown)}")
    if "kind" in target and resource["kind"] != target["kind"]:
        return False
    if "group" in target and _group(resource) != target["group"]:
        return False
    if "name" in target and not re.fullmatch(target["name"], resource["metadata"]["name"]):
        return False
    if "labelSelector" in target:
        labels = resource["metadata"].get("labels") or {}
        for term in str(target["labelSelector"]).split(","):
            name, _, value = term.partition("=")
            if labels.get(name.strip()) != value.strip():
                return False
    return True


def _apply_patches(resources: list[Resource], patches: list[dict[str, Any]], directory: Path) -> None:
    for entry in patches:
        if "path" in entry:
            docs = _load_docs(directory / entry["path"])
        elif "patch" in entry:
            docs = [d for d in yaml.safe_load_all(entry["patch"]) if d]
        else:
            raise KustomizeError(f"{directory}: a patch needs `path` or `patch`")
        if len(docs) != 1 or not isinstance(docs[0], dict) or "kind" not in docs[0]:
            raise KustomizeError(f"{directory}: only single-document strategic merge patches are supported")
        patch = docs[0]
        target = entry.get("target") or {"kind": patch["kind"], "name": re.escape(patch["metadata"]["name"])}
        matched = [i for i, r in enumerate(resources) if _matches(r, target)]
        if not matched:
            raise KustomizeError(f"{directory}: patch {entry} matches no resource")
        body = {k: v for k, v in patch.items() if k not in {"apiVersion", "kind", "metadata"}}
        meta_patch = {
            k: v for k, v in (patch.get("metadata") or {}).items() if k not in {"name", "namespace"}
        }
        for index in matched:
            resource = resources[index]
            merge_lists = _group(resource) in BUILTIN_GROUPS
            merged = strategic_merge(resource, body, merge_lists)
            if meta_patch:
                merged["metadata"] = strategic_merge(merged["metadata"], meta_patch, merge_lists)
            resources[index] = merged


def _apply_labels(resources: list[Resource], entries: list[dict[str, Any]], directory: Path) -> None:
    for entry in entries:
        if entry.get("includeSelectors") or entry.get("includeTemplates") or entry.get("fields"):
            raise KustomizeError(f"{directory}: labels support only `pairs` on metadata.labels")
        for resource in resources:
            labels = resource["metadata"].setdefault("labels", {})
            labels.update({k: str(v) for k, v in entry.get("pairs", {}).items()})


def _split_image(image: str) -> tuple[str, str, str]:
    name, _, digest = image.partition("@")
    tag = ""
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    return name, tag, digest


def _apply_images(resources: list[Resource], images: list[dict[str, Any]]) -> None:
    def visit(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in {"containers", "initContainers"} and isinstance(value, list):
                    for container in value:
                        if isinstance(container, dict) and isinstance(container.get("image"), str):
                            container["image"] = _retag(container["image"])
                visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    def _retag(image: str) -> str:
        name, tag, digest = _split_image(image)
        for entry in images:
            if entry["name"] != name:
                continue
            new_name = entry.get("newName", name)
            if "digest" in entry:
                return f"{new_name}@{entry['digest']}"
            if "newTag" in entry:
                return f"{new_name}:{entry['newTag']}"
            return new_name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
        return image

    for resource in resources:
        visit(resource)


def _apply(resources: list[Resource], kustomization: dict[str, Any], directory: Path) -> None:
    # kustomize's built-in transformer order: patches, labels, images.
    _apply_patches(resources, kustomization.get("patches") or [], directory)
    _apply_labels(resources, kustomization.get("labels") or [], directory)
    _apply_images(resources, kustomization.get("images") or [])


def build(directory: Path | str, _accumulated: list[Resource] | None = None) -> list[Resource]:
    """The resources a kustomization (or, with `_accumulated`, a component) produces."""
    directory = Path(directory)
    kustomization = _kustomization(directory)
    is_component = kustomization.get("kind") == "Component"
    if is_component != (_accumulated is not None):
        raise KustomizeError(f"{directory}: a Component must be listed under components, and only there")
    resources: list[Resource] = _accumulated if _accumulated is not None else []
    for entry in kustomization.get("resources") or []:
        path = directory / entry
        _add(resources, build(path) if path.is_dir() else _load_docs(path), path)
    for entry in kustomization.get("components") or []:
        resources = build(directory / entry, resources)
    _apply(resources, kustomization, directory)
    return resources


def dump(resources: list[Resource]) -> str:
    return yaml.safe_dump_all(resources, sort_keys=True, default_flow_style=False)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: render.py KUSTOMIZATION_DIR", file=sys.stderr)
        return 2
    try:
        sys.stdout.write(dump(build(args[0])))
    except (KustomizeError, OSError, yaml.YAMLError) as exc:
        print(f"render.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
