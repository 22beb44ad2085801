"""dpctl's command groups: each module adds its subparsers and the functions that run them.

Every leaf command takes `(client, args)` and returns the exit code. A command that works without
the gateway (such as `workflow run`) sets `needs_gateway=False` with `set_defaults` and gets None.
"""

from __future__ import annotations

import argparse


def leaf_options() -> argparse.ArgumentParser:
    """Options accepted after the command too (`dpctl task list --json`), not only before it."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="JSON output")
    common.add_argument("--url", default=argparse.SUPPRESS, help="gateway URL")
    common.add_argument("--token", default=argparse.SUPPRESS, help="bearer token")
    return common
