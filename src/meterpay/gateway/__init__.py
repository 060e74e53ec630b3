"""Talking to real meters over TCP: transports, meter drivers, DTU sessions.

- :mod:`~meterpay.gateway.transport` — :class:`BusClient` (one request in flight per
  bus, timeouts) over a :class:`ByteLink` (:class:`TcpLink` to a serial server, or a
  DTU session's tunnel)
- :mod:`~meterpay.gateway.meters` — per-protocol drivers that read meters and switch
  relays/valves, returning :mod:`~meterpay.gateway.readings`
- :mod:`~meterpay.gateway.commissioning` — one-shot functions behind ``meterpay meter``
- :mod:`~meterpay.gateway.dtu` — :class:`DtuServer` / :class:`DtuSession` for DTUs that
  connect in, reporting through a :class:`GatewayPort`

No Django here: the gateway process wires a :class:`GatewayPort` to the models.
"""
