"""TensorBoard scalar logging without the tensorboard package: writes the event-file format directly.

An event file is a sequence of records ``len (u64) | masked crc32c(len) | Event protobuf | masked
crc32c(Event)``; an Event holds wall_time, step and a Summary of (tag, simple_value) pairs.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_bytes(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def encode_event(wall_time: float, step: int, file_version: str | None = None,
                 scalars: dict[str, float] | None = None) -> bytes:
    """Event protobuf: wall_time (1, double), step (2, varint), file_version (3) or summary (5)."""
    msg = struct.pack("<Bd", 1 << 3 | 1, wall_time) + _varint(2 << 3) + _varint(step)
    if file_version is not None:
        msg += _field_bytes(3, file_version.encode())
    if scalars:
        values = b"".join(
            _field_bytes(1, _field_bytes(1, tag.encode()) + struct.pack("<Bf", 2 << 3 | 5, float(v)))
            for tag, v in scalars.items())
        msg += _field_bytes(5, values)
    return msg


def encode_record(data: bytes) -> bytes:
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc32c(header)) + data + struct.pack("<I", masked_crc32c(data))


class ScalarWriter:
    """``add_scalars(step, {"loss": 0.1})`` into ``directory/events.out.tfevents.*``."""

    def __init__(self, directory: str | os.PathLike):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}"
        self.path = self.dir / name
        self._file = open(self.path, "ab")
        self._file.write(encode_record(encode_event(time.time(), 0, file_version="brain.Event:2")))
        self._file.flush()

    def add_scalars(self, step: int, scalars: dict[str, float]) -> None:
        self._file.write(encode_record(encode_event(time.time(), step, scalars=scalars)))
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_records(path: str | os.PathLike) -> list[bytes]:
    """Record payloads of an event file, checking both checksums."""
    data = Path(path).read_bytes()
    out, pos = [], 0
    while pos < len(data):
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        if struct.unpack("<I", data[pos + 8:pos + 12])[0] != masked_crc32c(header):
            raise ValueError(f"{path}: bad length checksum at byte {pos}")
        payload = data[pos + 12:pos + 12 + length]
        if struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])[0] != masked_crc32c(payload):
            raise ValueError(f"{path}: bad data checksum at byte {pos}")
        out.append(payload)
        pos += 16 + length
    return out
