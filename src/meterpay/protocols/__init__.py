"""Sans-IO meter protocol codecs: bytes in, frames out, and back.

- :mod:`~meterpay.protocols.dlt645` — DL/T 645-2007 electricity meters
- :mod:`~meterpay.protocols.modbus_rtu` — Modbus-RTU (Acrel DDSY1352 / DTSY1352 maps)
- :mod:`~meterpay.protocols.cjt188` — CJ/T 188-2004 water meters
- :mod:`~meterpay.protocols.framing` — the stream framer base class
- :mod:`~meterpay.protocols.errors` — the typed error hierarchy

Nothing here performs I/O or imports Django; :mod:`meterpay.gateway` and
:mod:`meterpay.simulate` put these codecs on sockets.
"""
