"""Creates and fills the demo retail database: the same rows for the same day (seeded random), with dates
in the last ~18 months so questions like "orders last month" have answers."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from importlib import resources
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from shared.business_db import quote_ident

SEED = 20240601
DAYS_BACK = 548
TABLES = (
    "stores",
    "employees",
    "customers",
    "addresses",
    "categories",
    "products",
    "orders",
    "order_items",
    "payments",
    "shipments",
    "reviews",
)

_FIRST = "Anna Ben Clara David Emma Felix Greta Hannah Ida Jonas Karl Lena Max Mia Noah Olga Paul Rosa Sara Tim Ulla Vera Yusuf Zoe Liam Ella Omar Nina Jan Eva".split()
_LAST = "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Koch Richter Klein Wolf Neumann Braun Zimmermann Krüger Hartmann Lange Yilmaz Kaya Nowak Rossi Silva".split()
_CITIES = [
    ("Berlin", "East"),
    ("Hamburg", "North"),
    ("Munich", "South"),
    ("Cologne", "West"),
    ("Frankfurt", "West"),
    ("Leipzig", "East"),
    ("Stuttgart", "South"),
]
_CATEGORIES = {
    "Electronics": ["Phones", "Laptops", "Audio"],
    "Home": ["Kitchen", "Furniture"],
    "Fashion": ["Women", "Men", "Shoes"],
    "Sports": ["Outdoor", "Fitness"],
    "Beauty": ["Skincare"],
    "Toys": ["Board games"],
}
_BRANDS = ["Nordlicht", "Acme", "Kestrel", "Volta", "Lumen", "Brisa", "Oakline", None]
_TAGS = ["new", "sale", "bestseller", "eco", "limited", "bundle", "gift", "premium"]
_ADJ = ["Classic", "Smart", "Pro", "Mini", "Ultra", "Soft", "Urban", "Travel", "Compact", "Deluxe"]


def _server_url(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def _database_name(url: str) -> str:
    name = urlsplit(url).path.lstrip("/")
    if not name:
        raise ValueError("the URL must name a database, e.g. postgresql://postgres@127.0.0.1:5432/dp_demo")
    return name


async def ensure_database(url: str, *, recreate: bool = False) -> bool:
    """Create the database named in `url` when it is missing (drop it first with `recreate`); True if created."""
    name = _database_name(url)
    admin = await asyncpg.connect(_server_url(url, "postgres"))
    try:
        if recreate:
            await admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
        exists = await admin.fetchval("SELECT true FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        try:
            await admin.execute(f"CREATE DATABASE {quote_ident(name)}")
        except asyncpg.DuplicateDatabaseError:
            return False
        return True
    finally:
        await admin.close()


async def drop_database(url: str) -> None:
    admin = await asyncpg.connect(_server_url(url, "postgres"))
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(_database_name(url))} WITH (FORCE)")
    finally:
        await admin.close()


def _money(value: float) -> Decimal:
    return Decimal(str(round(value, 2)))


def generate_rows(today: dt.date, seed: int = SEED) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the demo database, by table, in column order of schema.sql."""
    rng = random.Random(seed)
    start = dt.datetime.combine(today, dt.time(0), tzinfo=dt.UTC) - dt.timedelta(days=DAYS_BACK)

    def moment(min_days: float = 0.0, max_days: float = DAYS_BACK) -> dt.datetime:
        return start + dt.timedelta(days=rng.uniform(min_days, max_days))

    rows: dict[str, list[tuple[Any, ...]]] = {t: [] for t in TABLES}
    for i, (city, region) in enumerate(_CITIES, start=1):
        opened = (start - dt.timedelta(days=rng.randint(200, 3000))).date()
        rows["stores"].append((i, f"ST{i:03d}", f"{city} Flagship", city, region, opened, False))
    online_id = len(_CITIES) + 1
    rows["stores"].append((online_id, "WEB001", "Online Shop", "Berlin", "Online", start.date(), True))
    store_ids = [s[0] for s in rows["stores"]]

    emp_id = 0
    for store_id in store_ids:
        manager = None
        for j in range(rng.randint(5, 8)):
            emp_id += 1
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            role = "manager" if j == 0 else rng.choice(["cashier", "sales", "sales", "stock", "support"])
            salary = _money(rng.uniform(4200, 6500) if role == "manager" else rng.uniform(2300, 3800))
            hired = (start - dt.timedelta(days=rng.randint(0, 2500))).date()
            rows["employees"].append(
                (
                    emp_id,
                    store_id,
                    manager,
                    first,
                    last,
                    f"{first}.{last}.{emp_id}@shop.example".lower(),
                    role,
                    hired,
                    salary,
                    rng.random() > 0.08,
                )
            )
            if j == 0:
                manager = emp_id
    employees_by_store: dict[int, list[int]] = {}
    for e in rows["employees"]:
        employees_by_store.setdefault(e[1], []).append(e[0])

    for cid in range(1, 1201):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        created = moment(0, DAYS_BACK - 30)
        tier = rng.choices(["bronze", "silver", "gold", "platinum"], [60, 25, 11, 4])[0]
        deleted = moment((created - start).days + 1, DAYS_BACK) if rng.random() < 0.03 else None
        birth = (
            dt.date(rng.randint(1950, 2005), rng.randint(1, 12), rng.randint(1, 28))
            if rng.random() < 0.8
            else None
        )
        phone = f"+49 {rng.randint(150, 179)} {rng.randint(1000000, 9999999)}" if rng.random() < 0.7 else None
        rows["customers"].append(
            (
                cid,
                f"{first}.{last}.{cid}@mail.example".lower(),
                first,
                last,
                phone,
                birth,
                tier,
                rng.random() < 0.4,
                rng.choice([*store_ids, None]),
                created,
                deleted,
            )
        )
        for k in range(rng.choice([1, 1, 1, 2, 2, 3])):
            city = rng.choice(_CITIES)[0]
            rows["addresses"].append(
                (
                    len(rows["addresses"]) + 1,
                    cid,
                    "shipping" if k < 2 else "billing",
                    f"{rng.choice(_LAST)}straße {rng.randint(1, 180)}",
                    city,
                    f"{rng.randint(10000, 99999)}",
                    rng.choices(["DE", "AT", "CH"], [90, 6, 4])[0],
                    k == 0,
                )
            )
    addresses_by_customer: dict[int, list[int]] = {}
    for a in rows["addresses"]:
        addresses_by_customer.setdefault(a[1], []).append(a[0])

    cat_id = 0
    leaf_categories: list[int] = []
    for parent, children in _CATEGORIES.items():
        cat_id += 1
        parent_id = cat_id
        rows["categories"].append((parent_id, None, parent, parent.lower().replace(" ", "-")))
        for child in children:
            cat_id += 1
            leaf_categories.append(cat_id)
            rows["categories"].append(
                (cat_id, parent_id, f"{parent} {child}", f"{parent}-{child}".lower().replace(" ", "-"))
            )
    category_names = {c[0]: c[2] for c in rows["categories"]}

    for pid in range(1, 241):
        category = rng.choice(leaf_categories)
        price = _money(
            rng.choice([9.99, 14.99, 19.99, 29.99, 49.99, 79.99, 129.0, 249.0, 499.0, 899.0])
            * rng.uniform(0.8, 1.2)
        )
        cost = _money(float(price) * rng.uniform(0.35, 0.7))
        tags = sorted(rng.sample(_TAGS, rng.randint(0, 3)))
        noun = category_names[category].split()[-1].rstrip("s")
        rows["products"].append(
            (
                pid,
                f"SKU-{pid:05d}",
                f"{rng.choice(_ADJ)} {noun} {pid}",
                category,
                rng.choice(_BRANDS),
                price,
                cost,
                rng.randint(0, 400),
                tags,
                rng.random() < 0.05,
                moment(0, 120),
            )
        )
    prices = {p[0]: p[5] for p in rows["products"]}

    active_customers = [c for c in rows["customers"] if c[10] is None]
    for oid in range(1, 4001):
        customer = rng.choice(active_customers)
        ordered = moment((customer[9] - start).total_seconds() / 86400, DAYS_BACK)
        age_days = (start + dt.timedelta(days=DAYS_BACK) - ordered).days
        channel = rng.choices(["web", "app", "store"], [50, 30, 20])[0]
        store_id = online_id if channel != "store" else rng.choice(store_ids[:-1])
        employee = rng.choice(employees_by_store[store_id]) if channel == "store" else None
        if age_days > 14:
            status = rng.choices(["delivered", "cancelled", "refunded"], [88, 7, 5])[0]
        else:
            status = rng.choices(
                ["pending", "paid", "shipped", "delivered", "cancelled"], [15, 25, 30, 25, 5]
            )[0]
        subtotal = Decimal("0")
        for line_no in range(1, rng.choice([1, 1, 2, 2, 3, 4, 5]) + 1):
            product = rng.randint(1, 240)
            qty = rng.choices([1, 2, 3, 4], [70, 20, 7, 3])[0]
            line_discount = _money(float(prices[product]) * 0.1) if rng.random() < 0.15 else Decimal("0")
            rows["order_items"].append((oid, line_no, product, qty, prices[product], line_discount))
            subtotal += prices[product] * qty - line_discount
        discount = _money(float(subtotal) * 0.05) if rng.random() < 0.1 else Decimal("0")
        fee = Decimal("0") if channel == "store" or subtotal >= 50 else Decimal("4.95")
        total = subtotal - discount + fee
        address = rng.choice(addresses_by_customer[customer[0]]) if channel != "store" else None
        deleted = ordered + dt.timedelta(days=1) if rng.random() < 0.01 else None
        rows["orders"].append(
            (
                oid,
                f"SO-{ordered:%y%m}-{oid:05d}",
                customer[0],
                store_id,
                employee,
                status,
                channel,
                address,
                subtotal,
                discount,
                fee,
                total,
                ordered,
                deleted,
            )
        )
        if status != "pending":
            method = rng.choices(["card", "paypal", "invoice", "cash", "gift_card"], [45, 30, 10, 10, 5])[0]
            if channel == "store":
                method = rng.choice(["card", "cash"])
            pay_status = {"refunded": "refunded", "cancelled": "voided"}.get(status, "captured")
            rows["payments"].append(
                (
                    len(rows["payments"]) + 1,
                    oid,
                    method,
                    pay_status,
                    total,
                    ordered + dt.timedelta(minutes=rng.randint(1, 90)),
                    f"PSP-{rng.getrandbits(40):010x}",
                )
            )
        elif rng.random() < 0.3:
            rows["payments"].append((len(rows["payments"]) + 1, oid, "card", "failed", total, None, None))
        if status in {"shipped", "delivered", "refunded"} and channel != "store":
            shipped = ordered + dt.timedelta(hours=rng.randint(6, 72))
            delivered = shipped + dt.timedelta(hours=rng.randint(20, 120)) if status != "shipped" else None
            carrier = rng.choice(["DHL", "DPD", "Hermes", "UPS"])
            rows["shipments"].append(
                (
                    len(rows["shipments"]) + 1,
                    oid,
                    carrier,
                    f"{carrier[:2].upper()}{rng.getrandbits(36):011d}",
                    "delivered" if delivered else "in_transit",
                    shipped,
                    delivered,
                )
            )
        if status == "delivered" and rng.random() < 0.35:
            product = rows["order_items"][-1][2]
            rating = rng.choices([1, 2, 3, 4, 5], [5, 7, 15, 33, 40])[0]
            title = {1: "Disappointed", 2: "Not great", 3: "Okay", 4: "Good value", 5: "Excellent"}[rating]
            body = None if rng.random() < 0.3 else f"{title}. Would {'not ' if rating < 3 else ''}buy again."
            rows["reviews"].append(
                (
                    len(rows["reviews"]) + 1,
                    product,
                    customer[0],
                    rating,
                    title,
                    body,
                    True,
                    ordered + dt.timedelta(days=rng.randint(3, 30)),
                    rng.random() < 0.02,
                )
            )
    return rows


async def _is_seeded(conn: asyncpg.Connection) -> bool:
    if await conn.fetchval("SELECT to_regclass('public.reviews') IS NULL"):
        return False
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM public.orders)"))


async def seed(url: str, *, today: dt.date | None = None) -> dict[str, int]:
    """Create the schema and rows unless they are there; return the row count per table."""
    conn = await asyncpg.connect(url)
    try:
        if not await _is_seeded(conn):
            schema_sql = resources.files(__package__).joinpath("schema.sql").read_text(encoding="utf-8")
            rows = generate_rows(today or dt.date.today())
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext('dp_demo_seed'))")
                if not await _is_seeded(conn):
                    if await conn.fetchval("SELECT to_regclass('public.reviews') IS NULL"):
                        await conn.execute(schema_sql)
                    for table in TABLES:
                        await conn.copy_records_to_table(table, records=rows[table], schema_name="public")
                    for table in TABLES:
                        if table != "order_items":
                            await conn.execute(
                                f"SELECT setval(pg_get_serial_sequence('public.{table}', 'id'), "
                                f"(SELECT max(id) FROM public.{table}))"
                            )
            await conn.execute("ANALYZE")
        counts = {}
        for table in TABLES:
            counts[table] = await conn.fetchval(f"SELECT count(*) FROM public.{quote_ident(table)}")
        return counts
    finally:
        await conn.close()


async def create_demo_database(url: str, *, recreate: bool = False) -> dict[str, int]:
    await ensure_database(url, recreate=recreate)
    return await seed(url)
