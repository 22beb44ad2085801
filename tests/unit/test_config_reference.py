"""docs/configuration.md is what scripts/config_reference.py prints from the settings: the settings'
descriptions are the one home of each variable's meaning."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_configuration_reference_is_generated_from_the_settings() -> None:
    printed = subprocess.run(
        [sys.executable, "scripts/config_reference.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert printed == (ROOT / "docs/configuration.md").read_text(), (
        "docs/configuration.md differs from the settings: change the Field description, then run "
        ".venv/bin/python scripts/config_reference.py > docs/configuration.md"
    )
