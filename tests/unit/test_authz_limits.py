"""Roles, token scopes, secure-default settings, key derivation and the stream / rate caps (pure logic)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from services.api_gateway.auth import principal_for
from services.api_gateway.bootstrap import all_routes
from services.api_gateway.errors import ServiceUnavailable
from services.api_gateway.limits import RateLimiter, Slots
from shared.credentials import ApiToken, is_placeholder
from shared.secrets import derive_key, load_or_create_key
from shared.settings import GatewaySettings
from shared.settings_loading import settings_error_text

TOKEN = "a-real-token-0123456789abcdefghij"


def test_roles_are_ordered_and_scopes_follow_the_documented_defaults() -> None:
    admin = principal_for(ApiToken(token=TOKEN), 0)
    assert admin.role == "admin" and admin.may_use("any") and admin.adhoc_allowed
    assert admin.name == "token-1"
    operator = principal_for(ApiToken(token=TOKEN, role="operator", name="ops"), 1)
    assert operator.has_role("viewer") and operator.has_role("operator") and not operator.has_role("admin")
    assert not operator.may_use("sales") and operator.adhoc_allowed
    scoped = principal_for(ApiToken(token=TOKEN, role="operator", connections=["sales"]), 2)
    assert scoped.may_use("sales") and not scoped.may_use("hr") and not scoped.adhoc_allowed
    everything = principal_for(ApiToken(token=TOKEN, role="viewer", connections=["*"]), 3)
    assert everything.may_use("hr") and not everything.has_role("operator")


def test_every_route_states_a_role_and_writes_need_more_than_viewer() -> None:
    for route in all_routes():
        if route.public:
            continue
        read_only_query = route.method == "POST" and route.path.endswith("/query")  # filters in a body
        if route.method != "GET" and not read_only_query:
            assert route.role != "viewer" or route.rate_limited, (route.method, route.path)
        if route.method == "DELETE":
            assert route.role == "admin", route.path
        if "/download/" in route.path or route.path.endswith("/files/{filename}"):
            assert route.role == "operator", route.path


@pytest.mark.parametrize(
    "value", ["CHANGE-ME", "change-me", "local-compose-only-change-me", "changeme123456789012345", "x" * 40]
)
def test_placeholders_are_recognised(value: str) -> None:
    assert is_placeholder(value)


def test_random_values_are_not_placeholders() -> None:
    assert not is_placeholder(TOKEN)
    assert not is_placeholder(Fernet.generate_key().decode())


def test_secure_defaults() -> None:
    assert GatewaySettings(api_tokens=[]).http_host == "127.0.0.1"
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        GatewaySettings(http_host=host)
    for host in ("0.0.0.0", "::", "10.1.2.3", "gateway.internal"):
        with pytest.raises(ValidationError, match="without authentication"):
            GatewaySettings(http_host=host)
        GatewaySettings(http_host=host, api_tokens=[TOKEN])
        GatewaySettings(http_host=host, allow_insecure=True)
    with pytest.raises(ValidationError, match="same token twice"):
        GatewaySettings(api_tokens=[TOKEN, {"token": TOKEN, "role": "viewer"}])


def test_settings_error_text_names_fields_but_not_values() -> None:
    secret = "Sh0rt-Secret"
    with pytest.raises(ValidationError) as info:
        GatewaySettings(encryption_key=secret, api_tokens=[{"token": "p4ss", "role": "root"}])
    assert secret in str(info.value)  # pydantic's own text would leak it ...
    text = settings_error_text(GatewaySettings, "dp-gateway", info.value)
    assert secret not in text and "p4ss" not in text  # ... ours does not
    assert "DP_ENCRYPTION_KEY" in text and "DP_API_TOKENS[0][role]" in text


def test_passphrases_are_stretched_with_scrypt(tmp_path) -> None:  # type: ignore[no-untyped-def]
    passphrase = "a-long-enough-passphrase"
    key = load_or_create_key(passphrase, tmp_path)
    assert key == derive_key(passphrase) == load_or_create_key(passphrase, tmp_path)
    assert key != base64.urlsafe_b64encode(hashlib.sha256(passphrase.encode()).digest())
    Fernet(key)  # a valid Fernet key
    fernet_key = Fernet.generate_key()
    assert load_or_create_key(fernet_key.decode(), tmp_path) == fernet_key  # used as is


def test_stream_slots_cap_per_client_and_total() -> None:
    slots = Slots(total=3, per_client=2)
    with slots.hold("a"), slots.hold("a"):
        with pytest.raises(ServiceUnavailable) as info:
            with slots.hold("a"):
                pass
        assert info.value.headers and "Retry-After" in info.value.headers
        with slots.hold("b"):
            with pytest.raises(ServiceUnavailable):
                with slots.hold("c"):
                    pass
        assert slots.in_use == 2
    assert slots.in_use == 0


def test_rate_limiter_allows_a_burst_then_refills() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=3, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(1.0)
    assert limiter.take("b") == 0.0  # per client
    now[0] += 1.0
    assert limiter.take("a") == 0.0
    assert limiter.take("a") > 0
    assert RateLimiter(per_minute=0, burst=1).take("a") == 0.0  # 0: no limit
