"""The LLM prompts carry the quality knowledge of step 3 (issue #13, item 3): audit and soft-delete
columns marked in the rendered schema, inferred relations shown as joins, the quality rules in the
generation prompt, and the flag (with the question) in the repair prompt."""

from __future__ import annotations

from services.step_runner.llm import prompts
from services.step_runner.llm.base import Theme
from shared.quality_flags import quality_reason
from tests.support.highway_catalog import highway_tables
from tests.support.shop_catalog import shop_tables


def _user(messages: list[dict[str, str]]) -> str:
    return messages[-1]["content"]


def test_schema_marks_roles_and_shows_inferred_joins() -> None:
    text = prompts.render_schema(highway_tables())
    assert (
        "delete_ts timestamp without time zone,  -- [soft-delete: keep rows where delete_ts IS NULL]" in text
    )
    assert "created_by varchar(50),  -- [audit: never a question's subject]" in text
    assert "pay_sum numeric(19,4),\n" in text  # a measure carries no marker
    assert (
        "- JOIN bss_service_area ON bss_business_day_data.service_area_id = bss_service_area.id "
        "(inferred from the name; no foreign key declared)"
    ) in text
    assert "JOIN bss_company ON bss_service_area.company_id = bss_company.id" in text


def test_shop_schema_keeps_declared_keys_and_marks_only_real_bookkeeping() -> None:
    text = prompts.render_schema(shop_tables())
    assert "- JOIN customers ON orders.customer_id = customers.id\n" in text + "\n"
    assert "is_deleted boolean" in text and "[soft-delete: keep rows where is_deleted = false]" in text
    # customers.created_at is the customer's sign-up time (no created_by beside it): no audit marker
    customers = text.split("CREATE TABLE customers", 1)[1].split(");", 1)[0]
    (line,) = [x for x in customers.splitlines() if x.strip().startswith("created_at")]
    assert "[audit" not in line


def test_schema_marks_per_row_rates() -> None:
    text = prompts.render_schema(shop_tables())
    products = text.split("CREATE TABLE products", 1)[1].split(");", 1)[0]
    (price,) = [x for x in products.splitlines() if x.strip().startswith("price")]
    assert "[rate: average it, never sum it]" in price
    assert "pay_sum numeric(19,4),\n" in prompts.render_schema(highway_tables())  # a sum is no rate


def test_generation_prompt_states_the_quality_rules() -> None:
    theme = Theme(name="服务区营收分析", description="营收", related_tables=["bss_business_day_data"])
    text = _user(prompts.generate_pairs(theme, highway_tables(), "高速公路服务区", 10))
    assert prompts.QUALITY_RULES in text
    for rule in (
        "[audit]",
        "[soft-delete]",
        "cartesian",
        "LIMIT",
        "SELECT *",
        "No two questions alike",
        "[rate]",
        "Take the direct relation",
    ):
        assert rule in text
    assert "Relations (join along these)" in text
    themes = _user(prompts.propose_themes(highway_tables(), "高速公路服务区", 3))
    assert "never after a column" in themes


def test_quality_repair_prompt_carries_the_flag_and_the_question() -> None:
    sql = "SELECT sum(pay_sum) FROM bss_business_day_data"
    reason = quality_reason("missing_soft_delete_filter", "add bss_business_day_data.delete_ts IS NULL")
    text = _user(
        prompts.repair_sql(sql, reason, "CREATE TABLE x ();", highway_tables()[3:4], "服务区营收合计?")
    )
    assert "It must answer this question:\n服务区营收合计?" in text
    assert "runs, but as Text2SQL training data it has a quality problem" in text
    # a question that asks for the problem itself (bookkeeping, the total of a rate) is given up
    assert "or for the total of a [rate]), answer null for sql" in text
    assert "Problem to fix:\nmissing_soft_delete_filter: add bss_business_day_data.delete_ts IS NULL" in text
    assert "[soft-delete: keep rows where delete_ts IS NULL]" in text  # the rendered schema, not bare DDL
    plain = _user(prompts.repair_sql(sql, 'column "x" does not exist', "CREATE TABLE x ();", [], "q?"))
    assert "This PostgreSQL statement fails" in plain and "quality problem" not in plain
