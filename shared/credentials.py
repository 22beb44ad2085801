"""Bearer tokens, their roles, and the rules that refuse weak or template secrets."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator

Role = Literal["viewer", "operator", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "admin")
# Secrets shorter than these are refused: a bearer token is compared as is, and a passphrase is only
# stretched by scrypt (shared.secrets.load_or_create_key), so neither may be guessable.
MIN_TOKEN_LENGTH = 24
MIN_PASSPHRASE_LENGTH = 16
# Values shipped in templates and examples (deploy/, docs): a service that finds one refuses to start,
# so a copied template never runs with a secret everyone knows.
_PLACEHOLDER = re.compile(
    r"change[-_ ]?me|changeme|replace[-_ ]?me|placeholder|example|secret|password|local-compose-only",
    re.IGNORECASE,
)


def is_placeholder(value: str) -> bool:
    """True for a template value (CHANGE-ME, local-compose-only-change-me, ...) or a one-character run."""
    return bool(_PLACEHOLDER.search(value)) or len(set(value)) <= 2


class ApiToken(BaseModel):
    """One accepted bearer token, its role and, optionally, the named connections it may use."""

    model_config = {"frozen": True, "extra": "forbid"}

    token: SecretStr = Field(description="The bearer token (at least 24 characters).")
    role: Role = Field(
        default="admin",
        description="viewer: read; operator: also create, execute, cancel, upload, list tables, "
        "download files; admin: also delete and every named connection.",
    )
    name: str | None = Field(
        default=None, max_length=64, description="Shown in logs and metrics instead of the token."
    )
    connections: list[str] | None = Field(
        default=None,
        description="Named connections this token may use (['*']: all). Set, the token may use only "
        "these and no ad-hoc URL; unset: admin may use all, operator and viewer none (ad-hoc URLs only).",
    )

    @field_validator("token")
    @classmethod
    def _token_is_strong(cls, value: SecretStr) -> SecretStr:
        secret = value.get_secret_value()
        if secret != secret.strip() or any(not ch.isprintable() for ch in secret):
            raise ValueError("a token must not contain spaces or control characters")
        if is_placeholder(secret):
            raise ValueError("a token is a template placeholder; generate a random one")
        if len(secret) < MIN_TOKEN_LENGTH:
            raise ValueError(f"a token must have at least {MIN_TOKEN_LENGTH} characters")
        return value
