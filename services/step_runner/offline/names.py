"""Names a business user would say, made from identifiers (offline provider).

A comment, when the catalog has one, always comes first (offline/schema.py reads it); this module is the
fallback for identifiers without one: `bss_business_day_data` -> "daily business data" / "每日营业数据".
1. Drop the table prefix every table of the schema shares (`bss_`), and the usual technical prefixes
   (`tb_`, `t_`, `ods_`, ...) even when only one table is known (a description is written per table).
2. Split the words (`orderItems`, `order_items`).
3. Read them through a small glossary of business terms, longest phrase first: English abbreviations
   expanded (`qty` -> quantity, `wx` -> WeChat Pay), Chinese words translated; a word the glossary does
   not know stays as it is (in English).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# prefixes that say how a table is stored, not what it holds
TECHNICAL_PREFIXES = frozenset(
    {"bss", "tb", "tbl", "t", "ods", "dwd", "dws", "dwm", "ads", "dim", "fact", "biz", "app", "stg", "src"}
)

# English: phrases first (joined words as keys), then single words
_EN_PHRASES = {
    "business day data": "daily business record",
    "car day count": "daily traffic count",
    "day count": "daily count",
    "pay sum": "total payment",
    "order sum": "order count",
    "oper date": "business date",
    "count date": "count date",
    "service area mapper": "service area mapping",
    "section route area link": "route service area link",
    "customer count": "customer count",
    "wx order": "WeChat Pay order count",
    "zf order": "Alipay order count",
    "zfb order": "Alipay order count",
    "rmb order": "cash order count",
    "xs order": "Xingba order count",
    "jd order": "Jindou order count",
}
_EN_WORDS = {
    "wx": "WeChat Pay amount",
    "zfb": "Alipay amount",
    "rmb": "cash amount",
    "xs": "Xingba amount",
    "jd": "Jindou amount",
    "qty": "quantity",
    "amt": "amount",
    "cnt": "count",
    "num": "number",
    "no": "number",
    "nbr": "number",
    "desc": "description",
    "addr": "address",
    "dept": "department",
    "emp": "employee",
    "cust": "customer",
    "prod": "product",
    "oper": "operating",
    "dt": "date",
    "ts": "time",
    "tel": "phone",
    "org": "organisation",
}

# Chinese
_ZH_PHRASES = {
    "unit price": "单价",
    "order date": "下单日期",
    "created at": "创建时间",
    "updated at": "更新时间",
    "deleted at": "删除时间",
    "total amount": "总金额",
    "order items": "订单明细",
    "order item": "订单明细",
    "service area": "服务区",
    "section route": "路段路线",
    "business day data": "每日营业数据",
    "car day count": "每日车流量",
    "customer count": "客流量",
    "pay sum": "支付总金额",
    "order sum": "订单总数",
    "oper date": "营业日期",
    "count date": "统计日期",
    "car type": "车辆类型",
    "area link": "服务区关联",
    "source system": "来源系统",
    "source type": "来源类型",
    "wx order": "微信订单数",
    "zf order": "支付宝订单数",
    "zfb order": "支付宝订单数",
    "rmb order": "现金订单数",
    "full name": "姓名",
    "hired on": "入职日期",
    "shipped at": "发货时间",
    "loyalty tier": "会员等级",
    "birth date": "出生日期",
    "first name": "名",
    "last name": "姓",
    "postal code": "邮政编码",
    "shipping fee": "运费",
    "shipping address": "收货地址",
    "verified purchase": "已验证购买",
    "marketing opt in": "同意营销",
    "opened on": "开业日期",
    "delivered at": "送达时间",
    "ordered at": "下单时间",
    "home store": "常去门店",
}
_ZH_WORDS = {
    "order": "订单",
    "orders": "订单",
    "item": "明细",
    "items": "明细",
    "customer": "客户",
    "customers": "客户",
    "product": "商品",
    "products": "商品",
    "user": "用户",
    "users": "用户",
    "account": "账户",
    "payment": "支付",
    "payments": "支付",
    "invoice": "发票",
    "shop": "店铺",
    "store": "门店",
    "employee": "员工",
    "department": "部门",
    "dept": "部门",
    "emp": "员工",
    "supplier": "供应商",
    "category": "类别",
    "amount": "金额",
    "total": "总",
    "price": "价格",
    "unit": "单",
    "quantity": "数量",
    "qty": "数量",
    "status": "状态",
    "state": "状态",
    "type": "类型",
    "kind": "类型",
    "name": "名称",
    "city": "城市",
    "region": "地区",
    "country": "国家",
    "segment": "客户分群",
    "channel": "渠道",
    "date": "日期",
    "day": "日",
    "month": "月",
    "created": "创建",
    "create": "创建",
    "updated": "更新",
    "at": "时间",
    "time": "时间",
    "level": "等级",
    "group": "分组",
    "email": "邮箱",
    "phone": "电话",
    "cost": "成本",
    "discount": "折扣",
    "revenue": "收入",
    "sales": "销售额",
    "stock": "库存",
    "score": "评分",
    "rating": "评分",
    "gender": "性别",
    "age": "年龄",
    "service": "服务",
    "area": "区",
    "branch": "档口",
    "highway": "高速公路",
    "car": "车辆",
    "vehicle": "车辆",
    "trip": "行程",
    "fee": "费用",
    "paid": "支付",
    "company": "公司",
    "route": "路线",
    "section": "路段",
    "code": "编码",
    "no": "编号",
    "number": "编号",
    "count": "数量",
    "mapper": "映射",
    "mapping": "映射",
    "link": "关联",
    "source": "来源",
    "system": "系统",
    "position": "位置",
    "salary": "薪资",
    "bonus": "奖金",
    "warehouse": "仓库",
    "shipment": "发货单",
    "line": "行",
    "carrier": "承运商",
    "weight": "重量",
    "tracking": "物流跟踪",
    "note": "备注",
    "review": "评价",
    "reviews": "评价",
    "shipments": "发货单",
    "wx": "微信支付金额",
    "zfb": "支付宝支付金额",
    "rmb": "现金支付金额",
    "xs": "行吧支付金额",
    "jd": "金豆支付金额",
    "business": "营业",
    "data": "数据",
    "sku": "SKU",
    "kg": "千克",
    "employees": "员工",
    "stores": "门店",
    "addresses": "地址",
    "address": "地址",
    "categories": "类别",
    "brand": "品牌",
    "method": "方式",
    "role": "角色",
    "title": "标题",
    "body": "正文",
    "subtotal": "小计",
    "tags": "标签",
    "skills": "技能",
    "manager": "经理",
    "parent": "上级",
    "active": "有效",
    "default": "默认",
    "online": "线上",
    "deleted": "已删除",
    "is": "",
    "id": "编号",
}


def split_words(identifier: str) -> list[str]:
    """`orderItems` / `order_items` -> ["order", "items"]."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", identifier)
    return [w for w in re.split(r"[_\s\-]+", spaced.lower()) if w]


def shared_prefix(table_names: Iterable[str]) -> str | None:
    """The first word every table name starts with (`bss` for bss_company, bss_service_area, ...), when
    there are two tables or more and each has more words after it; None otherwise."""
    split = [split_words(n) for n in table_names]
    if len(split) < 2 or any(len(words) < 2 for words in split):
        return None
    firsts = {words[0] for words in split}
    return firsts.pop() if len(firsts) == 1 else None


def name_words(identifier: str, prefix: str | None = None) -> list[str]:
    """The words of an identifier without its storage prefix (never all of its words)."""
    parts = split_words(identifier)
    if len(parts) >= 2 and (parts[0] == prefix or parts[0] in TECHNICAL_PREFIXES):
        parts = parts[1:]
    return parts


def _translate(parts: list[str], phrases: dict[str, str], singles: dict[str, str]) -> list[tuple[str, bool]]:
    """Longest glossary phrase first; (text, known) pieces."""
    out: list[tuple[str, bool]] = []
    i = 0
    while i < len(parts):
        for j in range(len(parts), i, -1):
            key = " ".join(parts[i:j])
            if j - i >= 2 and key in phrases:
                out.append((phrases[key], True))
                i = j
                break
        else:
            word = parts[i]
            out.append((singles.get(word, word), word in singles))
            i += 1
    return out


# a unit a column's name ends with: `weight_kg` -> "weight in kg", `price_usd` -> "price in USD"
_EN_UNITS = {
    **{u: u for u in "kg lb lbs km cm mm ml ms".split()},
    **{u: u.upper() for u in "usd eur cny gbp jpy kb mb gb tb".split()},
    **dict.fromkeys(("sec", "secs"), "seconds"),
    **dict.fromkeys(("min", "mins"), "minutes"),
    "hrs": "hours",
}


def humanise_en(identifier: str, prefix: str | None = None) -> str:
    """An English name: `bss_business_day_data` -> "daily business record", `unit_qty` -> "unit quantity",
    `weight_kg` -> "weight in kg"."""
    parts = name_words(identifier, prefix)
    unit = _EN_UNITS.get(parts[-1]) if len(parts) >= 2 else None
    words = parts[:-1] if unit else parts
    text = " ".join(text for text, _ in _translate(words, _EN_PHRASES, _EN_WORDS)).strip()
    return f"{text} in {unit}" if unit else text


def humanise_zh(identifier: str, prefix: str | None = None) -> str:
    """A Chinese name: `bss_service_area` -> "服务区", `car_type` -> "车辆类型"; unknown words stay English
    (`shipment_carrier_xyz` -> "发货单承运商 xyz")."""
    parts = name_words(identifier, prefix)
    out = ""
    for text, _known in _translate(parts, _ZH_PHRASES, _ZH_WORDS):
        if not text:
            continue  # `is_active` -> "有效"
        ascii_text = text.isascii()
        if out and (ascii_text or out[-1].isascii()) and not out.endswith(" "):
            out += " "
        out += text
    return out.strip()
