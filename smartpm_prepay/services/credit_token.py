"""Credit tokens: minted and signed by Odoo at the sale, verified by the meter.

Format (docs/meter-contract.md, 20 bytes, big-endian)::

    uint32 transfer_number | uint32 energy_wh | uint32 meter_tag | 8-byte MAC
    meter_tag = CRC-32 of the ASCII serial number
    MAC = AES-CMAC(token key, serial ‖ transfer_number ‖ energy_wh), first 8 bytes

The token key is the meter's own (``smartpm.meter.token_key``, Manager only); a bridge
never sees it, so neither a bridge, a stolen association key nor a sniffer can mint credit.
"""

import hmac
import zlib

from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.cmac import CMAC

TOKEN_LEN = 20
MAC_LEN = 8
UINT32_MAX = 2**32 - 1


def energy_wh(kwh):
    """The whole Wh a token carries for ``kwh`` (purchases keep 3 decimals)."""
    return round(kwh * 1000)


def token_mac(token_key, serial, transfer_number, wh):
    cmac = CMAC(algorithms.AES(bytes(token_key)))
    cmac.update(serial.encode("ascii") + transfer_number.to_bytes(4, "big") + wh.to_bytes(4, "big"))
    return cmac.finalize()[:MAC_LEN]


def mint(token_key, serial, transfer_number, wh):
    """The token (bytes) for meter ``serial``; ``token_key`` is 16 bytes."""
    if len(token_key) != 16:
        raise ValueError("a token key is 16 bytes")
    if not (0 <= transfer_number <= UINT32_MAX and 0 < wh <= UINT32_MAX):
        raise ValueError("transfer number and energy (Wh) are uint32, energy above 0")
    head = (
        transfer_number.to_bytes(4, "big")
        + wh.to_bytes(4, "big")
        + zlib.crc32(serial.encode("ascii")).to_bytes(4, "big")
    )
    return head + token_mac(token_key, serial, transfer_number, wh)


def parse(token):
    """(transfer_number, energy_wh, meter_tag, mac) of a token (bytes)."""
    if len(token) != TOKEN_LEN:
        raise ValueError(f"a credit token is {TOKEN_LEN} bytes")
    return (
        int.from_bytes(token[0:4], "big"),
        int.from_bytes(token[4:8], "big"),
        int.from_bytes(token[8:12], "big"),
        bytes(token[12:]),
    )


def verify(token_key, serial, token):
    """True if ``token`` is a valid token of meter ``serial`` (what the meter checks)."""
    try:
        number, wh, tag, mac = parse(token)
    except ValueError:
        return False
    return tag == zlib.crc32(serial.encode("ascii")) and hmac.compare_digest(
        mac, token_mac(token_key, serial, number, wh)
    )
