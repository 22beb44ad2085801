"""dpctl entry point: global options, command dispatch, and the mapping of failures to exit codes.

Exit codes: 0 success; 1 server-side error (5xx), or a followed task that did not complete;
2 the request was refused (4xx) or the command line is wrong; 3 the gateway cannot be reached;
130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings.exceptions import SettingsError

from services.dpctl.client import ApiError, GatewayClient, GatewayUnreachable
from services.dpctl.commands import db, task
from services.dpctl.settings import DpctlSettings
from shared.settings_loading import settings_error_text

EXIT_SERVER_ERROR = 1
EXIT_REQUEST_REFUSED = 2
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130


def build_parser(settings: DpctlSettings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dpctl",
        description="Command line for the Data Pipeline: create and watch tasks, read logs, fetch files.",
        epilog="Environment: DP_GATEWAY_URL, DP_API_TOKEN (or --token-file). Exit codes: 0 ok, 1 server error or task not "
        "completed, 2 request refused, 3 gateway unreachable.",
    )
    parser.add_argument(
        "--url", default=settings.gateway_url, help=f"gateway URL (default {settings.gateway_url})"
    )
    token = settings.api_token.get_secret_value() if settings.api_token else None
    parser.add_argument(
        "--token",
        default=token,
        action=_DeprecatedTokenOption,
        help="deprecated: other users see it in the process list; use DP_API_TOKEN or --token-file",
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        help="file holding the bearer token (first line; should be readable by you only)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable JSON output")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    task.add_parser(commands)
    db.add_parser(commands)
    _add_workflow_parser(commands)
    return parser


class _DeprecatedTokenOption(argparse.Action):
    """`--token VALUE` still works, with a warning: a command line is readable by every local user."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, *_: Any
    ) -> None:
        print(
            "dpctl: warning: --token is deprecated (visible to other users in `ps`); "
            "set DP_API_TOKEN or use --token-file",
            file=sys.stderr,
        )
        setattr(namespace, self.dest, values)


def read_token_file(path: Path) -> str:
    """The token from the first line of `path`; a warning when others may read the file."""
    try:
        mode = path.stat().st_mode
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the token file {path}: {type(exc).__name__}") from None
    token = lines[0].strip() if lines else ""
    if not token:
        raise ValueError(f"the token file {path} is empty")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        print(f"dpctl: warning: {path} is accessible to other users; chmod 600 it", file=sys.stderr)
    return token


def _add_workflow_parser(commands: argparse._SubParsersAction) -> None:
    """`dpctl workflow ...` (manual in-process runs) lives in services.dpctl.workflow when installed."""
    if importlib.util.find_spec("services.dpctl.workflow") is None:
        return
    workflow = importlib.import_module("services.dpctl.workflow")
    workflow.add_parser(commands)


def run(argv: Sequence[str] | None = None) -> int:
    try:
        settings = DpctlSettings()
    except (ValidationError, SettingsError) as exc:
        # Without the values: DP_API_TOKEN is one of them.
        print(settings_error_text(DpctlSettings, "dpctl", exc), file=sys.stderr)
        return EXIT_REQUEST_REFUSED
    parser = build_parser(settings)
    args = parser.parse_args(argv)
    if args.token_file is not None:
        try:
            args.token = read_token_file(args.token_file)
        except ValueError as exc:
            print(f"dpctl: {exc}", file=sys.stderr)
            return EXIT_REQUEST_REFUSED
    if getattr(args, "needs_gateway", True):
        client = GatewayClient(args.url, args.token, timeout=args.timeout)
    else:
        client = None
    try:
        return int(args.func(client, args) or 0)
    except ApiError as exc:
        _report(
            args, {"error": exc.reason, "status": exc.status, "error_type": exc.error_type, **_extras(exc)}
        )
        return EXIT_REQUEST_REFUSED if 400 <= exc.status < 500 else EXIT_SERVER_ERROR
    except GatewayUnreachable as exc:
        _report(args, {"error": str(exc), "hint": "is the gateway running? set --url or DP_GATEWAY_URL"})
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        print("\ndpctl: interrupted (the task, if any, goes on running)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0


def _extras(exc: ApiError) -> dict:
    return {k: exc.details[k] for k in ("missing_params", "invalid_params") if k in exc.details}


def _report(args: argparse.Namespace, error: dict) -> None:
    if args.json:
        print(json.dumps(error), file=sys.stderr)
        return
    text = f"dpctl: {error['error']}"
    for key in ("missing_params", "invalid_params"):
        if error.get(key):
            text += f"\n  {key.replace('_', ' ')}: {', '.join(map(str, error[key]))}"
    if error.get("hint"):
        text += f"\n  {error['hint']}"
    print(text, file=sys.stderr)


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
