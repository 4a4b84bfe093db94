"""``greenwave demo``: the whole product on one machine, in one command.

The demo starts a broker (mosquitto when installed, otherwise an embedded
pure-Python one), one simulated controller and one agent per intersection of
the Main St corridor (``examples/plans/corridor-*.json``), and a scripted
central, then tells the story the product exists for:

1. central loads the timing plans and commands the green wave (one token,
   one ``activate_at`` for the whole corridor): every agent goes ``central``;
2. central goes silent (heartbeats stop, the broker stays up): every agent
   falls back to ``local`` within ``heartbeat_timeout_s`` + 1 s;
3. central comes back with a new command: ``central`` again;
4. the network is cut (the broker stops): ``local`` again, at once;
5. the network returns: the agents stay ``local`` although central is heard
   (they never resume a stale command by themselves);
6. central sends a new command: ``central`` again.

Everything lives in a temporary work directory (configs, state, DEMO keys,
logs), talks over loopback on ephemeral ports, and every child process is
stopped when the demo ends, is interrupted (Ctrl-C) or is terminated.

Modules, each owning one thing:

* :mod:`agent.demo.story` — pure: the act schedule, the mode timeline, the verdict;
* :mod:`agent.demo.children` — child processes (process groups, stop, kill);
* :mod:`agent.demo.broker` — the broker process (mosquitto or embedded), restartable;
* :mod:`agent.demo.embedded_broker` — ``python -m agent.demo.embedded_broker`` (amqtt);
* :mod:`agent.demo.corridor` — the intersections: plans, DEMO keys, configs, processes;
* :mod:`agent.demo.agentlog` — following the agents' JSON logs (mode changes, link);
* :mod:`agent.demo.director` — the scripted central and the acts;
* :mod:`agent.demo.view` — the live view (rich) and the headless printer.

The demo never imports :mod:`firmware_sim`: it starts the simulator as a process.
"""

from __future__ import annotations

from agent.errors import GreenwaveError

#: Exit statuses of ``greenwave demo``.
EXIT_OK = 0
EXIT_STORY_INCOMPLETE = 1
EXIT_UNUSABLE = 2


class DemoError(GreenwaveError):
    """The demo cannot run (``exit_status`` 2: nothing to run with) or broke down (1)."""

    code = "E_DEMO"

    def __init__(self, message: str, *, exit_status: int = EXIT_STORY_INCOMPLETE) -> None:
        super().__init__(message)
        self.exit_status = exit_status
