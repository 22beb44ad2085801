"""Every `DP_*` environment variable the services read, found by inspecting their pydantic-settings classes.

    python deploy/k8s/settings_env.py            # table: variable, default, secret?, class
    python deploy/k8s/settings_env.py --missing  # YAML lines for variables absent from base ConfigMap/Secret

Used by tests/unit/test_deploy_manifests.py, so the ConfigMap and the Secret templates cannot fall behind
the code.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import yaml
from pydantic import AliasChoices, SecretStr
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

REPO = Path(__file__).resolve().parents[2]
BASE = Path(__file__).resolve().parent / "base"
SECRETS = Path(__file__).resolve().parent / "secrets"

# Modules known to hold settings classes; any other module under shared/ or services/ that mentions
# BaseSettings is found by the scan. Modules not written yet are skipped.
KNOWN_MODULES = (
    "shared.settings",
    "shared.pipeline_settings",
    "shared.embeddings",
    "services.step_runner.llm.settings",
    "services.dpctl.settings",
)


@dataclass(frozen=True)
class EnvVar:
    name: str
    default: str | None  # None: no default (unset)
    secret: bool
    owner: str  # module.Class that reads it


def _candidate_modules() -> list[str]:
    names = list(KNOWN_MODULES)
    for top in ("shared", "services"):
        for path in sorted((REPO / top).rglob("*.py")):
            try:
                text = path.read_text(encoding="utf-8")
            except OSError:
                continue
            if "BaseSettings" in text:
                module = ".".join(path.relative_to(REPO).with_suffix("").parts)
                names.append(module.removesuffix(".__init__"))
    return list(dict.fromkeys(names))


def settings_classes() -> tuple[list[type[BaseSettings]], list[str]]:
    """The BaseSettings subclasses defined in the project, and the known modules that do not exist yet."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    found: dict[str, type[BaseSettings]] = {}
    absent: list[str] = []
    for name in _candidate_modules():
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                absent.append(name)
                continue
            raise
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseSettings)
                and value is not BaseSettings
                and value.__module__.split(".")[0] in {"shared", "services"}
            ):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return list(found.values()), absent


def _render(value: Any) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, (list, tuple, dict, set)):
        return json.dumps(
            value, default=lambda v: v.get_secret_value() if isinstance(v, SecretStr) else str(v)
        )
    return str(value)


def env_vars() -> list[EnvVar]:
    classes, _ = settings_classes()
    result: dict[str, EnvVar] = {}
    for cls in classes:
        prefix = str(cls.model_config.get("env_prefix", ""))
        for field_name, info in cls.model_fields.items():
            alias = info.validation_alias
            if isinstance(alias, str):
                name = alias
            elif isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
                name = alias.choices[0]
            else:
                name = prefix + field_name
            if info.default_factory is not None:
                default: Any = info.default_factory()  # type: ignore[call-arg]
            elif info.default is PydanticUndefined:
                default = None
            else:
                default = info.default
            secret = "SecretStr" in repr(info.annotation)
            var = EnvVar(
                name.upper(),
                None if default is None else _render(default),
                secret,
                f"{cls.__module__}.{cls.__name__}",
            )
            result.setdefault(var.name, var)
    return sorted(result.values(), key=lambda v: v.name)


def secret_templates() -> dict[str, dict[str, str]]:
    """The per-workload Secret templates (secrets/<name>.env.example): {file stem: {key: value}}."""
    templates: dict[str, dict[str, str]] = {}
    for path in sorted(SECRETS.glob("*.env.example")):
        entries: dict[str, str] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                key, _, value = line.partition("=")
                entries[key.strip()] = value
        templates[path.name.removesuffix(".env.example")] = entries
    return templates


def base_config() -> tuple[dict[str, str], dict[str, str], set[str]]:
    """ConfigMap data, Secret keys (of all per-workload templates) and the variables the ConfigMap
    declares unset on purpose."""
    configmap = yaml.safe_load((BASE / "configmap.yaml").read_text(encoding="utf-8"))
    unset = configmap["metadata"].get("annotations", {}).get("data-pipeline/unset-on-purpose", "")
    secret_data = {k: v for entries in secret_templates().values() for k, v in entries.items()}
    return configmap.get("data", {}), secret_data, set(unset.split())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--missing", action="store_true", help="only variables absent from base ConfigMap/Secret"
    )
    args = parser.parse_args()
    variables = env_vars()
    if args.missing:
        data, secret, unset = base_config()
        for var in variables:
            if var.name in data or var.name in secret or var.name in unset:
                continue
            if var.default is None and not var.secret:
                print(
                    f"  # {var.name}: default unset; list it in the unset-on-purpose annotation or set a value"
                )
                continue
            where = "a Secret template (secrets/*.env.example)" if var.secret else "ConfigMap"
            value = json.dumps(var.default if var.default is not None else "CHANGE-ME")
            print(f"  {var.name}: {value}  # {where}; read by {var.owner}")
        return
    for var in variables:
        flag = "secret" if var.secret else ""
        print(f"{var.name:42} {var.default!s:45} {flag:6} {var.owner}")


if __name__ == "__main__":
    main()
