"""Print the broker topology as a RabbitMQ definitions document (exchanges, queues, bindings, policies).

    python scripts/rabbitmq_definitions.py > deploy/rabbitmq/definitions.json      # prefix dp, vhost /
    python scripts/rabbitmq_definitions.py --prefix prod --vhost pipeline > my-definitions.json

Import it in the console (Overview > Import definitions) or with `rabbitmqctl import_definitions FILE`;
tests/unit/test_rabbitmq_definitions.py keeps the shipped file equal to shared/broker.py's Topology.
"""

from __future__ import annotations

import argparse
import json

from shared.broker import Topology


def render(prefix: str, vhost: str) -> str:
    return json.dumps(Topology(prefix).definitions(vhost), indent=2) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default="dp", help="DP_BROKER_PREFIX (default dp)")
    parser.add_argument("--vhost", default="/", help="the vhost of DP_RABBITMQ_URL (default /)")
    args = parser.parse_args()
    print(render(args.prefix, args.vhost), end="")


if __name__ == "__main__":
    main()
