# SPDX-License-Identifier: GPL-2.0-or-later
"""Credit tokens and per-meter keys of the simulated meter (docs/meter-contract.md).

Token (20 bytes, big-endian):
    uint32 transfer_number | uint32 energy_wh | uint32 meter_tag | 8-byte MAC
    meter_tag = CRC-32 of the ASCII serial (not a secret: it lets the meter tell "another
    meter's token" from "forged token");
    MAC = AES-CMAC(token key, serial ‖ transfer_number ‖ energy_wh), first 8 bytes.

Keys: a real meter gets random keys in Odoo. The simulator, which must hold the same keys as
the Odoo database it is paired with, derives them per serial from a seed (`--key-seed`):
HMAC-SHA256(seed, purpose ":" serial), first 16 bytes. The demo data carries the keys of
the default seed. This derivation is for the demo and the tests only.
"""

from __future__ import annotations

import hashlib
import hmac
import zlib

from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.cmac import CMAC

TOKEN_LEN = 20
MAC_LEN = 8
UINT32_MAX = 2**32 - 1
# Seed of the demo data and of the tests (never of a real meter).
DEMO_KEY_SEED = "smartpm-demo"
KEY_PURPOSES = ("encryption_key", "authentication_key", "token_key")


def derive_key(seed: str, purpose: str, serial: str) -> str:
    """16-byte key (upper-case hex) of `purpose` for meter `serial` under `seed`."""
    if purpose not in KEY_PURPOSES:
        raise ValueError(f"unknown key purpose {purpose!r}")
    digest = hmac.new(seed.encode(), f"{purpose}:{serial}".encode(), hashlib.sha256).digest()
    return digest[:16].hex().upper()


def derive_keys(serial: str, seed: str = DEMO_KEY_SEED) -> dict:
    return {p: derive_key(seed, p, serial) for p in KEY_PURPOSES}


def meter_tag(serial: str) -> int:
    return zlib.crc32(serial.encode("ascii"))


def token_mac(token_key: bytes, serial: str, transfer_number: int, energy_wh: int) -> bytes:
    c = CMAC(algorithms.AES(bytes(token_key)))
    c.update(
        serial.encode("ascii") + transfer_number.to_bytes(4, "big") + energy_wh.to_bytes(4, "big")
    )
    return c.finalize()[:MAC_LEN]


def mint_token(token_key: bytes, serial: str, transfer_number: int, energy_wh: int) -> bytes:
    """What Odoo does at the sale (tests use it to forge tokens with a wrong key)."""
    if not (0 <= transfer_number <= UINT32_MAX and 0 <= energy_wh <= UINT32_MAX):
        raise ValueError("transfer number and energy are uint32")
    head = (
        transfer_number.to_bytes(4, "big")
        + energy_wh.to_bytes(4, "big")
        + meter_tag(serial).to_bytes(4, "big")
    )
    return head + token_mac(token_key, serial, transfer_number, energy_wh)


def parse_token(token: bytes) -> tuple[int, int, int, bytes]:
    """(transfer_number, energy_wh, meter_tag, mac); ValueError unless 20 bytes."""
    if not isinstance(token, (bytes, bytearray)) or len(token) != TOKEN_LEN:
        raise ValueError(f"a credit token is {TOKEN_LEN} bytes")
    t = bytes(token)
    return (
        int.from_bytes(t[0:4], "big"),
        int.from_bytes(t[4:8], "big"),
        int.from_bytes(t[8:12], "big"),
        t[12:],
    )


def mac_valid(token_key: bytes, serial: str, transfer_number: int, energy_wh: int, mac) -> bool:
    expected = token_mac(token_key, serial, transfer_number, energy_wh)
    return hmac.compare_digest(expected, bytes(mac))


# Clear-credit token (docs/meter-contract.md "Clear-credit token"), 21 bytes, big-endian:
#     0x02 | uint32 transfer_number | uint32 energy_wh | uint32 meter_tag | 8-byte MAC
#     MAC = AES-CMAC(token key, CLEAR_DOMAIN ‖ serial ‖ transfer_number ‖ energy_wh), 8 bytes.
# A serial never starts with NUL, so no credit token's MAC input is a clear token's: a
# credit token is never read as a clear token nor the reverse (the lengths differ too).
CLEAR_TOKEN_LEN = 21
CLEAR_TOKEN_TYPE = 0x02
CLEAR_DOMAIN = b"\x00SMARTPM-CLEAR-CREDIT\x00"


def clear_token_mac(token_key: bytes, serial: str, transfer_number: int, energy_wh: int) -> bytes:
    c = CMAC(algorithms.AES(bytes(token_key)))
    c.update(
        CLEAR_DOMAIN
        + serial.encode("ascii")
        + transfer_number.to_bytes(4, "big")
        + energy_wh.to_bytes(4, "big")
    )
    return c.finalize()[:MAC_LEN]


def mint_clear_token(token_key: bytes, serial: str, transfer_number: int, energy_wh: int) -> bytes:
    """What Odoo does at a settlement (tests use it to forge clear tokens)."""
    if not (0 <= transfer_number <= UINT32_MAX and 0 <= energy_wh <= UINT32_MAX):
        raise ValueError("transfer number and energy are uint32")
    head = (
        bytes([CLEAR_TOKEN_TYPE])
        + transfer_number.to_bytes(4, "big")
        + energy_wh.to_bytes(4, "big")
        + meter_tag(serial).to_bytes(4, "big")
    )
    return head + clear_token_mac(token_key, serial, transfer_number, energy_wh)


def is_clear_token(token) -> bool:
    """A clear token by its shape (its MAC is checked apart)."""
    return (
        isinstance(token, (bytes, bytearray))
        and len(token) == CLEAR_TOKEN_LEN
        and token[0] == CLEAR_TOKEN_TYPE
    )


def clear_mac_valid(
    token_key: bytes, serial: str, transfer_number: int, energy_wh: int, mac
) -> bool:
    expected = clear_token_mac(token_key, serial, transfer_number, energy_wh)
    return hmac.compare_digest(expected, bytes(mac))


# Money token (docs/meter-contract.md "Money token"): credit in milli-units of the currency
# for a meter in money mode, 21 bytes:
#     0x03 | uint32 transfer_number | uint32 amount | uint32 meter_tag | 8-byte MAC
#     MAC = AES-CMAC(token key, MONEY_DOMAIN ‖ serial ‖ transfer_number ‖ amount), 8 bytes.
MONEY_TOKEN_LEN = 21
MONEY_TOKEN_TYPE = 0x03
MONEY_DOMAIN = b"\x00SMARTPM-MONEY-CREDIT\x00"


def money_token_mac(token_key: bytes, serial: str, transfer_number: int, amount: int) -> bytes:
    c = CMAC(algorithms.AES(bytes(token_key)))
    c.update(
        MONEY_DOMAIN
        + serial.encode("ascii")
        + transfer_number.to_bytes(4, "big")
        + amount.to_bytes(4, "big")
    )
    return c.finalize()[:MAC_LEN]


def mint_money_token(token_key: bytes, serial: str, transfer_number: int, amount: int) -> bytes:
    """What Odoo does at a money-mode sale (tests use it to forge money tokens)."""
    if not (0 <= transfer_number <= UINT32_MAX and 0 <= amount <= UINT32_MAX):
        raise ValueError("transfer number and amount are uint32")
    head = (
        bytes([MONEY_TOKEN_TYPE])
        + transfer_number.to_bytes(4, "big")
        + amount.to_bytes(4, "big")
        + meter_tag(serial).to_bytes(4, "big")
    )
    return head + money_token_mac(token_key, serial, transfer_number, amount)


def is_money_token(token) -> bool:
    return (
        isinstance(token, (bytes, bytearray))
        and len(token) == MONEY_TOKEN_LEN
        and token[0] == MONEY_TOKEN_TYPE
    )


def money_mac_valid(token_key: bytes, serial: str, transfer_number: int, amount: int, mac) -> bool:
    expected = money_token_mac(token_key, serial, transfer_number, amount)
    return hmac.compare_digest(expected, bytes(mac))


# Money clear token (docs/meter-contract.md "Money clear-credit token"): takes milli-units of
# the currency off a meter in money mode (a standing charge Odoo collects, a settlement),
# 21 bytes:
#     0x04 | uint32 transfer_number | uint32 amount | uint32 meter_tag | 8-byte MAC
#     MAC = AES-CMAC(token key, MONEY_CLEAR_DOMAIN ‖ serial ‖ transfer_number ‖ amount).
# Its own domain: no credit, clear or money token's MAC is ever a money clear token's.
MONEY_CLEAR_TOKEN_LEN = 21
MONEY_CLEAR_TOKEN_TYPE = 0x04
MONEY_CLEAR_DOMAIN = b"\x00SMARTPM-MONEY-CLEAR\x00"


def money_clear_token_mac(
    token_key: bytes, serial: str, transfer_number: int, amount: int
) -> bytes:
    c = CMAC(algorithms.AES(bytes(token_key)))
    c.update(
        MONEY_CLEAR_DOMAIN
        + serial.encode("ascii")
        + transfer_number.to_bytes(4, "big")
        + amount.to_bytes(4, "big")
    )
    return c.finalize()[:MAC_LEN]


def mint_money_clear_token(
    token_key: bytes, serial: str, transfer_number: int, amount: int
) -> bytes:
    """What Odoo does to take money off a money-mode meter (tests forge them with it)."""
    if not (0 <= transfer_number <= UINT32_MAX and 0 <= amount <= UINT32_MAX):
        raise ValueError("transfer number and amount are uint32")
    head = (
        bytes([MONEY_CLEAR_TOKEN_TYPE])
        + transfer_number.to_bytes(4, "big")
        + amount.to_bytes(4, "big")
        + meter_tag(serial).to_bytes(4, "big")
    )
    return head + money_clear_token_mac(token_key, serial, transfer_number, amount)


def is_money_clear_token(token) -> bool:
    return (
        isinstance(token, (bytes, bytearray))
        and len(token) == MONEY_CLEAR_TOKEN_LEN
        and token[0] == MONEY_CLEAR_TOKEN_TYPE
    )


def money_clear_mac_valid(
    token_key: bytes, serial: str, transfer_number: int, amount: int, mac
) -> bool:
    expected = money_clear_token_mac(token_key, serial, transfer_number, amount)
    return hmac.compare_digest(expected, bytes(mac))
