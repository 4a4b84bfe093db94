"""The GB/T 20999-2017 driver: client, stream link, plan and status mapping, the controller.

- :mod:`.link` -- escaped frames over a byte stream (RS-232, TCP, a pty);
  UDP uses :class:`agent.controller.transport.UdpLink` as it is.
- :mod:`.client` -- queries, sets and heartbeats, matched by sequence number.
- :mod:`.mapping` -- the plan as phases, stages, schemes, day plans and
  schedule entries; status as the common status value (pure functions).
- :mod:`.driver` -- :class:`~.driver.GbtController`, the
  :class:`~agent.controller.interface.Controller` for GB/T 20999 cabinets.
"""
