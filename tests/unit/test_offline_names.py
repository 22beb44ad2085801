"""Names humanised from identifiers (offline/names.py) and read by the generator (offline/schema.py)."""

from __future__ import annotations

import pytest

from services.step_runner.offline.names import (
    humanise_en,
    humanise_zh,
    name_words,
    shared_prefix,
    split_words,
)
from services.step_runner.offline.provider import _candidates
from services.step_runner.offline.schema import SchemaModel, column_label, entity_names
from services.step_runner.pipeline.catalog import ColumnInfo, TableInfo


def test_split_words() -> None:
    assert split_words("orderItems") == ["order", "items"]
    assert split_words("bss_business_day_data") == ["bss", "business", "day", "data"]
    assert split_words("FullName") == ["full", "name"]


def test_shared_prefix_only_when_every_table_has_it() -> None:
    assert shared_prefix(["bss_company", "bss_service_area", "bss_car_day_count"]) == "bss"
    assert shared_prefix(["bss_company", "service_area"]) is None
    assert shared_prefix(["bss_company"]) is None  # one table: nothing shared
    assert shared_prefix(["orders", "order_items"]) is None  # `orders` has no word after a prefix


def test_a_prefix_is_dropped_but_never_every_word() -> None:
    assert name_words("crm_customer", "crm") == ["customer"]
    assert name_words("tb_order") == ["order"]  # a technical prefix, even without the schema
    assert name_words("bss") == ["bss"]
    assert name_words("t_", None) == ["t"]


@pytest.mark.parametrize(
    ("identifier", "english", "chinese"),
    [
        ("bss_business_day_data", "daily business record", "每日营业数据"),
        ("bss_car_day_count", "daily traffic count", "每日车流量"),
        ("bss_service_area", "service area", "服务区"),
        ("bss_company", "company", "公司"),
        ("pay_sum", "total payment", "支付总金额"),
        ("order_sum", "order count", "订单总数"),
        ("wx", "WeChat Pay amount", "微信支付金额"),
        ("unit_qty", "unit quantity", "单数量"),
        ("loyalty_tier", "loyalty tier", "会员等级"),
        ("is_active", "is active", "有效"),
    ],
)
def test_glossary_in_both_languages(identifier: str, english: str, chinese: str) -> None:
    assert humanise_en(identifier, "bss") == english
    assert humanise_zh(identifier, "bss") == chinese


def test_unknown_words_stay_english_beside_translated_ones() -> None:
    assert humanise_zh("shipment_zorblax") == "发货单 zorblax"
    assert humanise_en("zorblax_amt") == "zorblax amount"


def _table(name: str, comment: str | None = None, columns: list[ColumnInfo] | None = None) -> TableInfo:
    cols = columns or [ColumnInfo(name="id", data_type="integer", is_primary_key=True)]
    return TableInfo(name=name, comment=comment, columns=cols, primary_key=["id"])


def test_a_comment_comes_before_the_identifier() -> None:
    commented = _table("bss_business_day_data", comment="服务区档口每日营业数据表,每行一天")
    assert entity_names(commented, chinese=True, prefix="bss").one == "服务区档口每日营业数据"
    bare = _table("bss_business_day_data")
    assert entity_names(bare, chinese=True, prefix="bss").one == "每日营业数据"
    assert entity_names(bare, chinese=False, prefix="bss").many == "daily business records"
    col = ColumnInfo(name="wx", data_type="numeric", comment="微信支付金额")
    assert column_label(col, chinese=True) == "微信支付金额"
    short = ColumnInfo(name="amt", data_type="numeric", comment="Net amount")
    assert column_label(short, chinese=False) == "net amount"
    sentence = ColumnInfo(name="amt", data_type="numeric", comment="Amount of the order, after discounts")
    assert column_label(sentence, chinese=False) == "amount"


def test_the_model_knows_the_shared_prefix() -> None:
    model = SchemaModel([_table("bss_company"), _table("bss_service_area")])
    assert model.prefix == "bss"
    names = [entity_names(p.table, False, model.prefix).one for p in model.profiles.values()]
    assert names == ["company", "service area"]


def test_a_person_is_listed_by_first_and_family_name() -> None:
    person = TableInfo(
        name="employees",
        columns=[
            ColumnInfo(name="id", data_type="integer", is_primary_key=True),
            ColumnInfo(name="first_name", data_type="text"),
            ColumnInfo(name="last_name", data_type="text"),
            ColumnInfo(name="salary", data_type="numeric"),
        ],
        primary_key=["id"],
    )
    company = TableInfo(
        name="companies",
        columns=[
            ColumnInfo(name="id", data_type="integer", is_primary_key=True),
            ColumnInfo(name="name", data_type="text"),
            ColumnInfo(name="last_name", data_type="text"),  # a name column that is not a person's
        ],
        primary_key=["id"],
    )
    profiles = SchemaModel([person, company]).profiles.values()
    assert [p.identity for p in profiles] == [["id", "first_name", "last_name"], ["id", "name"]]


def test_a_birth_date_is_no_event_time() -> None:
    customers = TableInfo(
        name="customers",
        columns=[
            ColumnInfo(name="id", data_type="integer", is_primary_key=True),
            ColumnInfo(name="birth_date", data_type="date"),
            ColumnInfo(name="dob", data_type="date"),
            ColumnInfo(name="signed_up_at", data_type="timestamptz"),
        ],
        primary_key=["id"],
    )
    (profile,) = SchemaModel([customers]).profiles.values()
    assert [c.name for c in profile.time_columns] == ["signed_up_at"]


def test_a_flag_that_asks_shi_fou_is_grouped_by_its_question_in_chinese() -> None:
    customers = TableInfo(
        name="customers",
        comment="客户",
        columns=[
            ColumnInfo(name="id", data_type="integer", is_primary_key=True),
            ColumnInfo(name="marketing_opt_in", data_type="boolean", comment="客户是否同意营销"),
            ColumnInfo(name="is_active", data_type="boolean", comment="有效"),
        ],
        primary_key=["id"],
    )
    model = SchemaModel([customers])
    questions = {c.question for c in _candidates(model, list(model.profiles), True)}
    assert "按是否同意营销统计,各有多少个客户?" in questions
    assert "按有效与否统计,各有多少个客户?" in questions
    assert not [q for q in questions if "是否" in q and "与否" in q]


@pytest.mark.parametrize(
    "name,label",
    [("weight_kg", "weight in kg"), ("price_usd", "price in USD"), ("size_mb", "size in MB"), ("kg", "kg")],
)
def test_a_unit_suffix_reads_as_a_unit(name: str, label: str) -> None:
    assert humanise_en(name) == label
