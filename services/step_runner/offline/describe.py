"""Table and column descriptions written from names, types, keys and sample values (offline provider).

An existing comment always wins: the generator only fills what the database does not say.
"""

from __future__ import annotations

import re

from services.step_runner.llm.base import TableDescription
from services.step_runner.llm.sqltext import quote_literal
from services.step_runner.offline.names import humanise_en, humanise_zh
from services.step_runner.offline.schema import (
    Names,
    SchemaModel,
    TableProfile,
    column_label,
    entity_names,
    singular,
    type_family,
    words,
)
from services.step_runner.pipeline.catalog import ColumnInfo, TableInfo

_TIME_WORDS_EN = {
    "created": "Creation time",
    "create": "Creation time",
    "updated": "Last update time",
    "update": "Last update time",
    "modified": "Last modification time",
    "deleted": "Deletion time",
    "delete": "Deletion time",
}
_TIME_WORDS_ZH = {
    "created": "创建时间",
    "create": "创建时间",
    "updated": "最后更新时间",
    "update": "最后更新时间",
    "modified": "最后修改时间",
    "deleted": "删除时间",
    "delete": "删除时间",
}
_KNOWN_EN = {
    "name": "Name of the {one}",
    "title": "Title of the {one}",
    "email": "Email address of the {one}",
    "phone": "Phone number of the {one}",
    "mobile": "Mobile phone number of the {one}",
    "address": "Address of the {one}",
    "description": "Free-text description of the {one}",
    "remark": "Remarks about the {one}",
    "note": "Notes about the {one}",
    "notes": "Notes about the {one}",
    "status": "Status of the {one}",
    "type": "Type of the {one}",
    "quantity": "Quantity of the {one}",
    "price": "Price of the {one}",
    "unit_price": "Unit price of the {one}",
    "amount": "Amount of the {one}",
    "total_amount": "Total amount of the {one}",
}
_KNOWN_ZH = {
    "name": "名称",
    "title": "标题",
    "email": "电子邮箱",
    "phone": "电话号码",
    "mobile": "手机号码",
    "address": "地址",
    "description": "描述",
    "remark": "备注",
    "note": "备注",
    "notes": "备注",
    "status": "状态",
    "type": "类型",
    "quantity": "数量",
    "price": "价格",
    "unit_price": "单价",
    "amount": "金额",
    "total_amount": "总金额",
}


def describe(table: TableInfo, model: SchemaModel, chinese: bool) -> TableDescription:
    profile = model.profiles[table.qualified_name]
    names = entity_names(table, chinese)
    comments = {
        col.name: (col.comment or _column_comment(col, profile, model, names, chinese))
        for col in table.columns
    }
    return TableDescription(
        table_comment=table.comment or _table_comment(profile, model, names, chinese),
        column_comments=comments,
    )


def _table_comment(profile: TableProfile, model: SchemaModel, names: Names, chinese: bool) -> str:
    parents = [model.profiles[r.parent].table.name for r in model.parents_of(profile.key)]
    children = [model.profiles[r.child].table.name for r in model.children_of(profile.key)]
    parents, children = list(dict.fromkeys(parents)), list(dict.fromkeys(children))
    if chinese:
        text = f"{names.one}表({profile.table.name}),每行一条{names.one}记录"
        if parents:
            text += ",关联" + "、".join(parents)
        if children:
            text += ",被" + "、".join(children) + "引用"
        return text + "。"
    text = f"{names.many.capitalize()}: one row per {names.one}"
    if parents:
        text += ", linked to " + ", ".join(parents)
    if children:
        text += "; referenced by " + ", ".join(children)
    return text + "."


def _reference(col: ColumnInfo, profile: TableProfile, model: SchemaModel) -> str | None:
    for rel in model.parents_of(profile.key):
        if col.name in rel.child_columns:
            i = rel.child_columns.index(col.name)
            return f"{model.profiles[rel.parent].table.name}.{rel.parent_columns[i]}"
    for fk in profile.table.foreign_keys:
        if col.name in fk.columns and len(fk.columns) == len(fk.ref_columns):
            return f"{fk.ref_table}.{fk.ref_columns[fk.columns.index(col.name)]}"
    return None


def _values_hint(col: ColumnInfo, chinese: bool) -> str:
    if col.enum_values:
        shown = ", ".join(quote_literal(v) for v in col.enum_values[:12])
        return f";取值:{shown}" if chinese else f"; one of: {shown}"
    samples = [v for v in col.sample_values if v is not None and len(str(v)) <= 40][:3]
    if samples and type_family(col.data_type) in {"text", "numeric"}:
        shown = ", ".join(quote_literal(v) for v in samples)
        return f",例如 {shown}" if chinese else f" (e.g. {shown})"
    return ""


def _column_comment(
    col: ColumnInfo, profile: TableProfile, model: SchemaModel, names: Names, chinese: bool
) -> str:
    name = col.name.lower()
    one = names.one
    family = type_family(col.data_type)
    ref = _reference(col, profile, model)
    if col.name in profile.pk and len(profile.pk) == 1:
        return f"{one}的唯一标识(主键)" if chinese else f"Unique identifier of the {one} (primary key)"
    if ref is not None:
        ref_table = ref.split(".")[0]
        target = humanise_zh(ref_table) if chinese else singular(humanise_en(ref_table))
        return f"引用 {ref}({target})" if chinese else f"References {ref} (the {target} of this {one})"
    if name.endswith("_id") and family in {"numeric", "text", "uuid"}:
        target = humanise_zh(name[:-3]) if chinese else humanise_en(name[:-3])
        return f"关联的{target}的标识" if chinese else f"Identifier of the related {target}"
    if profile.soft_delete and profile.soft_delete[0].name == col.name:
        if family == "time":
            return (
                f"{one}的删除时间,为空表示未删除"
                if chinese
                else f"Deletion time of the {one} (NULL while active)"
            )
        return (
            f"{one}是否已删除(软删除标记)"
            if chinese
            else f"Soft-delete flag of the {one} (true when deleted)"
        )
    if family == "time":
        return _time_comment(name, one, family, chinese)
    if family == "bool":
        bare = re.sub(r"^(is|has|can)_", "", name)
        subject = humanise_zh(bare) if chinese else humanise_en(bare)
        return f"{one}是否{subject}" if chinese else f"Whether the {one} is {subject}"
    known = (_KNOWN_ZH if chinese else _KNOWN_EN).get(name)
    if known:
        base = f"{one}的{known}" if chinese else known.format(one=one)
    elif chinese:
        base = f"{one}的{column_label(col, True)}"
    else:
        base = f"{humanise_en(col.name).capitalize()} of the {one}"
    return base + _values_hint(col, chinese)


def _time_comment(name: str, one: str, family: str, chinese: bool) -> str:
    stem = re.sub(r"_(at|time|date|on|ts)$", "", name)
    table = _TIME_WORDS_ZH if chinese else _TIME_WORDS_EN
    if stem in table:
        return f"{one}的{table[stem]}" if chinese else f"{table[stem]} of the {one}"
    if chinese:
        return f"{one}的{humanise_zh(name)}"  # birth_date "出生日期", delivered_at "送达时间"
    if name.endswith("_at") or name.endswith("_time"):
        return f"Time the {one} was {words(stem)}"
    if name.endswith("_date"):
        return f"{humanise_en(stem).capitalize()} date of the {one}"
    return f"{one}的{humanise_zh(name)}" if chinese else f"{humanise_en(name).capitalize()} of the {one}"
