"""Finding 10: open by default. The gateway listened on 0.0.0.0 without authentication, accepted the
template secrets of deploy/ (CHANGE-ME, local-compose-only-change-me), and a settings error printed
the offending values, secrets included (pydantic's `input_value`).

Each test starts the real `dp-gateway` process; it must refuse before it binds anything. On the
previous main the first three started (0.0.0.0, no auth) and the last printed the token.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.stack import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
GOOD_TOKEN = "good-token-0123456789abcdefghijkl"


def run_gateway(test_env: dict[str, str], **env: str) -> subprocess.CompletedProcess[str]:
    """Start dp-gateway; a refusal exits at once, an accepted configuration would serve (timeout)."""
    full = {**os.environ, **test_env, "DP_HTTP_PORT": str(free_port()), **env}
    for name in ("DP_API_TOKENS", "DP_ALLOW_INSECURE", "DP_HTTP_HOST"):
        if name not in env:
            full.pop(name, None)
    try:
        return subprocess.run(
            [sys.executable, "-m", "services.api_gateway.main"],
            env=full,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=20,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the gateway started: {exc.stderr!r}") from None


def test_listening_beyond_loopback_without_tokens_is_refused(test_env: dict[str, str]) -> None:
    result = run_gateway(test_env, DP_HTTP_HOST="0.0.0.0")
    assert result.returncode == 2, result
    assert "without authentication" in result.stderr
    assert "DP_API_TOKENS" in result.stderr and "DP_ALLOW_INSECURE" in result.stderr


@pytest.mark.parametrize(
    "env",
    [
        {"DP_ENCRYPTION_KEY": "local-compose-only-change-me"},
        {"DP_ENCRYPTION_KEY": "CHANGE-ME"},
        {"DP_ENCRYPTION_KEY": "short-key"},
        {"DP_API_TOKENS": '["CHANGE-ME"]', "DP_HTTP_HOST": "0.0.0.0"},
        {"DP_API_TOKENS": '["change-me-please-0123456789abc"]', "DP_HTTP_HOST": "0.0.0.0"},
        {"DP_API_TOKENS": '["tok-1"]'},
    ],
    ids=["compose-key", "k8s-key", "short-key", "k8s-token", "change-me-token", "short-token"],
)
def test_template_and_weak_secrets_are_refused(test_env: dict[str, str], env: dict[str, str]) -> None:
    result = run_gateway(test_env, **env)
    assert result.returncode == 2, result
    assert "invalid settings" in result.stderr
    name = next(iter(env))
    assert name in result.stderr, result.stderr


def test_settings_errors_never_print_the_values(test_env: dict[str, str]) -> None:
    token = "Sup3rSecretToken-0123456789-abcdefgh"
    tokens = json.dumps([{"token": token, "role": "root"}])
    key = "Sh0rtSecret"  # too short a passphrase
    url = "postgresql://u:Db-Passw0rd-9@127.0.0.1:5432/x"
    result = run_gateway(
        test_env,
        DP_API_TOKENS=tokens,
        DP_ENCRYPTION_KEY=key,
        DP_CONNECTIONS=json.dumps({"a": url}),
        DP_DB_POOL_MAX_SIZE="lots-of-them-xyz",
    )
    assert result.returncode == 2, result
    output = result.stdout + result.stderr
    assert "DP_API_TOKENS[0][role]" in output and "DP_ENCRYPTION_KEY" in output
    assert "DP_DB_POOL_MAX_SIZE" in output
    for secret in (token, key, "Db-Passw0rd-9", "lots-of-them-xyz"):
        assert secret not in output, secret
    assert "input_value" not in output


def test_unparsable_json_setting_does_not_echo_it(test_env: dict[str, str]) -> None:
    result = run_gateway(test_env, DP_API_TOKENS="[not json Sup3rSecretToken-0123456789")
    assert result.returncode == 2, result
    assert "api_tokens" in result.stderr
    assert "Sup3rSecretToken" not in result.stdout + result.stderr


def test_an_insecure_gateway_must_be_asked_for(test_env: dict[str, str]) -> None:
    """The explicit opt-out still works (the settings accept it); the gateway then serves, which the
    timeout of `run_gateway` would report, so only the settings are checked here."""
    from shared.settings import GatewaySettings

    settings = GatewaySettings(http_host="0.0.0.0", allow_insecure=True)
    assert settings.api_tokens == [] and settings.allow_insecure
    assert GatewaySettings().http_host == "127.0.0.1"
    with_tokens = GatewaySettings(http_host="0.0.0.0", api_tokens=[GOOD_TOKEN])
    assert with_tokens.api_tokens[0].role == "admin"  # a plain string stays an admin token
