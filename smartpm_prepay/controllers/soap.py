"""SOAP endpoint of the bank channel, written with lxml (Odoo has no SOAP server).

GET  /smartpm/soap/vending?wsdl  the WSDL (document/literal), public: it holds no data.
POST /smartpm/soap/vending       SOAP 1.1 (text/xml), one operation per envelope.
POST /smartpm/soap12/vending     SOAP 1.2 (application/soap+xml), the same operations.

Each address answers an envelope of the other version (or of none) with a VersionMismatch
fault, a mandatory header block it does not understand with a MustUnderstand fault, a
request of another media type with HTTP 415 and an action (SOAP 1.1 ``SOAPAction``, SOAP 1.2
``action`` parameter) naming another operation than the body's with a Client fault, as the
SOAP specifications say. Authentication is a WS-Security UsernameToken (services/wsse.py):
PasswordText with an API key, or PasswordDigest with the bank's shared secret; a
``wsu:Timestamp`` is checked when present.

The operation runs as the authenticated Bank API user inside a savepoint: a fault rolls it
back, so a refused request leaves nothing behind.
"""

import functools
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import psycopg2.errors
from lxml import etree

from odoo import http
from odoo.exceptions import AccessDenied, AccessError, UserError
from odoo.http import request
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY

from ..models.res_config_settings import SOAP_BASE_URL_PARAM
from ..services import bank_api, wsse
from ..services.bank_api import BankApiError

_logger = logging.getLogger(__name__)

ROUTE = "/smartpm/soap/vending"
ROUTE12 = "/smartpm/soap12/vending"
TNS = "urn:smartpm-prepay:vending:1"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
WSSE = wsse.WSSE
PASSWORD_TEXT = wsse.PASSWORD_TEXT
MAX_BODY = 64 * 1024
READ_CHUNK = 8192
# Where the body read once is kept for Odoo's retries of the same request (a serialization
# failure makes Odoo run the controller again, on an input stream already consumed).
BODY_KEY = "smartpm.soap.body"
WSDL_TEMPLATE = (Path(__file__).parent / "vending.wsdl").read_text(encoding="utf-8")


@dataclass(frozen=True)
class SoapVersion:
    """What differs between SOAP 1.1 and 1.2 for this endpoint."""

    name: str
    ns: str
    prefix: str
    content_type: str
    route: str
    # the media type the HTTP binding prescribes for a request (SOAP 1.1 §6.1.1, SOAP 1.2
    # part 2 §7.1.4 / RFC 3902)
    media_type: str
    # header blocks for this node: SOAP 1.1 actor / SOAP 1.2 role attribute and the values
    # that target it (absent targets it too)
    target_attr: str
    targets: frozenset
    must_understand_attr: str


SOAP11 = SoapVersion(
    "1.1",
    SOAP_ENV,
    "soap",
    "text/xml; charset=utf-8",
    ROUTE,
    "text/xml",
    f"{{{SOAP_ENV}}}actor",
    frozenset({"http://schemas.xmlsoap.org/soap/actor/next"}),
    f"{{{SOAP_ENV}}}mustUnderstand",
)
SOAP12 = SoapVersion(
    "1.2",
    SOAP12_ENV,
    "env",
    "application/soap+xml; charset=utf-8",
    ROUTE12,
    "application/soap+xml",
    f"{{{SOAP12_ENV}}}role",
    frozenset({f"{SOAP12_ENV}/role/next", f"{SOAP12_ENV}/role/ultimateReceiver"}),
    f"{{{SOAP12_ENV}}}mustUnderstand",
)
VERSIONS = {v.ns: v for v in (SOAP11, SOAP12)}
# header blocks this node understands (processes when marked mustUnderstand)
UNDERSTOOD_HEADERS = frozenset({f"{{{WSSE}}}Security"})


class SoapFault(Exception):
    """A fault to answer. ``kind``: Client, Server (Sender, Receiver in SOAP 1.2),
    VersionMismatch or MustUnderstand. ``subcode``: (namespace, name) of a finer code (the
    WS-Security fault codes, or the vending code), ``code``: the VendingFault code of the
    detail (None: no detail, as for every fault about the header). ``answer_in``: the SOAP
    version of the fault's envelope when it is not the endpoint's; ``upgrade``: name SOAP 1.2
    in an Upgrade header (a VersionMismatch at the SOAP 1.2 address)."""

    def __init__(self, kind, message, subcode=None, code=None, **extra):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.subcode = subcode
        self.code = code
        self.not_understood = extra.get("not_understood", ())
        self.answer_in = extra.get("answer_in")
        self.upgrade = extra.get("upgrade")
        # the HTTP status when the binding prescribes one (415 for a wrong media type)
        self.status = extra.get("status")

    @classmethod
    def from_bank_error(cls, exc):
        kind = "Server" if exc.code == bank_api.INTERNAL_ERROR else "Client"
        return cls(kind, exc.detail, subcode=(TNS, exc.code), code=exc.code)

    @classmethod
    def from_security(cls, exc):
        # WSS 1.1 §12: the fault code is the wsse one; the detail keeps the stable code a
        # bank's client already handles
        return cls("Client", exc.message, subcode=(WSSE, exc.fault), code=bank_api.NOT_AUTHORISED)


@dataclass
class SoapCall:
    operation: str
    args: dict
    security: wsse.SecurityHeader = field(default_factory=wsse.SecurityHeader)

    @property
    def credentials(self):
        token = self.security.token
        return (token.login, token.password) if token and not token.digest else None


# operation -> ([(request element, required)], service call)
OPERATIONS = {
    "QueryCustomer": (
        [("meterNumber", True)],
        lambda env, a: bank_api.query_customer(env, a["meterNumber"]),
    ),
    "Purchase": (
        [
            ("meterNumber", True),
            ("amount", True),
            ("currency", False),
            ("bankReference", True),
            ("bankTime", True),
        ],
        lambda env, a: bank_api.purchase(
            env,
            "bank_soap",
            a["meterNumber"],
            a["amount"],
            a["currency"],
            a["bankReference"],
            a["bankTime"],
        ),
    ),
    "QueryPurchase": (
        [("bankReference", True)],
        lambda env, a: bank_api.query_purchase(env, a["bankReference"]),
    ),
    "ReversePurchase": (
        [("bankReference", True)],
        lambda env, a: bank_api.reverse_purchase(env, a["bankReference"]),
    ),
}
# Response fields, in the order of the WSDL's sequences.
CUSTOMER_FIELDS = (
    "meterNumber",
    "tenantName",
    "tenantNumber",
    "meterState",
    "sellable",
    "tariffPrice",
    "currency",
    "minimumAmount",
    "maximumAmount",
    "priceDescription",
)
RECEIPT_FIELDS = (
    "reference",
    "meterNumber",
    "tenantName",
    "tenantNumber",
    "amount",
    "currency",
    "kwh",
    "pricePerKwh",
    "state",
    "transferNumber",
    "bankReference",
    "bankTime",
    "date",
    "debtRecovered",
    "debtBalance",
    "creditAmount",
    "emergencyRepaidKwh",
    "negativeCreditRepaidKwh",
    "netKwh",
    "newBalanceKwh",
    "splitFromMeter",
    "creditMoney",
    "priceBands",
    "emergencyRepaidMoney",
    "negativeCreditRepaidMoney",
    "netMoney",
    "newBalanceMoney",
)
OPTIONAL_EMPTY = {"bankTime", "newBalanceKwh", "newBalanceMoney"}
# the debt split (issue 17 §5): optional elements, sent only for a tenant with debts, so a
# bank's client built on the WSDL before them sees the same answers for everyone else
DEBT_FIELDS = ("debtRecovered", "debtBalance", "creditAmount")
# the energy split (services/receipt.py): optional elements too, sent only when the sale
# repays emergency or negative credit (or is expected to)
REPAYMENT_FIELDS = (
    "emergencyRepaidKwh",
    "negativeCreditRepaidKwh",
    "netKwh",
    "newBalanceKwh",
    "splitFromMeter",
)
# time of use (issue 17 §6): optional, only in answers about a money-mode meter
# (with the money split: what the credit repays, expected until the meter has the token)
TOU_FIELDS = (
    "creditMoney",
    "priceBands",
    "priceDescription",
    "emergencyRepaidMoney",
    "negativeCreditRepaidMoney",
    "netMoney",
    "newBalanceMoney",
)


def _parser():
    # No DTDs, entities or network: the body comes from outside.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def _envelope(body_child, version=SOAP11, headers=()):
    env = etree.Element(f"{{{version.ns}}}Envelope", nsmap={version.prefix: version.ns, "tns": TNS})
    if headers:
        etree.SubElement(env, f"{{{version.ns}}}Header").extend(headers)
    body = etree.SubElement(env, f"{{{version.ns}}}Body")
    body.append(body_child)
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


def _text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render_response(operation, answer, version=SOAP11):
    element = etree.Element(f"{{{TNS}}}{operation}Response", nsmap={"tns": TNS})
    fields = CUSTOMER_FIELDS if operation == "QueryCustomer" else RECEIPT_FIELDS
    has_debt = answer.get("hasDebt")
    for name in fields:
        value = answer.get(name)
        if name in OPTIONAL_EMPTY and not value:
            continue
        if name in DEBT_FIELDS and not has_debt:
            continue
        if name in REPAYMENT_FIELDS and not answer.get("hasRepayment"):
            continue
        # a money-mode sale's repayment is in money (TOU_FIELDS), not in kWh
        if name in REPAYMENT_FIELDS[:4] and "creditMoney" in answer:
            continue
        if name in TOU_FIELDS and name not in answer:
            continue
        etree.SubElement(element, f"{{{TNS}}}{name}").text = _text(value)
    return _envelope(element, version)


def _vending_detail(fault):
    detail = etree.Element(f"{{{TNS}}}VendingFault", nsmap={"tns": TNS})
    etree.SubElement(detail, f"{{{TNS}}}code").text = fault.code
    etree.SubElement(detail, f"{{{TNS}}}message").text = fault.message
    return detail


FAULT_PREFIXES = {WSSE: "wsse", TNS: "tns"}


def render_fault(fault, version=SOAP11):
    """The envelope of ``fault`` (a SoapFault) in ``version``."""
    nsmap = {version.prefix: version.ns}
    if fault.subcode and fault.subcode[0] == WSSE:
        nsmap["wsse"] = WSSE
    element = etree.Element(f"{{{version.ns}}}Fault", nsmap=nsmap)
    headers = _fault_headers(fault, version)
    if version is SOAP11:
        if fault.subcode and fault.subcode[0] == WSSE:
            faultcode = f"wsse:{fault.subcode[1]}"
        else:
            faultcode = f"soap:{fault.kind}"
        etree.SubElement(element, "faultcode").text = faultcode
        etree.SubElement(element, "faultstring").text = fault.message
        if fault.code:
            etree.SubElement(element, "detail").append(_vending_detail(fault))
        return _envelope(element, version, headers)
    ns = version.ns
    kind = {"Client": "Sender", "Server": "Receiver"}.get(fault.kind, fault.kind)
    code = etree.SubElement(element, f"{{{ns}}}Code")
    etree.SubElement(code, f"{{{ns}}}Value").text = f"env:{kind}"
    if fault.subcode:
        subcode = etree.SubElement(code, f"{{{ns}}}Subcode")
        prefix = FAULT_PREFIXES[fault.subcode[0]]
        etree.SubElement(subcode, f"{{{ns}}}Value").text = f"{prefix}:{fault.subcode[1]}"
    reason = etree.SubElement(element, f"{{{ns}}}Reason")
    text = etree.SubElement(reason, f"{{{ns}}}Text")
    text.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
    text.text = fault.message
    if fault.code:
        etree.SubElement(element, f"{{{ns}}}Detail").append(_vending_detail(fault))
    return _envelope(element, version, headers)


def _fault_headers(fault, version):
    headers = []
    if fault.upgrade:
        # SOAP 1.2 §5.4.7 and appendix A: the envelope this address serves
        upgrade = etree.Element(f"{{{SOAP12_ENV}}}Upgrade", nsmap={"upg": SOAP12_ENV})
        supported = etree.SubElement(upgrade, f"{{{SOAP12_ENV}}}SupportedEnvelope")
        supported.set("qname", "upg:Envelope")
        headers.append(upgrade)
    if version is SOAP12:
        # SOAP 1.2 §5.4.8: one NotUnderstood block per header not understood
        for namespace, name in fault.not_understood:
            block = etree.Element(
                f"{{{SOAP12_ENV}}}NotUnderstood", nsmap={"nu": namespace} if namespace else None
            )
            block.set("qname", f"nu:{name}" if namespace else name)
            headers.append(block)
    return headers


class BodyTooLarge(Exception):
    pass


def read_body(stream, limit=MAX_BODY, chunk=READ_CHUNK):
    """The request body, read from ``stream`` in chunks and never more than ``limit`` bytes
    of it kept: a body (chunked, or with a false Content-Length) that goes on beyond the
    limit raises ``BodyTooLarge`` after reading at most ``limit + 1`` bytes."""
    parts = []
    size = 0
    while True:
        data = stream.read(min(chunk, limit + 1 - size))
        if not data:
            return b"".join(parts)
        size += len(data)
        if size > limit:
            raise BodyTooLarge()
        parts.append(data)


def parse_envelope(data, version=SOAP11):
    """The SoapCall of a request to the ``version`` address. BankApiError for a bad request,
    SoapFault for a version mismatch or a mandatory header not understood, SecurityFault for
    a malformed security header."""
    if not data or len(data) > MAX_BODY:
        raise BankApiError(bank_api.INVALID_REQUEST, "Empty or oversized request.")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError:
        raise BankApiError(
            bank_api.INVALID_REQUEST, "The request is not well-formed XML."
        ) from None
    _check_version(etree.QName(root), version)
    security = _security_block(root.find(f"{{{version.ns}}}Header"), version)
    body = root.find(f"{{{version.ns}}}Body")
    children = [c for c in body if isinstance(c.tag, str)] if body is not None else []
    if len(children) != 1:
        raise BankApiError(bank_api.INVALID_REQUEST, "The SOAP body must hold one operation.")
    qname = etree.QName(children[0])
    if qname.namespace != TNS or qname.localname not in OPERATIONS:
        raise BankApiError(bank_api.INVALID_REQUEST, f"Unknown operation {qname.localname}.")
    params, _call = OPERATIONS[qname.localname]
    args = {}
    for name, required in params:
        found = children[0].findall(f"{{{TNS}}}{name}")
        if len(found) > 1:
            raise BankApiError(bank_api.INVALID_REQUEST, f"{name} is given twice.")
        value = (found[0].text or "").strip() if found else ""
        if required and not value:
            raise BankApiError(bank_api.INVALID_REQUEST, f"{name} is required.")
        args[name] = value or None
    return SoapCall(qname.localname, args, security)


def _check_version(qname, version):
    if qname.localname != "Envelope":
        raise BankApiError(bank_api.INVALID_REQUEST, "The request is not a SOAP envelope.")
    if qname.namespace == version.ns:
        return
    sent = VERSIONS.get(qname.namespace)
    if sent:
        other = f" SOAP {sent.name} is served at {sent.route}."
        message = f"This address serves SOAP {version.name}, not {sent.name}.{other}"
    else:
        message = f"Envelope namespace {qname.namespace or '(none)'} is not SOAP {version.name}."
    # a SOAP 1.1 envelope gets its fault in SOAP 1.1 (SOAP 1.2 appendix A)
    answer_in = SOAP11 if sent is SOAP11 else None
    raise SoapFault("VersionMismatch", message, answer_in=answer_in, upgrade=version is SOAP12)


MEDIA_TYPES = {v.media_type: v for v in (SOAP11, SOAP12)}


def _unsupported_media(media_type, version):
    return SoapFault(
        "Client",
        f"This address serves SOAP {version.name} and takes Content-Type "
        f"{version.media_type}, not {media_type or '(none)'}.",
        subcode=(TNS, bank_api.INVALID_REQUEST),
        code=bank_api.INVALID_REQUEST,
        status=415,
    )


def check_media_type(media_type, version, envelope_checked=False):
    """Refuse a request whose Content-Type is not the one the binding of ``version``
    prescribes, with HTTP 415 Unsupported Media Type (SOAP 1.2 part 2 §7.5.1.2; WS-I Basic
    Profile 1.1 §3.4.7 for SOAP 1.1) and a Client/Sender fault saying which one it takes.

    A request without Content-Type is judged by its envelope alone. Before the envelope is
    read (``envelope_checked`` False) the other SOAP version's media
    type passes: its envelope then gets the VersionMismatch fault the specifications ask for
    (SOAP 1.2 appendix A), which tells a client more than a 415. Once the envelope is known
    to be of ``version``, only its own media type passes."""
    # no Content-Type at all: RFC 9110 §8.3 lets the recipient examine the data, and the
    # envelope's namespace says its version (a VersionMismatch fault if it is the other)
    if not media_type or media_type == version.media_type:
        return
    if not envelope_checked and media_type in MEDIA_TYPES:
        return
    raise _unsupported_media(media_type, version)


def soap_action(version, headers, mimetype_params):
    """The action the request names, without quotes ('' when none or empty): SOAP 1.1's
    ``SOAPAction`` header, SOAP 1.2's ``action`` parameter of the media type."""
    if version is SOAP11:
        value = headers.get("SOAPAction") or ""
    else:
        value = mimetype_params.get("action") or ""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1].strip()
    return value


def operation_action(operation):
    """The soapAction of ``operation`` in both WSDL bindings."""
    return f"{TNS}#{operation}"


def check_action(action, operation, version):
    """Refuse an action that is not the operation's own (WS-I Basic Profile R2744/R1119 for
    SOAP 1.1; SOAP 1.2 part 2 §7.1.4 for the ``action`` parameter). No action, or an empty
    one (SOAP 1.1 §6.1.1: the Request-URI says it all), leaves the body to decide."""
    if not action or action == operation_action(operation):
        return
    named = action.rpartition("#")[2] if action.startswith(f"{TNS}#") else None
    header = "SOAPAction" if version is SOAP11 else "the action parameter"
    if named in OPERATIONS:
        message = (
            f"{header} names the operation {named} but the body holds {operation} "
            f"(expected {operation_action(operation)})."
        )
    else:
        message = (
            f"{header} {action} is not an operation of this service "
            f"(expected {operation_action(operation)} for {operation})."
        )
    raise SoapFault(
        "Client",
        message,
        subcode=(TNS, bank_api.INVALID_REQUEST),
        code=bank_api.INVALID_REQUEST,
    )


def _security_block(header, version):
    """The SecurityHeader of the header blocks for this node, after refusing any mandatory
    one it does not understand (SOAP 1.1 §4.2.3, SOAP 1.2 §2.4)."""
    blocks, not_understood = [], []
    for block in header if header is not None else ():
        if not isinstance(block.tag, str):
            continue
        target = block.get(version.target_attr)
        if target is not None and target.strip() not in version.targets:
            continue  # for another node (or role "none")
        if block.tag in UNDERSTOOD_HEADERS:
            blocks.append(block)
        elif _mandatory(block, version):
            qname = etree.QName(block)
            not_understood.append((qname.namespace, qname.localname))
    if not_understood:
        names = ", ".join(f"{{{ns}}}{name}" if ns else name for ns, name in not_understood)
        raise SoapFault(
            "MustUnderstand",
            f"Header {names} is marked mustUnderstand and is not understood by this service.",
            not_understood=not_understood,
        )
    if len(blocks) > 1:
        raise wsse.SecurityFault("InvalidSecurity", "The message holds two security headers.")
    if not blocks:
        return wsse.SecurityHeader()
    return wsse.parse_security(blocks[0], _mandatory(blocks[0], version))


def _mandatory(block, version):
    return (block.get(version.must_understand_attr) or "").strip() in ("1", "true")


@functools.lru_cache(maxsize=4)
def _dummy_hash(scheme, rounds):
    # a hash of the same kind and cost as a real password's, computed once per process
    from passlib.context import CryptContext

    return CryptContext([scheme], **{f"{scheme}__rounds": rounds}).hash("smartpm-no-such-user")


def _hash_like_a_password(Users, password):
    """Spend on a failed login the time a password check takes: without it an unknown login
    (or a user without password) answers in milliseconds and a real one in ~0.4 s, which
    tells anyone which logins exist."""
    context = Users._crypt_context()
    scheme = context.default_scheme()
    rounds = context.to_dict().get(f"{scheme}__rounds") or 0
    context.verify(password, _dummy_hash(scheme, rounds))


def _has_password_hash(Users, user):
    Users.env.cr.execute("SELECT COALESCE(password, '') FROM res_users WHERE id = %s", [user.id])
    [hashed] = Users.env.cr.fetchone()
    return Users._crypt_context().identify(hashed) == Users._crypt_context().default_scheme()


def _find_user(Users, login):
    return Users.search(Users._get_login_domain(login), order=Users._get_login_order(), limit=1)


def authenticate(credentials):
    """The uid of a valid login with its API key (or password), checked exactly as Odoo's
    XML-RPC checks every call (``res.users.check``: non-interactive, so API keys are
    accepted, cached once valid, with the failed-login cooldown, which Bank API users have
    per login and address, see ``bank_api.login_throttle``); None otherwise. A failed login
    costs one password hash whether the login exists or not."""
    if not credentials:
        return None
    login, password = credentials
    Users = request.env(su=True)["res.users"]
    user = _find_user(Users, login)
    if not user:
        try:
            with bank_api.login_throttle(Users.env, login, request.httprequest.remote_addr):
                _hash_like_a_password(Users, password)
                raise AccessDenied()
        except AccessDenied:
            return None
    try:
        request.env.registry["res.users"].check(request.db, user.id, password)
    except AccessDenied:
        if not _has_password_hash(Users, user):
            _hash_like_a_password(Users, password)
        return None
    return user.id


def authenticate_digest(token):
    """The uid of a Bank API user whose PasswordDigest matches its bank's shared secret;
    None otherwise (failures counted per login and address like other logins)."""
    Users = request.env(su=True)["res.users"]
    user = _find_user(Users, token.login)
    try:
        with bank_api.login_throttle(Users.env, token.login, request.httprequest.remote_addr):
            bank = user.partner_id.commercial_partner_id
            secret = (
                bank.smartpm_soap_digest_secret
                if user and bank.smartpm_is_bank and user.has_group("smartpm_prepay.group_bank_api")
                else None
            )
            if not wsse.digest_matches(token, secret):
                raise AccessDenied()
    except AccessDenied:
        return None
    return user.id


def check_security(security, env):
    """The uid the security header authenticates, after its Timestamp and (for a
    PasswordDigest) the token's age are checked; with the nonce to remember, if any.
    SecurityFault otherwise."""
    skew, lifetime = wsse.settings(env)
    now = datetime.now(timezone.utc)
    if security.timestamp:
        wsse.check_timestamp(security.timestamp, now, skew, lifetime)
    token = security.token
    if token is None:
        raise wsse.SecurityFault("InvalidSecurity", "Not authorised: no UsernameToken.")
    if not token.digest:
        uid = authenticate((token.login, token.password))
        nonce = None
    else:
        created, forget_at = wsse.check_token_age(token, now, skew, lifetime)
        uid = authenticate_digest(token)
        nonce = (token, created, forget_at)
    if not uid:
        raise wsse.SecurityFault("FailedAuthentication", "Not authorised.")
    return uid, nonce


def wsdl(env):
    """The WSDL, its two ports at the configured address (the SOAP address setting, else
    web.base.url; never the request's Host header, which the caller chooses)."""
    params = env["ir.config_parameter"].sudo()
    base = params.get_param(SOAP_BASE_URL_PARAM) or params.get_param("web.base.url") or ""
    base = base.strip().rstrip("/")
    return WSDL_TEMPLATE.replace("{{LOCATION}}", base + ROUTE).replace(
        "{{LOCATION12}}", base + ROUTE12
    )


def _input_stream():
    # Odoo's HTTPRequest does not expose werkzeug's ``stream`` (the body, de-chunked and
    # bounded by its Content-Length), only ``get_data``, which reads it all into memory.
    return request.httprequest._HTTPRequest__wrapped.stream


ROUTE_OPTIONS = {
    "type": "http",
    "auth": "none",
    "methods": ["GET", "POST"],
    "csrf": False,
    # read/write: auth="none" routes default to a read-only cursor in Odoo 18
    "readonly": False,
    "save_session": False,
}


class SmartpmSoapController(http.Controller):
    @http.route(ROUTE, **ROUTE_OPTIONS)
    def soap_vending(self, **kwargs):
        return self._serve(SOAP11)

    @http.route(ROUTE12, **ROUTE_OPTIONS)
    def soap12_vending(self, **kwargs):
        return self._serve(SOAP12)

    def _serve(self, version):
        if request.httprequest.method == "GET":
            return request.make_response(
                wsdl(request.env), headers=[("Content-Type", "text/xml; charset=utf-8")]
            )
        try:
            check_media_type(request.httprequest.mimetype, version)
        except SoapFault as exc:
            return self._fault(exc, version)
        oversized = SoapFault(
            "Client",
            "Oversized request.",
            subcode=(TNS, bank_api.INVALID_REQUEST),
            code=bank_api.INVALID_REQUEST,
        )
        if (request.httprequest.content_length or 0) > MAX_BODY:
            return self._fault(oversized, version)
        environ = request.httprequest.environ
        if BODY_KEY not in environ:  # first try of this request; a retry reuses the body
            try:
                environ[BODY_KEY] = read_body(_input_stream())
            except BodyTooLarge:
                environ[BODY_KEY] = None
        if environ[BODY_KEY] is None:
            return self._fault(oversized, version)
        return self._dispatch_soap(environ[BODY_KEY], version)

    def _dispatch_soap(self, data, version=SOAP11):
        try:
            call = parse_envelope(data, version)
            httprequest = request.httprequest
            check_media_type(httprequest.mimetype, version, envelope_checked=True)
            action = soap_action(version, httprequest.headers, httprequest.mimetype_params)
            check_action(action, call.operation, version)
            uid, nonce = check_security(call.security, request.env)
            env = request.env(user=uid, context={"lang": "en_US"})
            with env.cr.savepoint():
                if nonce and not wsse.remember_nonce(env, uid, *nonce):
                    raise wsse.SecurityFault(
                        "FailedAuthentication",
                        "Not authorised: this UsernameToken nonce was already used.",
                    )
                answer = self._run(OPERATIONS[call.operation][1], env, call.args)
        except BankApiError as exc:
            return self._fault(SoapFault.from_bank_error(exc), version)
        except wsse.SecurityFault as exc:
            return self._fault(SoapFault.from_security(exc), version)
        except SoapFault as exc:
            return self._fault(exc, version)
        return request.make_response(
            render_response(call.operation, answer, version),
            headers=[("Content-Type", version.content_type)],
        )

    def _run(self, call, env, args):
        """Run the operation; any refusal becomes a BankApiError (raised inside the
        savepoint, so it is rolled back). Concurrency errors go up for Odoo to retry."""
        try:
            return call(env, args)
        except BankApiError:
            raise
        except AccessError as exc:
            _logger.info("SOAP access refused: %s", exc)
            raise BankApiError(bank_api.NOT_AUTHORISED, "Not authorised.") from exc
        except UserError as exc:
            raise BankApiError(bank_api.INVALID_REQUEST, exc.args[0]) from exc
        except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY:
            raise
        except psycopg2.errors.UniqueViolation as exc:
            raise BankApiError("DUPLICATE_REFERENCE", "The reference is being used.") from exc
        except Exception as exc:
            _logger.exception("SOAP operation failed")
            raise BankApiError(bank_api.INTERNAL_ERROR, "Internal error.") from exc

    def _fault(self, fault, version):
        """The fault's answer: SOAP 1.1 faults with HTTP 500; SOAP 1.2 ones with 400 for
        the sender's fault, else 500 (SOAP 1.2 part 2 §7.5.1.2); a fault that names its
        status (415 for a wrong media type) with that one."""
        answer_in = fault.answer_in or version
        status = fault.status or (400 if answer_in is SOAP12 and fault.kind == "Client" else 500)
        return request.make_response(
            render_fault(fault, answer_in),
            headers=[("Content-Type", answer_in.content_type)],
            status=status,
        )
