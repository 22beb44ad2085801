"""Pure pieces of the hardening of finding 14: the Origin decision, table-list names, dpctl's origin."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from services.api_gateway.adapters.task_files import PIPELINE_TEXT_FILES, table_list_name_problem
from services.api_gateway.hardening import cross_origin_reason
from services.dpctl.client import origin
from services.log_collector.adapters.task_files import LOG_FILE
from services.step_runner.pipeline import task_files as step_files
from services.step_runner.pipeline import theme_metadata


def _request(method: str, host: str = "gw.internal:8084", **headers: str):  # type: ignore[no-untyped-def]
    return make_mocked_request(method, "/api/v0/data_pipeline/tasks", headers={"Host": host, **headers})


@pytest.mark.parametrize(
    ("method", "headers", "refused"),
    [
        ("POST", {}, False),  # curl, dpctl, scripts: no Origin
        ("POST", {"Origin": "http://gw.internal:8084"}, False),
        ("POST", {"Origin": "https://gw.internal:8084"}, False),  # TLS ended at a proxy, same host
        ("POST", {"Origin": "http://GW.internal:8084"}, False),
        ("POST", {"Sec-Fetch-Site": "same-origin"}, False),
        ("POST", {"Sec-Fetch-Site": "none"}, False),
        ("GET", {"Origin": "http://evil.example"}, False),  # reads are not state changes
        ("POST", {"Origin": "http://evil.example"}, True),
        ("DELETE", {"Origin": "http://gw.internal:8085"}, True),  # another port is another origin
        ("PUT", {"Origin": "http://gw.internal"}, True),
        ("POST", {"Origin": "null"}, True),
        ("POST", {"Origin": "gw.internal:8084"}, True),  # not an origin at all
        ("POST", {"Origin": "http://gw.internal:8084.evil.example"}, True),
        ("POST", {"Sec-Fetch-Site": "cross-site"}, True),
        ("POST", {"Sec-Fetch-Site": "same-site"}, True),  # a sibling subdomain
    ],
)
def test_cross_origin_reason(method: str, headers: dict[str, str], refused: bool) -> None:
    reason = cross_origin_reason(_request(method, **headers))
    assert (reason is not None) == refused, reason


def test_the_public_base_url_counts_as_own_origin() -> None:
    request = _request("POST", host="10.0.0.7:8084", Origin="https://pipeline.example.com")
    assert cross_origin_reason(request) is not None
    assert cross_origin_reason(request, "https://pipeline.example.com/") is None
    assert cross_origin_reason(request, "https://pipeline.example.com:8443") is not None


def test_the_gateway_knows_every_text_file_the_pipeline_writes() -> None:
    written = {step_files.MAPPING_FILE, theme_metadata.METADATA_SQL_FILE, theme_metadata.SCOPE_FILE, LOG_FILE}
    assert written <= PIPELINE_TEXT_FILES


@pytest.mark.parametrize(
    ("name", "registered", "ok"),
    [
        ("table_list.txt", {"table_list.txt"}, True),  # step 1's own copy of the list
        ("tables_v2.txt", set(), True),
        ("schema_catalog.json", set(), False),
        ("orders.ddl", set(), False),
        ("metadata.txt", set(), False),
        ("Metadata.TXT", set(), False),
        ("data_pipeline.log", set(), False),
        ("ddl_generation.txt", {"ddl_generation.txt"}, False),
    ],
)
def test_table_list_names(name: str, registered: set[str], ok: bool) -> None:
    assert (table_list_name_problem(name, registered) is None) == ok


def test_dpctl_origin() -> None:
    assert origin("http://gw:80/x") == origin("HTTP://GW/y") == ("http", "gw", 80)
    assert origin("https://gw/x") != origin("http://gw/x")
    assert origin("http://gw:8084/") != origin("http://gw:8085/")
