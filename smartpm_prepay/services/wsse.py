"""WS-Security (OASIS WSS 1.0/1.1) as the bank SOAP endpoint understands it: the
``wsse:Security`` header with one ``wsu:Timestamp`` and one ``wsse:UsernameToken``
(``PasswordText`` with the Bank API user's API key, or ``PasswordDigest`` with the bank's
shared secret, its nonce stored so it is accepted once).

Plain Python on lxml elements; the controller (controllers/soap.py) turns a
``SecurityFault`` into a SOAP fault whose code is the WSS one (``wsse:MessageExpired``...).
"""

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
TOKEN_PROFILE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
PASSWORD_TEXT = f"{TOKEN_PROFILE}#PasswordText"
PASSWORD_DIGEST = f"{TOKEN_PROFILE}#PasswordDigest"
BASE64_BINARY = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)

# Settings (Settings → Prepaid Electricity → Bank SOAP service)
CLOCK_SKEW_PARAM = "smartpm_prepay.soap_clock_skew_seconds"
DEFAULT_CLOCK_SKEW = 300
LIFETIME_PARAM = "smartpm_prepay.soap_message_lifetime_seconds"
DEFAULT_LIFETIME = 300
# shorter nonces would repeat by chance: the usual stacks send 16 random bytes
MIN_NONCE_BYTES = 8
MAX_NONCE_BYTES = 256
MIN_SECRET_LENGTH = 16

# xsd:dateTime as WS-Security sends it (UTC "Z" recommended; an offset accepted)
DATETIME_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})?$", re.ASCII
)


class SecurityFault(Exception):
    """A refused security header. ``fault`` is the WSS fault code's local name
    (``FailedAuthentication``, ``InvalidSecurity``, ``InvalidSecurityToken``,
    ``UnsupportedSecurityToken``, ``MessageExpired``); ``message`` says what is wrong."""

    def __init__(self, fault, message):
        super().__init__(message)
        self.fault = fault
        self.message = message


@dataclass
class UsernameToken:
    login: str
    password: str
    digest: bool = False
    nonce: bytes = b""
    created: str = ""  # as sent: the digest is computed over this text


@dataclass
class Timestamp:
    created: datetime | None
    expires: datetime | None


@dataclass
class SecurityHeader:
    token: UsernameToken | None = None
    timestamp: Timestamp | None = None


def parse_time(text, what):
    """An xsd:dateTime as an aware UTC datetime; SecurityFault if it is not one."""
    match = DATETIME_RE.match((text or "").strip())
    if not match:
        raise SecurityFault("InvalidSecurity", f"{what} {text!r} is not an xsd:dateTime.")
    moment, fraction, zone = match.groups()
    try:
        value = datetime.fromisoformat(moment + (f".{fraction[:6]:0<6}" if fraction else ""))
        if zone and zone != "Z":
            sign = 1 if zone[0] == "+" else -1
            offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
            value = value.replace(tzinfo=timezone(sign * offset))
    except ValueError:
        raise SecurityFault("InvalidSecurity", f"{what} {text!r} is not a valid time.") from None
    if value.tzinfo is None:  # no zone: UTC, as WS-Security recommends
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _only(parent, tag, what):
    found = parent.findall(tag)
    if len(found) > 1:
        raise SecurityFault("InvalidSecurity", f"The security header holds {what} twice.")
    return found[0] if found else None


def parse_security(security, must_understand):
    """The ``SecurityHeader`` of a ``wsse:Security`` element. Elements it does not process
    (a signature, an encrypted key, another kind of token) are refused when the header is
    marked mustUnderstand: the sender relies on them being checked."""
    if security is None:
        return SecurityHeader()
    header = SecurityHeader()
    token = _only(security, f"{{{WSSE}}}UsernameToken", "a UsernameToken")
    if token is not None:
        header.token = _parse_token(token)
    stamp = _only(security, f"{{{WSU}}}Timestamp", "a Timestamp")
    if stamp is not None:
        header.timestamp = _parse_timestamp(stamp)
    if must_understand:
        for child in security:
            if isinstance(child.tag, str) and child not in (token, stamp):
                raise SecurityFault(
                    "UnsupportedSecurityToken",
                    f"{child.tag} is not supported in the security header: this service "
                    "checks a UsernameToken and a Timestamp only.",
                )
    return header


def _parse_timestamp(stamp):
    created = _only(stamp, f"{{{WSU}}}Created", "a Timestamp Created")
    expires = _only(stamp, f"{{{WSU}}}Expires", "a Timestamp Expires")
    if created is None and expires is None:
        raise SecurityFault("InvalidSecurity", "The Timestamp has neither Created nor Expires.")
    return Timestamp(
        created=parse_time(created.text, "Timestamp Created") if created is not None else None,
        expires=parse_time(expires.text, "Timestamp Expires") if expires is not None else None,
    )


def _parse_token(token):
    login = (token.findtext(f"{{{WSSE}}}Username") or "").strip()
    password = token.find(f"{{{WSSE}}}Password")
    if not login or password is None or not (password.text or "").strip():
        raise SecurityFault(
            "InvalidSecurityToken", "The UsernameToken has no username or password."
        )
    kind = password.get("Type", PASSWORD_TEXT)
    if kind == PASSWORD_TEXT:
        return UsernameToken(login, password.text)
    if kind != PASSWORD_DIGEST:
        raise SecurityFault("UnsupportedSecurityToken", f"Password type {kind} is not supported.")
    nonce = _only(token, f"{{{WSSE}}}Nonce", "a Nonce")
    created = _only(token, f"{{{WSU}}}Created", "a UsernameToken Created")
    if nonce is None or created is None:
        raise SecurityFault(
            "InvalidSecurityToken", "A PasswordDigest needs the token's Nonce and Created."
        )
    if nonce.get("EncodingType", BASE64_BINARY) != BASE64_BINARY:
        raise SecurityFault("InvalidSecurityToken", "The Nonce must be Base64Binary.")
    try:
        nonce_bytes = base64.b64decode((nonce.text or "").strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SecurityFault("InvalidSecurityToken", "The Nonce is not valid Base64.") from None
    if not MIN_NONCE_BYTES <= len(nonce_bytes) <= MAX_NONCE_BYTES:
        raise SecurityFault(
            "InvalidSecurityToken",
            f"The Nonce must be {MIN_NONCE_BYTES} to {MAX_NONCE_BYTES} random bytes.",
        )
    return UsernameToken(
        login, password.text.strip(), digest=True, nonce=nonce_bytes, created=created.text or ""
    )


def _seconds(delta):
    return int(delta.total_seconds())


def check_timestamp(stamp, now, skew, lifetime):
    """Refuse a Timestamp created in the future or expired (both beyond ``skew`` seconds of
    clock difference), or without Expires and older than ``lifetime`` seconds."""
    allowance = timedelta(seconds=skew)
    if stamp.created and stamp.created > now + allowance:
        raise SecurityFault(
            "MessageExpired",
            f"The Timestamp was created {_seconds(stamp.created - now)} s in the future "
            f"(server time {format_time(now)}, clock skew allowed {skew} s).",
        )
    if stamp.created and stamp.expires and stamp.expires < stamp.created:
        raise SecurityFault("InvalidSecurity", "The Timestamp expires before it was created.")
    if stamp.expires and stamp.expires < now - allowance:
        raise SecurityFault(
            "MessageExpired",
            f"The message expired at {format_time(stamp.expires)} "
            f"(server time {format_time(now)}, clock skew allowed {skew} s).",
        )
    if not stamp.expires and stamp.created < now - allowance - timedelta(seconds=lifetime):
        raise SecurityFault(
            "MessageExpired",
            f"The Timestamp was created at {format_time(stamp.created)}, more than {lifetime} s "
            f"ago (server time {format_time(now)}, clock skew allowed {skew} s).",
        )


def check_token_age(token, now, skew, lifetime):
    """A PasswordDigest token is fresh: its Created is at most ``lifetime`` (plus ``skew``)
    seconds old and not in the future; its nonce is remembered until it is too old anyway.
    Answers that moment (when the nonce may be forgotten)."""
    created = parse_time(token.created, "UsernameToken Created")
    allowance = timedelta(seconds=skew)
    if created > now + allowance:
        raise SecurityFault(
            "MessageExpired",
            f"The UsernameToken was created {_seconds(created - now)} s in the future "
            f"(server time {format_time(now)}, clock skew allowed {skew} s).",
        )
    forget_at = created + allowance + timedelta(seconds=lifetime)
    if forget_at < now:
        raise SecurityFault(
            "MessageExpired",
            f"The UsernameToken was created at {format_time(created)}, more than {lifetime} s "
            f"ago (server time {format_time(now)}, clock skew allowed {skew} s).",
        )
    return created, forget_at


def password_digest(nonce, created, secret):
    """Base64(SHA-1(nonce + created + password)), the UsernameToken profile's digest."""
    raw = hashlib.sha1(nonce + created.encode() + secret.encode())
    return base64.b64encode(raw.digest()).decode("ascii")


def digest_matches(token, secret):
    if not secret:
        return False
    return hmac.compare_digest(
        password_digest(token.nonce, token.created, secret).encode(), token.password.encode()
    )


def format_time(value):
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def settings(env):
    """(clock skew, message lifetime) in seconds, from the settings."""
    params = env["ir.config_parameter"].sudo()

    def seconds(key, default):
        try:
            return max(0, int(params.get_param(key, default)))
        except (TypeError, ValueError):
            return default

    return seconds(CLOCK_SKEW_PARAM, DEFAULT_CLOCK_SKEW), seconds(LIFETIME_PARAM, DEFAULT_LIFETIME)


def remember_nonce(env, user_id, token, created, forget_at):
    """Store the token's nonce for ``user_id``; False if it was used before. Two requests
    with the same nonce at once: the unique index makes the second wait for the first and
    then find the nonce (or, under Odoo's repeatable read, fail to serialize and be retried
    by Odoo, and find it then)."""
    env.cr.execute(
        """
        INSERT INTO smartpm_soap_nonce (user_id, nonce_hash, created, forget_at)
        VALUES (%s, %s, %s, %s)
        ON CONFLICT (user_id, nonce_hash) DO NOTHING
        RETURNING id
        """,
        (
            user_id,
            hashlib.sha256(token.nonce).hexdigest(),
            created.astimezone(timezone.utc).replace(tzinfo=None),
            forget_at.astimezone(timezone.utc).replace(tzinfo=None),
        ),
    )
    return bool(env.cr.fetchone())
