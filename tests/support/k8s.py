"""The deployment's own scripts under deploy/k8s (not a package), loaded once for the tests that check the
manifests: `render` (kustomize's build, offline) and `settings_env` (the variables the services read)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


render = _load("dp_k8s_render", K8S / "render.py")
settings_env = _load("dp_k8s_settings_env", K8S / "settings_env.py")
