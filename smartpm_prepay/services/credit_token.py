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


# Money token (docs/meter-contract.md "Money token"), 21 bytes: credit in currency for a
# meter in money mode (time-of-use tariffs)::
#
#     0x03 | uint32 transfer_number | uint32 amount (milli-units of the currency) |
#     uint32 meter_tag | 8-byte MAC
#     MAC = AES-CMAC(token key, MONEY_DOMAIN ‖ serial ‖ transfer_number ‖ amount), 8 bytes
#
# The domain tag starts with NUL (no serial does) and differs from the clear token's: no
# kWh token's, clear token's or money token's MAC is valid for another kind, so a kWh token
# never passes as money nor the reverse; a meter in one mode refuses the other's tokens.
MONEY_TOKEN_LEN = 21
MONEY_TOKEN_TYPE = 0x03
MONEY_DOMAIN = b"\x00SMARTPM-MONEY-CREDIT\x00"
MONEY_SCALE = 1000  # the amount counts 1/1000 of the currency


def money_units(amount):
    """Whole milli-units of ``amount`` (currency) a money token carries."""
    return round(amount * MONEY_SCALE)


def money_mac(token_key, serial, transfer_number, units):
    cmac = CMAC(algorithms.AES(bytes(token_key)))
    cmac.update(
        MONEY_DOMAIN
        + serial.encode("ascii")
        + transfer_number.to_bytes(4, "big")
        + units.to_bytes(4, "big")
    )
    return cmac.finalize()[:MAC_LEN]


def mint_money(token_key, serial, transfer_number, units):
    """The money token (bytes) that adds ``units`` milli-units of currency to ``serial``."""
    if len(token_key) != 16:
        raise ValueError("a token key is 16 bytes")
    if not (0 <= transfer_number <= UINT32_MAX and 0 < units <= UINT32_MAX):
        raise ValueError("transfer number and amount are uint32, amount above 0")
    head = (
        bytes([MONEY_TOKEN_TYPE])
        + transfer_number.to_bytes(4, "big")
        + units.to_bytes(4, "big")
        + zlib.crc32(serial.encode("ascii")).to_bytes(4, "big")
    )
    return head + money_mac(token_key, serial, transfer_number, units)


def parse_money(token):
    """(transfer_number, amount_units, meter_tag, mac) of a money token (bytes)."""
    if len(token) != MONEY_TOKEN_LEN or token[0] != MONEY_TOKEN_TYPE:
        raise ValueError(f"a money token is {MONEY_TOKEN_LEN} bytes of type 3")
    return (
        int.from_bytes(token[1:5], "big"),
        int.from_bytes(token[5:9], "big"),
        int.from_bytes(token[9:13], "big"),
        bytes(token[13:]),
    )


def verify_money(token_key, serial, token):
    """True if ``token`` is a valid money token of meter ``serial``."""
    try:
        number, units, tag, mac = parse_money(token)
    except ValueError:
        return False
    return tag == zlib.crc32(serial.encode("ascii")) and hmac.compare_digest(
        mac, money_mac(token_key, serial, number, units)
    )


# Money clear token (docs/meter-contract.md "Money clear-credit token"), 21 bytes: takes
# credit in currency off a meter in money mode (a standing charge Odoo collects, a
# settlement), the clear token of money mode::
#
#     0x04 | uint32 transfer_number | uint32 amount (milli-units of the currency) |
#     uint32 meter_tag | 8-byte MAC
#     MAC = AES-CMAC(token key, MONEY_CLEAR_DOMAIN ‖ serial ‖ transfer_number ‖ amount)
#
# Its own domain tag: no credit, clear or money token's MAC is ever valid for it.
MONEY_CLEAR_TOKEN_TYPE = 0x04
MONEY_CLEAR_DOMAIN = b"\x00SMARTPM-MONEY-CLEAR\x00"


def money_clear_mac(token_key, serial, transfer_number, units):
    cmac = CMAC(algorithms.AES(bytes(token_key)))
    cmac.update(
        MONEY_CLEAR_DOMAIN
        + serial.encode("ascii")
        + transfer_number.to_bytes(4, "big")
        + units.to_bytes(4, "big")
    )
    return cmac.finalize()[:MAC_LEN]


def mint_money_clear(token_key, serial, transfer_number, units):
    """The money clear token (bytes) that takes ``units`` milli-units off ``serial``."""
    if len(token_key) != 16:
        raise ValueError("a token key is 16 bytes")
    if not (0 <= transfer_number <= UINT32_MAX and 0 < units <= UINT32_MAX):
        raise ValueError("transfer number and amount are uint32, amount above 0")
    head = (
        bytes([MONEY_CLEAR_TOKEN_TYPE])
        + transfer_number.to_bytes(4, "big")
        + units.to_bytes(4, "big")
        + zlib.crc32(serial.encode("ascii")).to_bytes(4, "big")
    )
    return head + money_clear_mac(token_key, serial, transfer_number, units)


def verify_money_clear(token_key, serial, token):
    """True if ``token`` is a valid money clear token of meter ``serial``."""
    if len(token) != MONEY_TOKEN_LEN or token[0] != MONEY_CLEAR_TOKEN_TYPE:
        return False
    number, units = int.from_bytes(token[1:5], "big"), int.from_bytes(token[5:9], "big")
    tag = int.from_bytes(token[9:13], "big")
    return tag == zlib.crc32(serial.encode("ascii")) and hmac.compare_digest(
        bytes(token[13:]), money_clear_mac(token_key, serial, number, units)
    )
