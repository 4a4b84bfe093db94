"""The central side: signed commands, their verification, and the state behind it.

``commands`` (the wire contract: codes, claims, arguments, acks), ``jws``
(the verification pipeline), ``trust`` (trusted keys), ``replay`` (seen
command ids, stored versions), ``durable`` (crash-safe state files) and
``signing`` (the signing side, for the reference central tool and tests).
The MQTT link lives in its own module and only calls into these.
"""
