"""Business-database passwords: encrypted before they enter an event or a table, masked wherever shown."""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from cryptography.fernet import Fernet, InvalidToken

ENCRYPTED_PREFIX = "enc:v1:"
MASK = "***"

# The safety net for free text (driver errors, log lines): structural masking happens where a URL is
# parsed (shared/connection_url.py). Both patterns run in linear time on any input: every quantifier is
# possessive or bounded by a character the next step needs, and each match attempt starts at a literal.
#
# `scheme://user:password@`: matched on the reversed text, so each attempt starts at an "@" and stays
# inside one segment without whitespace, "/", "?", "#" or "@". The password runs from the first ":" of
# the userinfo to the "@", as asyncpg reads it.
_URL_PASSWORD_REVERSED = re.compile(r"@[^\s/?#@]*:(?=[^\s:/?#@]*//:)")
# libpq key=value style, any case, `sslpassword` included; rendered as `password=***`. The lower-case
# form finds out fast (a literal prefix) whether there is anything to mask at all.
_KV_PASSWORD = re.compile(r"[Pp][Aa][Ss][Ss][Ww][Oo][Rr][Dd]\s*+=\s*+(?:'[^']*+'|\S++)")
_KV_PASSWORD_LOWER = re.compile(rb"password\s*+=")
_KV_SPLICE_MAX = 10_000


class SecretError(ValueError):
    """A stored secret cannot be decrypted with the configured key."""


def mask_secrets(text: str) -> str:
    """Replace every password in connection strings found in `text` with ***; linear in len(text)."""
    if "@" in text and "://" in text:
        text = _URL_PASSWORD_REVERSED.sub("@" + MASK[::-1] + ":", text[::-1])[::-1]
    elif "=" not in text:
        return text  # neither pattern can match (the gateway masks every string of every response)
    # One byte per character, ASCII lower-cased: positions line up with `text` (libpq's key=value syntax
    # is ASCII; a non-ASCII character reads as "?").
    lowered = text.encode("ascii", "replace").lower()
    starts = list(itertools.islice(_KV_PASSWORD_LOWER.finditer(lowered), _KV_SPLICE_MAX + 1))
    if len(starts) > _KV_SPLICE_MAX:
        return _KV_PASSWORD.sub("password=" + MASK, text)
    pieces: list[str] = []
    done = 0
    for found in starts:  # few matches: mask them in place, without scanning the rest again
        match = _KV_PASSWORD.match(text, found.start())
        if match is not None and found.start() >= done:
            pieces += (text[done : found.start()], "password=" + MASK)
            done = match.end()
    return "".join(pieces) + text[done:] if pieces else text


def mask_url(url: str) -> str:
    return mask_secrets(url)


def url_password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def strip_password(url: str) -> str:
    """The URL without its password (`user@host/db`)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc}" if user else netloc))


# scrypt parameters for a passphrase key: part of the stored data's format, so never change them in
# place (a new format needs a new ENCRYPTED_PREFIX). The salt is fixed because every service must derive
# the same key without sharing state; the passphrase itself must carry the entropy.
KDF_SALT = b"data_pipeline/encryption_key/v1"
KDF_N, KDF_R, KDF_P = 2**15, 8, 1


def derive_key(passphrase: str) -> bytes:
    """The Fernet key for a passphrase (scrypt, N=2**15, r=8, p=1, 32 bytes)."""
    derived = hashlib.scrypt(
        passphrase.encode(), salt=KDF_SALT, n=KDF_N, r=KDF_R, p=KDF_P, maxmem=64 * 1024 * 1024, dklen=32
    )
    return base64.urlsafe_b64encode(derived)


def load_or_create_key(configured: str | None, data_root: Path) -> bytes:
    """The Fernet key: from settings, else from `<data_root>/.encryption_key` (created once, mode 0600).

    A configured key may be a Fernet key or a passphrase, so operators can put a long random string in
    a Kubernetes Secret. A passphrase is stretched with scrypt (fixed salt and cost, `KDF_*` below:
    every service derives the same key from it); settings refuse short and placeholder passphrases.
    """
    if configured:
        raw = configured.encode()
        try:
            Fernet(raw)
            return raw
        except ValueError:
            return derive_key(configured)
    key_file = data_root / ".encryption_key"
    data_root.mkdir(parents=True, exist_ok=True)
    if not key_file.exists():
        _publish_new_key(key_file)
    key = key_file.read_bytes().strip()
    try:
        Fernet(key)
    except ValueError:
        raise SecretError(f"{key_file} holds no Fernet key; remove it or set DP_ENCRYPTION_KEY") from None
    return key


def _publish_new_key(key_file: Path) -> None:
    """Create `key_file` with a fresh key such that services starting at once all end up with one key.

    The key is written and fsynced under a private temporary name, then hard-linked to the real name:
    `link` fails when the name exists, so exactly one process wins and nobody reads a half-written
    file (a plain O_EXCL create shows the empty file between create and write). Losers use the
    winner's key.
    """
    tmp = key_file.with_name(f"{key_file.name}.{os.getpid()}.{os.urandom(6).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(Fernet.generate_key())
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, key_file)
        except FileExistsError:
            pass  # another process won; its file is complete
    finally:
        tmp.unlink(missing_ok=True)


class SecretBox:
    """Encrypts and decrypts strings with one key; built once per service in its bootstrap."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def encrypt(self, plain: str) -> str:
        return ENCRYPTED_PREFIX + self._fernet.encrypt(plain.encode()).decode()

    def decrypt(self, token: str) -> str:
        if not token.startswith(ENCRYPTED_PREFIX):
            raise SecretError("value is not an encrypted secret")
        try:
            return self._fernet.decrypt(token[len(ENCRYPTED_PREFIX) :].encode()).decode()
        except InvalidToken as exc:
            raise SecretError("secret cannot be decrypted with the configured encryption key") from exc
