"""Issue #7 finding 6: SQL injected into `.ddl` files through names and comments from the catalog.

On the previous main a column named "x<newline>DROP TABLE …; --" with a default the file cannot recreate,
or with a foreign key, was written into a `--` note line with its newline, so running `inj.ddl` /
`inj_fk.ddl` executed the DROP. Here the real step 1 runs through the real services on such tables; the
generated files are then run in an empty schema, and nothing outside it may change.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import pytest
from pglast.parser import parse_sql

from tests.support.api import Api
from tests.support.demo_db import scratch_db_url  # noqa: F401  (fixture)
from tests.support.real_stack import real_api, real_env, real_stack  # noqa: F401  (fixtures)

pytestmark = pytest.mark.e2e

DROP = "DROP TABLE public.victim;"
HOSTILE_LF = f"x\n{DROP} --"
HOSTILE_CR = f"y\r{DROP} --"
HOSTILE_MD = "z\n## Injected section\n| a | b |\n`code`"

SCHEMA = f"""
CREATE TABLE victim (id int PRIMARY KEY);
INSERT INTO victim VALUES (1), (2), (3);
CREATE TABLE inj (
    id int PRIMARY KEY,
    "{HOSTILE_LF}" int DEFAULT (random() * 10)::int,
    "{HOSTILE_CR}" int DEFAULT (random() * 10)::int,
    "g\n{DROP} --" int GENERATED ALWAYS AS (id * 2) STORED,
    "{HOSTILE_MD}" text
);
COMMENT ON TABLE inj IS E'Injected\\n{DROP}\\r{DROP}';
COMMENT ON COLUMN inj.id IS E'id\\n{DROP}';
CREATE TABLE inj_fk (
    id int PRIMARY KEY,
    "{HOSTILE_LF}" int,
    CONSTRAINT "c\n{DROP} --" FOREIGN KEY ("{HOSTILE_LF}") REFERENCES inj (id)
);
INSERT INTO inj (id) VALUES (1), (2);
INSERT INTO inj_fk VALUES (1, 1);
"""


async def test_hostile_names_and_comments_stay_inert_in_ddl_and_markdown(
    real_api: Api,  # noqa: F811
    real_env: dict[str, str],  # noqa: F811
    scratch_db_url: str,  # noqa: F811
) -> None:
    conn = await asyncpg.connect(scratch_db_url)
    try:
        await conn.execute(SCHEMA)
        task_id = await real_api.create(
            scratch_db_url,
            business_context="hostile catalog",
            table_list=["public.inj", "public.inj_fk"],
            execution_mode="single",
            single_step=1,
        )
        detail = await real_api.wait(task_id, timeout=120)
        assert detail["status"] == "completed", detail
        task_dir = Path(real_env["DP_DATA_ROOT"]) / task_id
        ddl = {name: (task_dir / f"{name}.ddl").read_text() for name in ("inj", "inj_fk")}

        for text in ddl.values():
            # PostgreSQL's own parser sees only the statements the file is meant to hold
            kinds = {type(raw.stmt).__name__ for raw in parse_sql(text)}
            assert kinds <= {"CreateStmt", "CommentStmt", "DoStmt", "CreateSchemaStmt"}, kinds
            for line in text.replace("\r", "\n").splitlines():
                # names and comments stay on their line: the DROP never starts one
                assert not line.lstrip().upper().startswith("DROP"), line
            assert "\r" not in text
        assert "default omitted" in ddl["inj"]  # the note that used to carry the newline is still written

        # run both files in an empty schema: they succeed and touch nothing outside it
        fresh = f"scratch_{uuid.uuid4().hex[:8]}"
        await conn.execute(f"CREATE SCHEMA {fresh}")
        async with conn.transaction():
            await conn.execute(f"SET LOCAL search_path = {fresh}")
            await conn.execute(ddl["inj"])
            await conn.execute(ddl["inj_fk"])
            columns = await conn.fetch(
                "SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND a.attnum > 0",
                fresh,
            )
            fks = await conn.fetchval(
                "SELECT count(*) FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'f'",
                f"{fresh}.inj_fk",
            )
            table_comment = await conn.fetchval(
                "SELECT obj_description($1::regclass, 'pg_class')", f"{fresh}.inj"
            )
        assert await conn.fetchval("SELECT count(*) FROM public.victim") == 3
        assert {(r["relname"], r["attname"]) for r in columns} >= {
            ("inj", HOSTILE_LF),
            ("inj", HOSTILE_CR),
            ("inj", HOSTILE_MD),
            ("inj_fk", HOSTILE_LF),
        }  # the hostile names survive as names: quoted, not executed
        assert fks == 1
        assert table_comment == f"Injected\n{DROP}\r{DROP}"
    finally:
        await conn.close()

    # the Markdown has no section, table row or code span that the catalog text opened
    doc = (task_dir / "inj_detail.md").read_text()
    headings = [line for line in doc.splitlines() if line.startswith("#")]
    assert "## Injected section" not in headings and all("Injected" not in h for h in headings)
    assert not any(line.startswith("| a | b |") for line in doc.splitlines())
    assert "`code`" not in doc and "\\`code\\`" in doc
