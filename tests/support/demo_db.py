"""A seeded demo database per test session (`dp_demo_<hex>`), dropped when the session ends.

Test modules import the fixtures: `from tests.support.demo_db import demo_db_url  # noqa: F401`.
The database is created once per session even when several modules import the fixture.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pytest

from services.demo_db.generator import create_demo_database, drop_database, ensure_database

T = TypeVar("T")
# Same variable as tests/conftest.py: any database on the server; the test databases are made beside it.
SERVER_URL = os.environ.get("DP_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
_DEMO_KEY = pytest.StashKey[str]()


def database_url(name: str, server_url: str = SERVER_URL) -> str:
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


def run_in_thread(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a private loop (usable from sync fixtures and finalizers)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="session")
def demo_db_url(request: pytest.FixtureRequest) -> str:
    """URL of the seeded demo database of this test session."""
    config = request.config
    if _DEMO_KEY in config.stash:
        return config.stash[_DEMO_KEY]
    url = database_url(f"dp_demo_{uuid.uuid4().hex[:8]}")
    run_in_thread(create_demo_database(url))
    config.add_cleanup(lambda: run_in_thread(drop_database(url)))
    config.stash[_DEMO_KEY] = url
    return url


@pytest.fixture
def scratch_db_url(request: pytest.FixtureRequest) -> str:
    """An empty database for one test, dropped after it."""
    url = database_url(f"dp_scratch_{uuid.uuid4().hex[:8]}")
    run_in_thread(ensure_database(url))
    request.addfinalizer(lambda: run_in_thread(drop_database(url)))
    return url
