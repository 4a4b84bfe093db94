"""``python -m agent.demo.embedded_broker --port N``: the demo's broker when mosquitto is absent.

A pure-Python MQTT 3.1.1 broker (amqtt, the optional ``demo`` extra) on one
loopback port, anonymous, no persistence, no ``$SYS`` topics. It is for the
demo on a machine without mosquitto, never for a city: production uses the
city's broker with TLS and client certificates (``docs/security.md``).

SIGTERM or SIGINT shuts it down cleanly (exit 0). Errors are one line on
stderr and exit 1; amqtt missing is exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import signal
import sys
from typing import Any


def _config(host: str, port: int) -> dict[str, Any]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
        },
    }


async def _serve(host: str, port: int) -> None:
    broker_module: Any = importlib.import_module("amqtt.broker")
    broker = broker_module.Broker(_config(host, port))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await broker.start()
    sys.stderr.write(f"embedded broker: listening on {host}:{port}\n")
    sys.stderr.flush()
    await stop.wait()
    await broker.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agent.demo.embedded_broker",
        description="The greenwave demo's embedded MQTT broker (amqtt), loopback only.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_serve(args.host, args.port))
    except ModuleNotFoundError as err:
        sys.stderr.write(f"embedded broker: {err} (pip install 'greenwave[demo]')\n")
        return 2
    except Exception as err:  # noqa: BLE001 - one line, never a traceback
        sys.stderr.write(f"embedded broker: {type(err).__name__}: {err}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
