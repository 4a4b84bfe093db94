"""The technician's control socket: the wire format, the server in the agent, the CLI's client.

* :mod:`agent.local.protocol` — JSON lines, the request and response models,
  the line framer (sans-I/O).
* :mod:`agent.local.server` — the unix socket in the agent: peer credentials,
  one request per connection, mapped onto the supervisor's API.
* :mod:`agent.local.client` — the blocking client the ``greenwave`` verbs use.
* :mod:`agent.local.render` — status, watch and plan as text for an 80-column
  terminal.
* :mod:`agent.local.bundle` — the ``greenwave diag bundle`` tarball.
"""
