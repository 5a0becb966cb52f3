"""Credit tokens: minted and signed by Odoo at the sale, verified by the meter.

Format (docs/meter-contract.md, 20 bytes, big-endian; clear-credit tokens: below)::

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


# Clear-credit token (docs/meter-contract.md "Clear-credit token", STS's class-2 ClearCredit
# in spirit), 21 bytes: it takes credit off the meter at a settlement::
#
#     0x02 | uint32 transfer_number | uint32 energy_wh | uint32 meter_tag | 8-byte MAC
#     MAC = AES-CMAC(token key, CLEAR_DOMAIN ‖ serial ‖ transfer_number ‖ energy_wh), 8 bytes
#
# The domain tag starts with NUL, which no serial does: no credit token's MAC is ever a clear
# token's, and the lengths differ, so neither can be read as the other.
CLEAR_TOKEN_LEN = 21
CLEAR_TOKEN_TYPE = 0x02
CLEAR_DOMAIN = b"\x00SMARTPM-CLEAR-CREDIT\x00"


def clear_mac(token_key, serial, transfer_number, wh):
    cmac = CMAC(algorithms.AES(bytes(token_key)))
    cmac.update(
        CLEAR_DOMAIN
        + serial.encode("ascii")
        + transfer_number.to_bytes(4, "big")
        + wh.to_bytes(4, "big")
    )
    return cmac.finalize()[:MAC_LEN]


def mint_clear(token_key, serial, transfer_number, wh):
    """The clear-credit token (bytes) that takes ``wh`` off meter ``serial``."""
    if len(token_key) != 16:
        raise ValueError("a token key is 16 bytes")
    if not (0 <= transfer_number <= UINT32_MAX and 0 < wh <= UINT32_MAX):
        raise ValueError("transfer number and energy (Wh) are uint32, energy above 0")
    head = (
        bytes([CLEAR_TOKEN_TYPE])
        + transfer_number.to_bytes(4, "big")
        + wh.to_bytes(4, "big")
        + zlib.crc32(serial.encode("ascii")).to_bytes(4, "big")
    )
    return head + clear_mac(token_key, serial, transfer_number, wh)


def parse_clear(token):
    """(transfer_number, energy_wh, meter_tag, mac) of a clear-credit token (bytes)."""
    if len(token) != CLEAR_TOKEN_LEN or token[0] != CLEAR_TOKEN_TYPE:
        raise ValueError(f"a clear-credit token is {CLEAR_TOKEN_LEN} bytes of type 2")
    return (
        int.from_bytes(token[1:5], "big"),
        int.from_bytes(token[5:9], "big"),
        int.from_bytes(token[9:13], "big"),
        bytes(token[13:]),
    )


def verify_clear(token_key, serial, token):
    """True if ``token`` is a valid clear-credit token of meter ``serial``."""
    try:
        number, wh, tag, mac = parse_clear(token)
    except ValueError:
        return False
    return tag == zlib.crc32(serial.encode("ascii")) and hmac.compare_digest(
        mac, clear_mac(token_key, serial, number, wh)
    )
