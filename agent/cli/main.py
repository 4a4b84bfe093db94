"""``greenwave``: the command line of the agent.

Every verb has ``--help``. Exit codes are a contract for scripts:

* 0 — success (every plan valid, the config good);
* 1 — a plan breaks a safety rule (each violation listed);
* 2 — input that cannot be used: unreadable file, not JSON, not a plan
  document, a bad config, a bad argument;
* 70 — an internal error (a bug; reported in one line, never a traceback).
"""

from __future__ import annotations

import sys


def main() -> None:
    """Console-script entry point.

    ``greenwave run`` (the service) goes to :mod:`agent.cli.service` without
    importing typer or the other verbs, which it would carry in memory for
    nothing; everything else goes through the typer application.
    """
    args = sys.argv[1:]
    if args[:1] == ["run"] and not {"-h", "--help"} & set(args[1:]):
        from agent.cli.service import main as run_service

        sys.exit(run_service(args[1:]))
    from agent.cli.verbs import run_typer

    run_typer()


if __name__ == "__main__":
    main()
