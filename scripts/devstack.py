"""The local stack: `up` / `down` (background services) and `run` (the newcomer's end-to-end demo).

`run` finds PostgreSQL and RabbitMQ (running locally; else `docker compose` when a Docker engine is
there; else locally installed servers; else it says what to install), migrates, creates the demo
business database, starts the four services with their logs interleaved under a service prefix,
submits a demo task, shows its progress live, and keeps the stack up until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from shared.broker import Topology

ROOT = Path(__file__).resolve().parents[1]
VAR = ROOT / "var"
RUN_DIR = VAR / "run"
LOG_DIR = VAR / "log"
PY = sys.executable
SERVICES = {
    "log_collector": "services.log_collector.main",
    "scheduler": "services.scheduler.main",
    "step_runner": "services.step_runner.main",
    "api_gateway": "services.api_gateway.main",
}
COLORS = {"log_collector": "35", "scheduler": "36", "step_runner": "33", "api_gateway": "32"}
STEP_NAMES = ("ddl_generation", "qa_generation", "sql_validation", "training_load")
# How long the services that got a Ctrl-C themselves have to stop before they are sent SIGTERM.
SIGINT_GRACE_SECONDS = 3.0
COMPOSE_URLS = {
    "DP_DATABASE_URL": "postgresql://dp:dp@127.0.0.1:5432/data_pipeline",
    "DP_RABBITMQ_URL": "amqp://dp:dp@127.0.0.1:5672/",
    "DP_DEMO_DATABASE_URL": "postgresql://dp:dp@127.0.0.1:5432/dp_demo",
}
DEMO_URL_DEFAULT = "postgresql://postgres@127.0.0.1:5432/dp_demo"


def env_value(name: str, default: str) -> str:
    return os.environ.get(name, default)


def gateway_url() -> str:
    return f"http://127.0.0.1:{env_value('DP_HTTP_PORT', '8084')}"


def port_taken_by_another() -> str | None:
    """Why the gateway cannot start here: its port answers already (readiness checks would talk to that
    process instead), or None."""
    port = int(env_value("DP_HTTP_PORT", "8084"))
    if not tcp_open("127.0.0.1", port):
        return None
    return f"port {port} is taken (a stack from `make up`? `make down` stops it), or set DP_HTTP_PORT"


def tcp_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_json(method: str, url: str, body: dict | None = None, timeout: float = 10) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    token = os.environ.get("DP_API_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except json.JSONDecodeError:
            return exc.code, {}


def wait_ready(timeout: float = 90, gateway: subprocess.Popen[bytes] | None = None) -> bool:
    """Until /readyz answers 200; False after `timeout`, or at once when the `gateway` process exited (a
    taken port, bad settings: its log says why)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gateway is not None and gateway.poll() is not None:
            return False
        try:
            status, _ = http_json("GET", f"{gateway_url()}/readyz", timeout=2)
            if status == 200:
                return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    return False


# ---- infrastructure -------------------------------------------------------------------------------


def ensure_infrastructure() -> None:
    """PostgreSQL on 5432 and RabbitMQ on 5672: use running ones, else start them, else explain."""
    need = {"PostgreSQL": 5432, "RabbitMQ": 5672}
    missing = [name for name, port in need.items() if not tcp_open("127.0.0.1", port)]
    if not missing:
        return
    print(f"[run] not running: {', '.join(missing)}")
    started_local_rabbitmq = False
    if shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
        print("[run] starting them with docker compose (deploy/compose.yaml)")
        subprocess.run(
            [
                "docker",
                "compose",
                "-f",
                str(ROOT / "deploy/compose.yaml"),
                "up",
                "-d",
                "postgres",
                "rabbitmq",
            ],
            check=False,
        )
        # The compose servers have their own credentials (deploy/compose.yaml); unless told otherwise, use them.
        for name, value in COMPOSE_URLS.items():
            os.environ.setdefault(name, value)
    else:
        if "PostgreSQL" in missing and shutil.which("pg_ctlcluster") and Path("/etc/postgresql").exists():
            version = sorted(os.listdir("/etc/postgresql"))[-1]
            print(f"[run] starting the local PostgreSQL {version} cluster")
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=False
            )
        if "RabbitMQ" in missing and shutil.which("rabbitmq-server"):
            print("[run] starting the local RabbitMQ server")
            subprocess.run(["rabbitmq-server", "-detached"], check=False)
            started_local_rabbitmq = True
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        missing = [name for name, port in need.items() if not tcp_open("127.0.0.1", port)]
        if not missing:
            if started_local_rabbitmq:
                enable_rabbitmq_console()
            return
        time.sleep(1)
    sys.exit(
        "[run] still not reachable: "
        + ", ".join(missing)
        + ".\nInstall and start them, e.g. on Debian/Ubuntu:\n"
        "  sudo apt-get install postgresql rabbitmq-server\n"
        "or install Docker and re-run `make run` (it uses deploy/compose.yaml),\n"
        "or point DP_DATABASE_URL / DP_RABBITMQ_URL at servers you already have."
    )


RABBITMQ_CONSOLE = "http://127.0.0.1:15672"
ENABLE_CONSOLE = ["rabbitmq-plugins", "enable", "rabbitmq_management"]


def enable_rabbitmq_console() -> None:
    """The management console is how operators look at this system: enable it on a server we started
    (the plugin is part of every RabbitMQ install), and apply the shipped policy (deploy/rabbitmq)."""
    done = subprocess.run(ENABLE_CONSOLE, capture_output=True, text=True, check=False)
    if done.returncode == 0:
        print(f"[run] RabbitMQ console enabled: {RABBITMQ_CONSOLE} (guest/guest on a local server)")
    else:
        reason = ((done.stderr or done.stdout).strip().splitlines() or ["no reason given"])[-1]
        print(f"[run] could not enable the RabbitMQ console ({reason})")
        print(f"      enable it with: sudo {' '.join(ENABLE_CONSOLE)}  then open {RABBITMQ_CONSOLE}")
    prefix = env_value("DP_BROKER_PREFIX", "dp")
    for policy in Topology(prefix, int(env_value("DP_COLLECTOR_PARTITIONS", "4"))).policies():
        command = [
            "rabbitmqctl",
            "set_policy",
            "--apply-to",
            policy.apply_to,
            "--priority",
            str(policy.priority),
            policy.name,
            policy.pattern,
            json.dumps(policy.definition),
        ]
        if subprocess.run(command, capture_output=True, check=False).returncode != 0:
            print(f"[run] policy {policy.name} not set; see README, RabbitMQ console")


def migrate_and_seed(demo_url: str) -> None:
    subprocess.run([PY, "-m", "shared.migrate"], check=True, cwd=ROOT)
    subprocess.run([PY, "-m", "services.demo_db", "--url", demo_url], check=True, cwd=ROOT)


# ---- up / down ------------------------------------------------------------------------------------


def cmd_up(_: argparse.Namespace) -> int:
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    gateway_pid = RUN_DIR / "api_gateway.pid"
    ours = gateway_pid.exists() and _alive(int(gateway_pid.read_text()))
    if not ours and (taken := port_taken_by_another()):
        print(f"the gateway cannot start: {taken}", file=sys.stderr)
        return 1
    started: dict[str, subprocess.Popen[bytes]] = {}
    for name, module in SERVICES.items():
        pid_file = RUN_DIR / f"{name}.pid"
        if pid_file.exists() and _alive(int(pid_file.read_text())):
            print(f"{name} already running (pid {pid_file.read_text().strip()})")
            continue
        log = (LOG_DIR / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [PY, "-m", module], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True
        )
        pid_file.write_text(str(proc.pid))
        started[name] = proc
        print(f"started {name} (pid {proc.pid}, log var/log/{name}.log)")
    if not wait_ready(gateway=started.get("api_gateway")):
        print("the gateway did not become ready; see var/log/*.log", file=sys.stderr)
        return 1
    print(
        f"\nready: API {gateway_url()}/api/v0/data_pipeline/tasks  web UI {gateway_url()}/  "
        f"OpenAPI {gateway_url()}/api/v0/openapi.json"
    )
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def cmd_down(_: argparse.Namespace) -> int:
    for name in reversed(list(SERVICES)):
        pid_file = RUN_DIR / f"{name}.pid"
        if not pid_file.exists():
            continue
        pid = int(pid_file.read_text())
        if _alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
            print(f"stopped {name} (pid {pid})")
        pid_file.unlink()
    return 0


# ---- run ------------------------------------------------------------------------------------------


def _pump(name: str, stream, tty: bool) -> None:  # type: ignore[no-untyped-def]
    prefix = f"\033[{COLORS[name]}m{name:>13}\033[0m | " if tty else f"{name:>13} | "
    for line in iter(stream.readline, b""):
        sys.stdout.write(prefix + line.decode(errors="replace"))
        sys.stdout.flush()


def _bar(percent: float, width: int = 20) -> str:
    filled = int(width * percent / 100)
    return "#" * filled + "-" * (width - filled)


def follow_task(task_id: str) -> str:
    base = f"{gateway_url()}/api/v0/data_pipeline/tasks/{task_id}"
    last = ""
    while True:
        status, body = http_json("GET", base)
        data = body.get("data", {})
        if status == 200:
            steps = data.get("step_status", {})
            line = (
                f"[demo] {task_id} {data.get('status'):<17} {_bar(data.get('progress', 0))} "
                f"{data.get('progress', 0):>3}%  "
                + "  ".join(f"{k}={steps[k]}" for k in STEP_NAMES if k in steps)
            )
            if line != last:
                print(line, flush=True)
                last = line
            if data.get("status") in ("completed", "partial_completed", "failed", "cancelled"):
                return str(data.get("status"))
        time.sleep(1)


def cmd_run(args: argparse.Namespace) -> int:
    if taken := port_taken_by_another():
        print(f"[run] the gateway cannot start: {taken}", file=sys.stderr)
        return 1
    ensure_infrastructure()
    if tcp_open("127.0.0.1", 15672):
        print(f"[run] RabbitMQ console: {RABBITMQ_CONSOLE}")
    else:
        print(
            f"[run] the RabbitMQ console is off; on the broker's host: sudo {' '.join(ENABLE_CONSOLE)}"
            f" (then {RABBITMQ_CONSOLE})"
        )
    demo_url = env_value("DP_DEMO_DATABASE_URL", DEMO_URL_DEFAULT)
    migrate_and_seed(demo_url)
    tty = sys.stdout.isatty()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    env = {**os.environ, "DP_LOG_FORMAT": os.environ.get("DP_LOG_FORMAT", "console")}
    if tty:  # the services write to pipes; their lines end up on this terminal
        env.setdefault("FORCE_COLOR", "1")
    for name, module in SERVICES.items():
        procs[name] = subprocess.Popen(
            [PY, "-m", module], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT, env=env
        )
        threading.Thread(target=_pump, args=(name, procs[name].stdout, tty), daemon=True).start()

    def stop_all(grace: float = 0.0) -> None:
        # After a Ctrl-C the services got the terminal's SIGINT too and are stopping: they ignore a
        # second signal, so a SIGTERM is only for one that has not stopped after `grace` seconds.
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(proc.poll() is None for proc in procs.values()):
            time.sleep(0.05)
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    try:
        if not wait_ready(gateway=procs["api_gateway"]):
            code = procs["api_gateway"].poll()
            why = (
                f"exited with status {code} (its lines above say why)"
                if code is not None
                else "did not become ready"
            )
            print(f"[run] the gateway {why}", file=sys.stderr)
            stop_all()
            return 1
        lines = (ROOT / "services/demo_db/tables.txt").read_text().splitlines()
        tables = [t.strip() for t in lines if t.strip() and not t.strip().startswith("#")]
        body = {
            "task_type": "complete_workflow",
            "parameters": {
                "db_connection": demo_url,
                "table_list": tables,
                "business_context": "An online retail shop: customers, products, orders, payments and shipments",
                "task_name": "demo",
                "db_name": demo_url.rsplit("/", 1)[-1],
            },
        }
        status, created = http_json("POST", f"{gateway_url()}/api/v0/data_pipeline/tasks", body)
        if status != 201:
            print(f"[run] creating the demo task failed: {status} {created}", file=sys.stderr)
            stop_all()
            return 1
        task_id = created["data"]["task_id"]
        print(f"[demo] created {task_id}")
        final = follow_task(task_id)
        data_root = Path(env_value("DP_DATA_ROOT", "var/tasks"))
        console = (
            "http://127.0.0.1:15672/ (the broker's credentials; queues named dp.*)"
            if tcp_open("127.0.0.1", 15672)
            else "not enabled; run `rabbitmq-plugins enable rabbitmq_management`, then http://127.0.0.1:15672/"
        )
        print(
            f"\n[demo] {task_id} ended {final}.\n"
            f"  web UI:            {gateway_url()}/#{task_id}\n"
            f"  task API:          {gateway_url()}/api/v0/data_pipeline/tasks/{task_id}\n"
            f"  RabbitMQ console:  {console}\n"
            f"  task files:        {(ROOT / data_root / task_id) if not data_root.is_absolute() else data_root / task_id}\n"
        )
        if args.exit_after_demo:
            stop_all()
            return 0 if final == "completed" else 1
        print("[run] the stack keeps running; Ctrl-C stops it.")
        while all(p.poll() is None for p in procs.values()):
            time.sleep(1)
        print("[run] a service exited; stopping the others", file=sys.stderr)
        stop_all()
        return 1
    except KeyboardInterrupt:
        # A second Ctrl-C, or `timeout` signalling the group and then make passing it on, must not cut the
        # stop short: the services' own stop is bounded (stop_all kills what outlives it).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("\n[run] stopping…")
        stop_all(grace=SIGINT_GRACE_SECONDS)
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="devstack")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up").set_defaults(func=cmd_up)
    sub.add_parser("down").set_defaults(func=cmd_down)
    run = sub.add_parser("run")
    run.add_argument(
        "--exit-after-demo", action="store_true", default=os.environ.get("DP_RUN_EXIT_AFTER_DEMO") == "1"
    )
    run.set_defaults(func=cmd_run)
    args = parser.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
