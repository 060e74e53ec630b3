"""Virtual meters, buses, serial servers and DTUs that speak real frames.

- :mod:`~meterpay.simulate.clock` — clocks that can run faster than real time
- :mod:`~meterpay.simulate.profiles` — consumption profiles and the TOU clock
- :mod:`~meterpay.simulate.meters` — meter state objects and their protocol responders
- :mod:`~meterpay.simulate.bus` — an RS-485 bus of meters and fault injection
- :mod:`~meterpay.simulate.servers` — a virtual serial server (TCP server) and a virtual
  DTU (TCP client with registration and heartbeat packets)

Run ``python -m meterpay.simulate --help`` for the technician's command line.
"""
