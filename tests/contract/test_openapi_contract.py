"""Schemathesis over the live OpenAPI document, with auth off and with auth on.

The document is the contract (docs: API.md): every answer the gateway gives to generated requests,
valid and invalid, must be one the document declares — status, content type, headers, body schema —
and never a 5xx. Schemathesis runs as its command line does in CI, against the real services, with a
fixed seed and a bounded number of examples per operation so both passes fit in a few minutes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import PG_URL
from tests.contract.conftest import ContractStack, Gateway

pytestmark = pytest.mark.e2e

HERE = Path(__file__).resolve().parent
OPENAPI_PATH = "/api/v0/openapi.json"
SEED = 20261129
MAX_EXAMPLES = 15
PHASES = "examples,coverage,fuzzing"
# With auth on, what is new is the token: every operation refuses a missing or wrong one with a declared
# 401 (schemathesis's ignored_auth check) and answers as documented with the right one. The auth-off pass
# already walked every parameter's boundaries (the coverage phase, 35-40 s here) through the same
# validation, which runs after the token check: this pass fuzzes, with fewer examples, to keep the
# suite within its budget (20 min on 2 cores).
AUTH_ON = {"max_examples": 10, "phases": "examples,fuzzing"}
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",  # the server accepted what the document forbids
        "positive_data_acceptance",  # the server refused what the document allows
        "missing_required_header",
        "unsupported_method",  # 405 for methods a path does not have, with Allow
        "ignored_auth",  # with auth on: no credentials, or wrong ones, must be a declared 401
    ]
)
# Above the gateway's create visibility wait (5 s); streams stop after a few events (schemathesis.toml).
REQUEST_TIMEOUT_SECONDS = 15
RUN_TIMEOUT_SECONDS = 240


@dataclass
class Run:
    """One schemathesis process against one gateway, started at once, its outcome read later."""

    gateway: Gateway
    report_dir: Path
    process: subprocess.Popen[str]
    started: float

    def outcome(self) -> tuple[subprocess.CompletedProcess[str], Counter[int]]:
        try:
            # Counted from the start: both passes run side by side, and this one may be read second.
            left = self.started + RUN_TIMEOUT_SECONDS - time.monotonic()
            stdout, stderr = self.process.communicate(timeout=max(left, 0.1))
        except subprocess.TimeoutExpired:
            self.process.kill()
            stdout, stderr = self.process.communicate()
            stderr += f"\nschemathesis killed after {RUN_TIMEOUT_SECONDS} s"
        result = subprocess.CompletedProcess(self.process.args, self.process.returncode, stdout, stderr)
        cases = next(
            (line.strip() for line in stdout.splitlines() if re.match(r"\s*\d+ generated", line)), "?"
        )
        print(f"schemathesis against {self.gateway.url}: {cases} in {time.monotonic() - self.started:.1f}s")
        return result, statuses_seen(self.report_dir / "events.ndjson")


def start_schemathesis(
    gateway: Gateway, report_dir: Path, max_examples: int = MAX_EXAMPLES, phases: str = PHASES
) -> Run:
    ndjson = report_dir / "events.ndjson"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(HERE / "schemathesis.toml"),
        "run",
        gateway.url + OPENAPI_PATH,
        "--url",
        gateway.url,
        "--checks",
        CHECKS,
        "--seed",
        str(SEED),
        "--max-examples",
        str(max_examples),
        "--phases",
        phases,
        "--workers",
        "1",  # hypothesis's lambda-source cache is not thread-safe (a RuntimeError with 2 workers)
        "--request-timeout",
        str(REQUEST_TIMEOUT_SECONDS),
        "--generation-database",
        "none",
        "--suppress-health-check",
        "all",
        "--no-color",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(ndjson),
    ]
    if gateway.token is not None:
        command += ["--header", f"Authorization: Bearer {gateway.token}"]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(HERE / "hooks.py"), "CONTRACT_DB_URL": PG_URL}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=report_dir, env=env
    )
    return Run(gateway, report_dir, process, time.monotonic())


@pytest.fixture(scope="module")
def runs(contract_stack: ContractStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Run]]:
    """Both passes, started together: schemathesis spends most of a pass generating cases on one core,
    the gateways answer in a tenth of it, so the two passes side by side take little longer than one."""
    started = {
        "off": start_schemathesis(contract_stack.open, tmp_path_factory.mktemp("contract-off")),
        "on": start_schemathesis(contract_stack.authed, tmp_path_factory.mktemp("contract-on"), **AUTH_ON),
    }
    yield started
    for run in started.values():
        if run.process.poll() is None:
            run.process.kill()
            run.process.communicate()


def statuses_seen(ndjson: Path) -> Counter[int]:
    """How many responses of each status the run received (from schemathesis's event report)."""
    seen: Counter[int] = Counter()
    if not ndjson.exists():
        return seen
    for line in ndjson.read_text().splitlines():
        for status in _statuses(json.loads(line)):
            seen[status] += 1
    return seen


def _statuses(node: object) -> list[int]:
    found: list[int] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            response = item.get("response")
            if isinstance(response, dict) and isinstance(response.get("status_code"), int):
                found.append(response["status_code"])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _explain(result: subprocess.CompletedProcess[str], seen: Counter[int], logs: str) -> str:
    # Warnings and errors of the gateway under test: the reason behind a 5xx is in its log.
    problems = [
        line for line in logs.splitlines() if '"level": "warning"' in line or '"level": "error"' in line
    ]
    return (
        f"schemathesis exit {result.returncode}; statuses {dict(seen)}\n{result.stdout[-20000:]}\n"
        f"{result.stderr[-3000:]}\ngateway warnings and errors:\n" + "\n".join(problems[-20:])
    )


def test_contract_with_auth_off(contract_stack: ContractStack, runs: dict[str, Run]) -> None:
    gateway = contract_stack.open
    result, seen = runs["off"].outcome()
    why = _explain(result, seen, contract_stack.stack.logs(gateway.name))
    assert result.returncode == 0, why
    # The run exercised the API for real: successes, and no request was refused for lack of a token.
    assert sum(n for status, n in seen.items() if status < 300) >= 50, why
    assert seen[401] == 0, why


def test_contract_with_auth_on(contract_stack: ContractStack, runs: dict[str, Run]) -> None:
    gateway = contract_stack.authed
    result, seen = runs["on"].outcome()
    why = _explain(result, seen, contract_stack.stack.logs(gateway.name))
    assert result.returncode == 0, why
    # The token was accepted (successes), and the unauthenticated probes got 401s that conform.
    assert sum(n for status, n in seen.items() if status < 300) >= 50, why
    assert seen[401] > 0, why
