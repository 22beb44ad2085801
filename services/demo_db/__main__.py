"""Create (if missing) and seed the demo database.

python -m services.demo_db --url postgresql://postgres@127.0.0.1:5432/dp_demo [--recreate]
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from services.demo_db.generator import create_demo_database
from shared.secrets import mask_url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.demo_db", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--url", required=True, help="PostgreSQL URL of the demo database (created if missing)"
    )
    parser.add_argument("--recreate", action="store_true", help="drop the database first")
    args = parser.parse_args(argv)
    try:
        counts = asyncio.run(create_demo_database(args.url, recreate=args.recreate))
    except Exception as exc:  # a CLI: say what went wrong in one line, without the password
        print(f"error: {mask_url(str(exc))}", file=sys.stderr)
        return 1
    print(f"demo database ready at {mask_url(args.url)}")
    for table, count in counts.items():
        print(f"  {table:<12} {count:>6} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
