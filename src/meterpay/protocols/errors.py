"""Typed errors raised by the meterpay codecs.

Every decoder in :mod:`meterpay.protocols` raises only subclasses of
:class:`ProtocolError`, whatever bytes it is fed; callers can rely on that when they
read from untrusted links (RS-485 buses, 4G DTUs).

::

    ProtocolError
    ├── FrameError              bytes that are not a well-formed frame
    │   ├── ChecksumError       a complete frame whose checksum/CRC does not match
    │   └── TruncatedFrame      too few bytes for a complete frame
    ├── EncodeError             a value that cannot be put on the wire
    ├── UnknownDataIdentifier   a data identifier / register the registry does not know
    ├── UnexpectedReply         a well-formed reply that does not answer the request
    └── ExceptionReply          the device answered with an error/exception reply
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base class of every codec error."""


class FrameError(ProtocolError):
    """The bytes are not a well-formed frame."""


class ChecksumError(FrameError):
    """A complete frame arrived but its checksum (or CRC) does not match."""

    def __init__(self, message: str, *, expected: int, actual: int) -> None:
        super().__init__(f"{message}: expected {expected:#06x}, got {actual:#06x}")
        self.expected = expected
        self.actual = actual


class TruncatedFrame(FrameError):
    """Too few bytes for a complete frame; a stream reader should wait for more."""


class EncodeError(ProtocolError, ValueError):
    """A value cannot be encoded (out of range, wrong address format, ...)."""


class UnknownDataIdentifier(ProtocolError):
    """The data identifier (DL/T 645, CJ/T 188) or register is not in the registry."""

    def __init__(self, identifier: int | str, protocol: str) -> None:
        shown = f"{identifier:#x}" if isinstance(identifier, int) else repr(identifier)
        super().__init__(f"unknown {protocol} data identifier {shown}")
        self.identifier = identifier
        self.protocol = protocol


class UnexpectedReply(ProtocolError):
    """A well-formed frame that does not answer the request (other address, DI, ...)."""


class ExceptionReply(ProtocolError):
    """The device answered with an error reply.

    ``code`` is the protocol's error byte (DL/T 645 error word, Modbus exception code,
    CJ/T 188 status); ``meaning`` is a human-readable decoding of it.
    """

    def __init__(self, protocol: str, code: int, meaning: str) -> None:
        super().__init__(f"{protocol} error reply {code:#04x}: {meaning}")
        self.protocol = protocol
        self.code = code
        self.meaning = meaning
