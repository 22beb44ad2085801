"""Each quality flag on hand-written pairs: the pair a Text2SQL lead would drop or fix is flagged, the
pair they would keep is not (issue #13, item 1)."""

from __future__ import annotations

import pytest

from services.step_runner.pipeline.pair_quality import assess, assess_all, drop_verdicts, is_chinese_question
from services.step_runner.pipeline.pair_repairs import deterministic_fix
from services.step_runner.pipeline.question_duplicates import find_duplicates
from services.step_runner.pipeline.schema_index import SchemaIndex
from tests.support.highway_catalog import highway_tables
from tests.support.shop_catalog import shop_tables

HW = SchemaIndex(highway_tables())
SHOP = SchemaIndex(shop_tables())
LIVE_DAY = "d.delete_ts IS NULL"


def codes(question: str, sql: str, schema: SchemaIndex = HW) -> set[str]:
    return {f.code for f in assess(question, sql, schema)}


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT created_by, count(*) FROM bss_company WHERE delete_ts IS NULL GROUP BY created_by",
        "SELECT count(*) FROM bss_business_day_data d WHERE d.create_ts >= now() - interval '30 days' AND "
        + LIVE_DAY,
        "SELECT avg(d.pay_sum) FROM bss_business_day_data d WHERE d.updated_by = 'admin' AND " + LIVE_DAY,
        "SELECT count(*) FROM bss_company WHERE delete_ts IS NOT NULL",
        "SELECT deleted_by, count(*) FROM bss_company GROUP BY 1",
    ],
)
def test_bookkeeping_subject(sql: str) -> None:
    assert "bookkeeping_subject" in codes("q", sql)


@pytest.mark.parametrize(
    "sql,schema",
    [
        ("SELECT sum(d.pay_sum) FROM bss_business_day_data d WHERE " + LIVE_DAY, HW),
        # orders.created_at is the only business time of... no: customers has only created_at -> event time
        (
            "SELECT count(*) FROM customers WHERE created_at >= now() - interval '7 days' AND NOT is_deleted",
            SHOP,
        ),
        (
            "SELECT a.service_area_name, sum(d.pay_sum) FROM bss_business_day_data d JOIN bss_service_area a "
            "ON a.id = d.service_area_id AND a.delete_ts IS NULL WHERE " + LIVE_DAY + " GROUP BY 1",
            HW,
        ),
    ],
)
def test_business_subject_is_not_bookkeeping(sql: str, schema: SchemaIndex) -> None:
    assert "bookkeeping_subject" not in codes("q", sql, schema)


@pytest.mark.parametrize(
    "sql,schema",
    [
        ("SELECT sum(pay_sum) FROM bss_business_day_data", HW),
        (
            "SELECT a.service_area_name, sum(d.pay_sum) FROM bss_business_day_data d JOIN bss_service_area a "
            "ON a.id = d.service_area_id WHERE " + LIVE_DAY + " GROUP BY 1",
            HW,
        ),
        ("SELECT count(*) FROM customers", SHOP),
        ("SELECT count(*) FROM orders WHERE deleted_at IS NOT NULL", SHOP),
    ],
)
def test_missing_soft_delete_filter(sql: str, schema: SchemaIndex) -> None:
    assert "missing_soft_delete_filter" in codes("q", sql, schema)


@pytest.mark.parametrize(
    "sql,schema",
    [
        ("SELECT sum(pay_sum) FROM bss_business_day_data WHERE delete_ts IS NULL", HW),
        ("SELECT count(*) FROM customers c WHERE c.is_deleted = false", SHOP),
        ("SELECT count(*) FROM customers WHERE is_deleted IS NOT TRUE", SHOP),
        ("SELECT count(*) FROM customers WHERE NOT is_deleted", SHOP),
        ("SELECT count(*) FROM products", SHOP),  # no soft-delete column
    ],
)
def test_soft_delete_filter_present(sql: str, schema: SchemaIndex) -> None:
    assert "missing_soft_delete_filter" not in codes("q", sql, schema)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM bss_company c, bss_service_area a WHERE c.delete_ts IS NULL AND a.delete_ts IS NULL",
        "SELECT count(*) FROM bss_company c CROSS JOIN bss_service_area a",
    ],
)
def test_unjoined_multi_table(sql: str) -> None:
    assert "unjoined_multi_table" in codes("q", sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM bss_company c, bss_service_area a WHERE a.company_id = c.id",
        "SELECT count(*) FROM bss_company c JOIN bss_service_area a ON a.company_id = c.id",
        "SELECT d.pay_sum / s.total FROM bss_business_day_data d, (SELECT sum(pay_sum) AS total "
        "FROM bss_business_day_data) s",
    ],
)
def test_joined_tables(sql: str) -> None:
    assert "unjoined_multi_table" not in codes("q", sql)


def test_listing_without_limit() -> None:
    assert "listing_without_limit" in codes(
        "q", "SELECT company_name FROM bss_company WHERE delete_ts IS NULL"
    )
    for sql in (
        "SELECT company_name FROM bss_company WHERE delete_ts IS NULL LIMIT 10",
        "SELECT count(*) FROM bss_company",
        "SELECT service_state, count(*) FROM bss_service_area GROUP BY 1",
        "SELECT DISTINCT service_state FROM bss_service_area",
        "SELECT name FROM customers WHERE id = 42",
    ):
        assert "listing_without_limit" not in codes("q", sql, HW if "bss" in sql else SHOP), sql


def test_select_star() -> None:
    assert "select_star" in codes("q", "SELECT * FROM bss_company LIMIT 5")
    assert "select_star" in codes("q", "SELECT c.* FROM bss_company c LIMIT 5")
    assert "select_star" not in codes("q", "SELECT count(*) FROM bss_company")
    assert "select_star" not in codes(
        "q",
        "SELECT company_name FROM bss_company c WHERE EXISTS (SELECT * FROM bss_service_area a "
        "WHERE a.company_id = c.id) LIMIT 5",
    )


@pytest.mark.parametrize(
    "question",
    [
        "最近30天内bss business day data有多少个?",
        "按bss company的created by的分布",
        "What is the total pay_sum per day?",
        "How many rows are in bss_company?",
    ],
)
def test_raw_identifier_in_question(question: str) -> None:
    assert "raw_identifier_in_question" in codes(question, "SELECT 1")


@pytest.mark.parametrize(
    "question",
    ["各服务区最近30天的营收合计是多少?", "Which service areas had the highest revenue last month?"],
)
def test_business_words_are_not_raw_identifiers(question: str) -> None:
    assert "raw_identifier_in_question" not in codes(question, "SELECT 1")


@pytest.mark.parametrize(
    "question",
    [
        "How many service areas have service state '关闭'?",
        'Which service areas with service state "开放" had the most revenue?',
        "How many service areas have service state “关闭” or ‘维修’?",
        "Count the service areas whose service state is 「关闭」.",
        "How many service areas have service state ＇关闭＇?",  # full-width quotes, NFKC
        "What's the revenue of the areas whose service state is '关闭'?",
    ],
)
def test_an_english_question_quoting_a_chinese_value_is_english(question: str) -> None:
    # "service state" is a plain English phrase here: only a Chinese question's English words are raw
    assert not is_chinese_question(question)
    assert "raw_identifier_in_question" not in codes(question, "SELECT 1")


@pytest.mark.parametrize(
    "question",
    [
        "服务区的service state为'关闭'的有多少?",
        "查询 service state 为“关闭”的服务区数量",
        "关闭的服务区有多少 (service state)?",
        # the apostrophes of area's / branch's are no quotes: 收费站 stands outside any
        "Which area's 收费站 branch's service state is open?",
        "How many service areas have service_state '关闭'?",  # a raw identifier in any language
    ],
)
def test_a_chinese_question_or_a_raw_name_is_still_flagged(question: str) -> None:
    assert "raw_identifier_in_question" in codes(question, "SELECT 1")


def test_duplicates_and_near_duplicates() -> None:
    qs = [
        "各服务区最近30天的营收合计是多少?",
        "各服务区最近30天的营收合计是多少？",  # full-width punctuation
        "How many companies are there?",
        "how many companies are there",
        "各服务区最近7天的营收合计是多少?",  # another number: another question
        "Which service areas had the highest revenue last month, by payment channel?",
        "Which service areas had the highest revenue last month by payment channels?",
    ]
    assert find_duplicates(qs) == {1: 0, 3: 2, 6: 5}
    flags = assess_all([(q, "SELECT 1") for q in qs], HW)
    assert [any(f.code == "duplicate_question" for f in fl) for fl in flags] == [
        False,
        True,
        False,
        True,
        False,
        False,
        True,
    ]


def test_deterministic_fixes_clear_their_flag() -> None:
    listing = "SELECT company_name FROM bss_company WHERE delete_ts IS NULL"
    fixed = deterministic_fix(listing, "listing_without_limit", HW)
    assert fixed and "listing_without_limit" not in codes("q", fixed)

    unfiltered = (
        "SELECT a.service_area_name, sum(d.pay_sum) FROM bss_business_day_data d JOIN bss_service_area a "
        "ON a.id = d.service_area_id WHERE d.oper_date > '2024-01-01' GROUP BY 1"
    )
    fixed = deterministic_fix(unfiltered, "missing_soft_delete_filter", HW)
    assert fixed and "missing_soft_delete_filter" not in codes("q", fixed), fixed
    assert "oper_date" in fixed

    star = deterministic_fix("SELECT * FROM bss_company WHERE delete_ts IS NULL LIMIT 5", "select_star", HW)
    assert star and "select_star" not in codes("q", star) and "company_name" in star
    assert "created_by" not in star and "bookkeeping_subject" not in codes("q", star)

    assert deterministic_fix("SELECT created_by FROM bss_company", "bookkeeping_subject", HW) is None


def test_drop_verdicts_for_step_4() -> None:
    from shared.quality_flags import DEFAULT_QUALITY_ACTIONS

    pairs = [
        ("各服务区营收合计?", "SELECT sum(pay_sum) FROM bss_business_day_data WHERE delete_ts IS NULL"),
        (
            "谁创建的公司最多?",
            "SELECT created_by, count(*) FROM bss_company WHERE delete_ts IS NULL GROUP BY 1",
        ),
        ("各服务区营收合计？", "SELECT sum(pay_sum) FROM bss_business_day_data WHERE delete_ts IS NULL"),
        ("公司名单", "SELECT company_name FROM bss_company"),  # repair flags only: not refused here
    ]
    verdicts = drop_verdicts(pairs, HW, DEFAULT_QUALITY_ACTIONS)
    assert verdicts == {1: ["bookkeeping_subject"], 2: ["duplicate_question"]}
    assert drop_verdicts(pairs, HW, {**DEFAULT_QUALITY_ACTIONS, "bookkeeping_subject": "keep"}) == {
        2: ["duplicate_question"]
    }


def test_soft_delete_fix_on_the_nullable_side_goes_into_the_join() -> None:
    sql = (
        "SELECT c.name, count(o.id) FROM customers c LEFT JOIN orders o ON o.customer_id = c.id "
        "WHERE NOT c.is_deleted GROUP BY c.name"
    )
    fixed = deterministic_fix(sql, "missing_soft_delete_filter", SHOP)
    assert fixed is not None and "missing_soft_delete_filter" not in codes("q", fixed, SHOP)
    # customers without live orders still count (zero): the condition is part of the LEFT JOIN
    assert "ON o.customer_id = c.id AND o.deleted_at IS NULL WHERE" in fixed, fixed


def test_a_prefix_only_some_tables_share_is_a_word() -> None:
    from services.step_runner.pipeline.catalog import ColumnInfo, TableInfo

    def table(name: str) -> TableInfo:
        return TableInfo(name=name, columns=[ColumnInfo(name="id", data_type="integer")])

    schema = SchemaIndex([table("order_items"), table("order_history"), table("customers")])
    assert "raw_identifier_in_question" not in codes("Which order has the most items?", "SELECT 1", schema)
    assert "raw_identifier_in_question" in codes("How many order_items are there?", "SELECT 1", schema)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT category, sum(price) FROM products GROUP BY 1",
        "SELECT p.category, SUM(p.price::numeric) AS total FROM products p GROUP BY 1",
        "SELECT date_trunc('month', created_at), sum(price) OVER () FROM products",
    ],
)
def test_summed_rate(sql: str) -> None:
    (flag,) = [f for f in assess("q", sql, SHOP) if f.code == "summed_rate"]
    assert "products.price" in flag.detail


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT category, avg(price) FROM products GROUP BY 1",
        "SELECT o.customer_id, sum(i.quantity * i.unit_price) FROM orders o JOIN order_items i ON i.order_id = o.id"
        " GROUP BY 1",
        "SELECT sum(d.pay_sum) FROM bss_business_day_data d WHERE " + LIVE_DAY,
    ],
)
def test_averaged_rates_and_summed_amounts_are_fine(sql: str) -> None:
    schema = HW if "bss_" in sql else SHOP
    assert "summed_rate" not in codes("q", sql, schema)
