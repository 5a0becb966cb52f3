"""SOAP 1.1 endpoint of the bank channel, written with lxml (Odoo has no SOAP server).

GET  /smartpm/soap/vending?wsdl  the WSDL (document/literal), public: it holds no data.
POST /smartpm/soap/vending       one operation per envelope, WS-Security UsernameToken.

The operation runs as the authenticated Bank API user inside a savepoint: a fault rolls it
back, so a refused request leaves nothing behind.
"""

import functools
import logging
from pathlib import Path

import psycopg2.errors
from lxml import etree

from odoo import http
from odoo.exceptions import AccessDenied, AccessError, UserError
from odoo.http import request
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY

from ..services import bank_api
from ..services.bank_api import BankApiError

_logger = logging.getLogger(__name__)

ROUTE = "/smartpm/soap/vending"
TNS = "urn:smartpm-prepay:vending:1"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
PASSWORD_TEXT = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
    "#PasswordText"
)
MAX_BODY = 64 * 1024
READ_CHUNK = 8192
# Where the body read once is kept for Odoo's retries of the same request (a serialization
# failure makes Odoo run the controller again, on an input stream already consumed).
BODY_KEY = "smartpm.soap.body"
WSDL_TEMPLATE = (Path(__file__).parent / "vending.wsdl").read_text(encoding="utf-8")

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
)
OPTIONAL_EMPTY = {"bankTime", "newBalanceKwh"}
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
TOU_FIELDS = ("creditMoney", "priceBands", "priceDescription")


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


def _envelope(body_child):
    env = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap": SOAP_ENV, "tns": TNS})
    body = etree.SubElement(env, f"{{{SOAP_ENV}}}Body")
    body.append(body_child)
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


def _text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render_response(operation, answer):
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
        if name in TOU_FIELDS and name not in answer:
            continue
        etree.SubElement(element, f"{{{TNS}}}{name}").text = _text(value)
    return _envelope(element)


def render_fault(code, message, faultcode="soap:Client"):
    fault = etree.Element(f"{{{SOAP_ENV}}}Fault", nsmap={"soap": SOAP_ENV})
    etree.SubElement(fault, "faultcode").text = faultcode
    etree.SubElement(fault, "faultstring").text = message
    detail = etree.SubElement(
        etree.SubElement(fault, "detail"), f"{{{TNS}}}VendingFault", nsmap={"tns": TNS}
    )
    etree.SubElement(detail, f"{{{TNS}}}code").text = code
    etree.SubElement(detail, f"{{{TNS}}}message").text = message
    return _envelope(fault)


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


def parse_envelope(data):
    """(operation, args, (login, password)) from a SOAP 1.1 request; BankApiError if bad."""
    if not data or len(data) > MAX_BODY:
        raise BankApiError(bank_api.INVALID_REQUEST, "Empty or oversized request.")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError:
        raise BankApiError(
            bank_api.INVALID_REQUEST, "The request is not well-formed XML."
        ) from None
    if root.tag == f"{{{SOAP12_ENV}}}Envelope":
        raise BankApiError(bank_api.INVALID_REQUEST, "Only SOAP 1.1 is served.")
    if root.tag != f"{{{SOAP_ENV}}}Envelope":
        raise BankApiError(bank_api.INVALID_REQUEST, "The request is not a SOAP envelope.")
    credentials = _parse_security(root.find(f"{{{SOAP_ENV}}}Header"))
    body = root.find(f"{{{SOAP_ENV}}}Body")
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
    return qname.localname, args, credentials


def _parse_security(header):
    """(login, password) of the UsernameToken, or None when there is none."""
    if header is None:
        return None
    token = header.find(f"{{{WSSE}}}Security/{{{WSSE}}}UsernameToken")
    if token is None:
        return None
    login = (token.findtext(f"{{{WSSE}}}Username") or "").strip()
    password_el = token.find(f"{{{WSSE}}}Password")
    if not login or password_el is None or not password_el.text:
        return None
    # A digest cannot be checked against a hashed API key: PasswordText over HTTPS only.
    if password_el.get("Type", PASSWORD_TEXT) != PASSWORD_TEXT:
        return None
    return login, password_el.text


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
    user = Users.search(Users._get_login_domain(login), order=Users._get_login_order(), limit=1)
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


def _input_stream():
    # Odoo's HTTPRequest does not expose werkzeug's ``stream`` (the body, de-chunked and
    # bounded by its Content-Length), only ``get_data``, which reads it all into memory.
    return request.httprequest._HTTPRequest__wrapped.stream


class SmartpmSoapController(http.Controller):
    # read/write: auth="none" routes default to a read-only cursor in Odoo 18
    @http.route(
        ROUTE,
        type="http",
        auth="none",
        methods=["GET", "POST"],
        csrf=False,
        readonly=False,
        save_session=False,
    )
    def soap_vending(self, **kwargs):
        if request.httprequest.method == "GET":
            location = request.httprequest.host_url.rstrip("/") + ROUTE
            wsdl = WSDL_TEMPLATE.replace("{{LOCATION}}", location)
            return request.make_response(
                wsdl, headers=[("Content-Type", "text/xml; charset=utf-8")]
            )
        if (request.httprequest.content_length or 0) > MAX_BODY:
            return self._fault(bank_api.INVALID_REQUEST, "Oversized request.")
        environ = request.httprequest.environ
        if BODY_KEY not in environ:  # first try of this request; a retry reuses the body
            try:
                environ[BODY_KEY] = read_body(_input_stream())
            except BodyTooLarge:
                environ[BODY_KEY] = None
        if environ[BODY_KEY] is None:
            return self._fault(bank_api.INVALID_REQUEST, "Oversized request.")
        return self._dispatch_soap(environ[BODY_KEY])

    def _dispatch_soap(self, data):
        try:
            operation, args, credentials = parse_envelope(data)
            uid = authenticate(credentials)
            if not uid:
                raise BankApiError(bank_api.NOT_AUTHORISED, "Not authorised.")
            env = request.env(user=uid, context={"lang": "en_US"})
            call = OPERATIONS[operation][1]
            with env.cr.savepoint():
                answer = self._run(call, env, args)
        except BankApiError as exc:
            return self._fault(exc.code, exc.detail)
        return request.make_response(
            render_response(operation, answer),
            headers=[("Content-Type", "text/xml; charset=utf-8")],
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

    def _fault(self, code, message):
        faultcode = "soap:Server" if code == bank_api.INTERNAL_ERROR else "soap:Client"
        return request.make_response(
            render_fault(code, message, faultcode),
            headers=[("Content-Type", "text/xml; charset=utf-8")],
            status=500,
        )
