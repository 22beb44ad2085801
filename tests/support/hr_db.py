"""The second, differently shaped schema (HR and logistics of a manufacturer): mixed-case names,
non-public schemas, an enum type, a domain, a composite key, a self-reference, a partitioned table and a
soft-deleted employee now and then. `HR_SCHEMA` creates and fills it in a throwaway database; `TABLES` is
the table list a task names. Used by tests/integration/test_steps_review.py, the quality tests and
`make quality`.
"""

from __future__ import annotations

HR_SCHEMA = """
CREATE SCHEMA "HR";
CREATE SCHEMA logistics;
CREATE TYPE "HR"."EmpStatus" AS ENUM ('active', 'on leave', 'left');
CREATE DOMAIN "HR".email AS text CHECK (VALUE LIKE '%@%');
CREATE TABLE "HR"."Department" (
    "DeptID" serial PRIMARY KEY,
    "Name" text NOT NULL,
    "ParentID" int REFERENCES "HR"."Department" ("DeptID"),
    "order" int,
    region varchar(20)
);
CREATE TABLE "HR"."Employee" (
    "EmpID" int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    "DeptID" int REFERENCES "HR"."Department",
    "FullName" text NOT NULL,
    status "HR"."EmpStatus" NOT NULL DEFAULT 'active',
    email "HR".email,
    "Salary" numeric(10, 2),
    bonus numeric(10, 2) GENERATED ALWAYS AS ("Salary" * 0.1) STORED,
    skills text[],
    hired_on date NOT NULL DEFAULT current_date,
    deleted_at timestamptz
);
CREATE TABLE logistics.warehouse (id int PRIMARY KEY, city text NOT NULL, kind varchar(10));
CREATE TABLE logistics.shipment (
    warehouse_id int REFERENCES logistics.warehouse,
    shipment_no int,
    carrier varchar(20),
    shipped_at timestamp,
    weight_kg real,
    PRIMARY KEY (warehouse_id, shipment_no)
);
CREATE TABLE logistics.shipment_line (
    warehouse_id int, shipment_no int, line int, sku text, qty int,
    PRIMARY KEY (warehouse_id, shipment_no, line),
    FOREIGN KEY (warehouse_id, shipment_no) REFERENCES logistics.shipment
);
CREATE TABLE logistics.tracking (id bigint, shipment_no int, at timestamptz NOT NULL, note text)
    PARTITION BY RANGE (at);
CREATE TABLE logistics.tracking_all PARTITION OF logistics.tracking DEFAULT;

INSERT INTO "HR"."Department" ("Name", "ParentID", "order", region)
SELECT 'Dept ' || g, CASE WHEN g > 1 THEN 1 END, g, (ARRAY['north', 'south', 'east'])[1 + g % 3]
FROM generate_series(1, 9) g;
INSERT INTO "HR"."Employee" ("DeptID", "FullName", status, email, "Salary", skills, hired_on, deleted_at)
SELECT 1 + g % 9, 'Person ' || g, (ARRAY['active', 'on leave', 'left'])[1 + g % 3]::"HR"."EmpStatus",
       'p' || g || '@corp.example', 3000 + g * 10, ARRAY['sql', 'excel'], current_date - g,
       CASE WHEN g % 17 = 0 THEN now() END
FROM generate_series(1, 200) g;
INSERT INTO logistics.warehouse SELECT g, (ARRAY['Lyon', 'Oslo', 'Kyiv'])[g], 'hub' FROM generate_series(1, 3) g;
INSERT INTO logistics.shipment
SELECT 1 + g % 3, g, (ARRAY['ups', 'dhl', 'fedex'])[1 + g % 3], now() - g * interval '6 hours', g * 1.5
FROM generate_series(1, 300) g;
INSERT INTO logistics.shipment_line SELECT 1 + g % 3, g, 1, 'SKU-' || (g % 40), 1 + g % 5 FROM generate_series(1, 300) g;
INSERT INTO logistics.tracking SELECT g, g, now() - g * interval '1 hour', 'scan' FROM generate_series(1, 100) g;
ANALYZE;
"""
TABLES = [
    '"HR"."Department"',
    '"HR"."Employee"',
    "logistics.warehouse",
    "logistics.shipment",
    "logistics.shipment_line",
    "logistics.tracking",
]
