"""CRC-16/X-25: the 16-bit frame check sequence of HDLC, PPP and NTCIP PMPP.

Parameters (ISO/IEC 13239, RFC 1662 appendix C): polynomial 0x1021 processed
bit-reflected (0x8408), initial register 0xFFFF, input and output reflected,
final XOR 0xFFFF. The check value of ``b"123456789"`` is ``0x906E``.

On the wire the FCS follows the data **low byte first**. Running the register
(without the final XOR) over data followed by its FCS always leaves the
constant residue ``0xF0B8``; a receiver can check a frame that way without
splitting off the FCS.

The implementation is table-driven: one table lookup per byte.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CRC16_X25_CHECK",
    "CRC16_X25_INIT",
    "CRC16_X25_RESIDUE",
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
