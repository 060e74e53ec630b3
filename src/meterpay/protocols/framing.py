"""Stream framing shared by every protocol (the sans-IO core).

A framer owns a byte buffer. Transports :meth:`StreamFramer.feed` it whatever arrived
on the wire, in any chunking, then call :meth:`StreamFramer.next_frame` until it
returns ``None`` ("need more bytes"). The framer

- skips leading garbage (bytes before a plausible frame start, counted in
  :attr:`StreamFramer.discarded_bytes`),
- returns frames one at a time when several arrive concatenated,
- raises :class:`~meterpay.protocols.errors.ChecksumError` for a complete frame whose
  checksum is wrong, *after* dropping that frame's first byte, so the next call
  resynchronises on whatever follows,
- never raises anything but :class:`~meterpay.protocols.errors.ProtocolError`.

Subclasses implement :meth:`_find_start` and :meth:`_decode_at`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

from meterpay.protocols.errors import ChecksumError, FrameError, ProtocolError, TruncatedFrame

#: A buffer larger than this without a frame is garbage; keep memory bounded.
MAX_BUFFERED_BYTES = 4096


class StreamFramer[FrameT](ABC):
    """Turn a byte stream into frames of one protocol."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.discarded_bytes = 0

    @property
    def buffered(self) -> int:
        """Bytes received but not yet turned into a frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        """Append bytes received from the wire."""
        self._buffer += data
        if len(self._buffer) > MAX_BUFFERED_BYTES:
            excess = len(self._buffer) - MAX_BUFFERED_BYTES
            self._discard(excess)

    def reset(self) -> None:
        """Forget buffered bytes (after a timeout or reconnect)."""
        self._discard(len(self._buffer))

    def next_frame(self) -> FrameT | None:
        """Return the next complete frame, or ``None`` if more bytes are needed.

        Raises :class:`ChecksumError` for a damaged frame (already dropped).
        """
        while self._buffer:
            start = self._find_start(self._buffer)
            if start is None:
                self._discard(len(self._buffer) - self._keep_tail())
                return None
            self._discard(start)
            try:
                used, frame = self._decode_at(bytes(self._buffer))
            except TruncatedFrame:
                return None
            except ChecksumError:
                self._discard(1)
                raise
            except FrameError:
                self._discard(1)
                continue
            except ProtocolError:  # pragma: no cover - subclasses raise FrameErrors
                self._discard(1)
                raise
            except (ValueError, IndexError, KeyError, TypeError) as exc:
                # A subclass or library decoder tripped on hostile bytes: treat as noise.
                self._discard(1)
                raise FrameError(f"undecodable bytes: {exc}") from exc
            del self._buffer[:used]
            return frame
        return None

    def frames(self) -> Iterator[FrameT]:
        """Yield every complete frame, silently skipping damaged ones."""
        while True:
            try:
                frame = self.next_frame()
            except FrameError:
                continue
            if frame is None:
                return
            yield frame

    def _discard(self, count: int) -> None:
        if count > 0:
            del self._buffer[:count]
            self.discarded_bytes += count

    def _keep_tail(self) -> int:
        """Bytes to keep when no start was found (a start marker may be split)."""
        return 0

    @abstractmethod
    def _find_start(self, buffer: bytearray) -> int | None:
        """Index of the first plausible frame start, or ``None`` if there is none."""

    @abstractmethod
    def _decode_at(self, data: bytes) -> tuple[int, FrameT]:
        """Decode a frame starting at ``data[0]``.

        Return ``(bytes used, frame)``; raise :class:`TruncatedFrame` when more bytes are
        needed, :class:`ChecksumError` for a bad checksum and :class:`FrameError` when
        ``data[0]`` is not a frame start after all.
        """
