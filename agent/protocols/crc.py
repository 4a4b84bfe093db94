"""The 16-bit CRCs of the protocols greenwave speaks.

**CRC-16/X-25**: the frame check sequence of HDLC, PPP and NTCIP PMPP.

Parameters (ISO/IEC 13239, RFC 1662 appendix C): polynomial 0x1021 processed
bit-reflected (0x8408), initial register 0xFFFF, input and output reflected,
final XOR 0xFFFF. The check value of ``b"123456789"`` is ``0x906E``.

On the wire the FCS follows the data **low byte first**. Running the register
(without the final XOR) over data followed by its FCS always leaves the
constant residue ``0xF0B8``; a receiver can check a frame that way without
splitting off the FCS.

**CRC-16 of GB/T 20999-2017** (:func:`crc16_gbt20999`): polynomial 0x1005
(x^16 + x^12 + x^2 + 1), initial register 0x0000, input and output *not*
reflected, final XOR 0x0000. The check value of ``b"123456789"`` is
``0x5BB8``. These parameters reproduce the CRC of all 354 frames captured
from a real controller (``shared/vectors/gbt20999/protocol_catalog.json``).
The frame carries it **high byte first**. Because the initial register is 0,
leading zero bytes do not change it: ``crc(b"\\0\\0" + data) == crc(data)``.

Both are table-driven: one table lookup per byte.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CRC16_GBT20999_CHECK",
    "CRC16_X25_CHECK",
    "CRC16_X25_INIT",
    "CRC16_X25_RESIDUE",
    "crc16_gbt20999",
    "crc16_x25",
    "crc16_x25_update",
    "fcs_bytes",
    "fcs_valid",
]

#: Initial value of the CRC register.
CRC16_X25_INIT: Final = 0xFFFF
#: Register value left after running over data followed by its correct FCS.
CRC16_X25_RESIDUE: Final = 0xF0B8
#: ``crc16_x25(b"123456789")``, the catalogue check value.
CRC16_X25_CHECK: Final = 0x906E

_POLY_REFLECTED: Final = 0x8408


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        register = byte
        for _ in range(8):
            register = (register >> 1) ^ _POLY_REFLECTED if register & 1 else register >> 1
        table.append(register)
    return tuple(table)


_TABLE: Final = _make_table()


def crc16_x25_update(register: int, data: bytes) -> int:
    """Run the CRC register over ``data`` and return the new register.

    No final XOR is applied, so calls can be chained over chunks. Start from
    :data:`CRC16_X25_INIT`.
    """
    table = _TABLE
    for byte in data:
        register = (register >> 8) ^ table[(register ^ byte) & 0xFF]
    return register


def crc16_x25(data: bytes) -> int:
    """Return the CRC-16/X-25 of ``data`` (final XOR applied)."""
    return crc16_x25_update(CRC16_X25_INIT, data) ^ 0xFFFF


def fcs_bytes(data: bytes) -> bytes:
    """Return the two FCS octets for ``data`` in wire order (low byte first)."""
    return crc16_x25(data).to_bytes(2, "little")


def fcs_valid(data_and_fcs: bytes) -> bool:
    """Tell whether ``data_and_fcs`` ends with the correct FCS of what precedes it."""
    return (
        len(data_and_fcs) >= 2
        and crc16_x25_update(CRC16_X25_INIT, data_and_fcs) == CRC16_X25_RESIDUE
    )


# ------------------------------------------------------------ GB/T 20999-2017

#: ``crc16_gbt20999(b"123456789")``, the check value.
CRC16_GBT20999_CHECK: Final = 0x5BB8

_POLY_GBT20999: Final = 0x1005


def _make_msb_first_table(poly: int) -> tuple[int, ...]:
    table = []
    for byte in range(256):
        register = byte << 8
        for _ in range(8):
            register = ((register << 1) ^ poly) if register & 0x8000 else register << 1
        table.append(register & 0xFFFF)
    return tuple(table)


_GBT20999_TABLE: Final = _make_msb_first_table(_POLY_GBT20999)


def crc16_gbt20999(data: bytes, register: int = 0) -> int:
    """Return the GB/T 20999-2017 CRC-16 of ``data`` (poly 0x1005, init 0, no reflection).

    Pass the result of a previous call as ``register`` to continue over a
    further chunk; with no final XOR the value and the register are the same.
    """
    table = _GBT20999_TABLE
    for byte in data:
        register = ((register << 8) & 0xFFFF) ^ table[(register >> 8) ^ byte]
    return register
