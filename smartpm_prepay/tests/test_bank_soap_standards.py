"""The bank SOAP service as bank stacks expect it: SOAP 1.1 and 1.2 faults exactly as the
specifications name them (VersionMismatch, MustUnderstand), a SOAP 1.2 binding, the
WS-Security Timestamp and PasswordDigest (each nonce once), the WSDL's address from the
settings and its schema compiling on its own. Every refusal leaves nothing behind."""

import base64
import hashlib
import os
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import requests
import zeep
from lxml import etree
from zeep.exceptions import Fault
from zeep.wsse import utils as wsse_utils
from zeep.wsse.username import UsernameToken

from odoo.exceptions import ValidationError
from odoo.tests import tagged

from ..controllers import soap
from ..services import wsse
from .common_bank import BankChannelCase

TNS = "urn:smartpm-prepay:vending:1"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
PROFILE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
XSD = "http://www.w3.org/2001/XMLSchema"
BANK_TIME = "2026-11-26T09:30:00Z"
SECRET = "shared-secret-of-test-bank-0123456789"


def _zulu(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _now():
    return datetime.now(timezone.utc)


def _digest(nonce, created, secret):
    # the UsernameToken profile 1.0, §3.1: Base64 ( SHA-1 ( nonce + created + password ) )
    return base64.b64encode(hashlib.sha1(nonce + created.encode() + secret.encode()).digest())


class StandardsCase(BankChannelCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.bank.smartpm_soap_digest_secret = SECRET

    def setUp(self):
        super().setUp()
        # each test starts with no failed logins counted (they live in the registry)
        getattr(self.registry, "_smartpm_bank_login_failures", {}).clear()

    # ------------------------------------------------------------ hand-written envelopes
    def _text_token(self, login=None, key=None):
        return (
            f"<wsse:UsernameToken><wsse:Username>{login or self.bank_user.login}</wsse:Username>"
            f'<wsse:Password Type="{PROFILE}#PasswordText">{key or self.api_key}</wsse:Password>'
            "</wsse:UsernameToken>"
        )

    def _digest_token(self, login=None, secret=SECRET, nonce=None, created=None, digest=None):
        nonce = nonce or os.urandom(16)
        created = created or _zulu(_now())
        digest = digest or _digest(nonce, created, secret).decode()
        return (
            f"<wsse:UsernameToken><wsse:Username>{login or self.bank_user.login}</wsse:Username>"
            f'<wsse:Password Type="{PROFILE}#PasswordDigest">{digest}</wsse:Password>'
            f"<wsse:Nonce>{base64.b64encode(nonce).decode()}</wsse:Nonce>"
            f"<wsu:Created>{created}</wsu:Created></wsse:UsernameToken>"
        )

    @staticmethod
    def _timestamp(created=None, expires=None):
        parts = f"<wsu:Created>{created}</wsu:Created>" if created else ""
        parts += f"<wsu:Expires>{expires}</wsu:Expires>" if expires else ""
        return f"<wsu:Timestamp>{parts}</wsu:Timestamp>"

    def _envelope(
        self, operation="Purchase", token=None, ns=SOAP11, security_attrs="", extra="", **fields
    ):
        if operation == "Purchase" and not fields:
            fields = {
                "meterNumber": "BNK-001",
                "amount": "10.00",
                "bankReference": "STD-1",
                "bankTime": BANK_TIME,
            }
        elif not fields:
            fields = {"meterNumber": "BNK-001"}
        parts = "".join(f"<tns:{k}>{v}</tns:{k}>" for k, v in fields.items())
        token = self._text_token() if token is None else token
        return (
            f'<s:Envelope xmlns:s="{ns}" xmlns:tns="{TNS}" xmlns:wsse="{WSSE}" '
            f'xmlns:wsu="{WSU}"><s:Header>{extra}'
            f"<wsse:Security{security_attrs}>{token}</wsse:Security></s:Header>"
            f"<s:Body><tns:{operation}>{parts}</tns:{operation}></s:Body></s:Envelope>"
        ).encode()

    def _set_param(self, key, value):
        self.env["ir.config_parameter"].set_param(key, value)
        self.env.flush_all()  # the request runs in another transaction of the test cursor

    def _post(self, body, route=soap.ROUTE, content_type="text/xml; charset=utf-8"):
        return requests.post(
            f"{self.base_url()}{route}",
            data=body,
            headers={"Content-Type": content_type},
            timeout=30,
        )

    def _post12(self, body):
        return self._post(body, soap.ROUTE12, "application/soap+xml; charset=utf-8")

    def _counts(self):
        self.env.invalidate_all()
        return tuple(
            self.env[model].search_count([])
            for model in (
                "smartpm.credit.purchase",
                "account.move",
                "smartpm.meter.job",
                "smartpm.soap.nonce",
            )
        )

    def assertFault11(self, response, faultcode, detail_code=None):
        """A SOAP 1.1 fault whose faultcode is the QName ``faultcode`` (namespace, name);
        answers the faultstring."""
        self.assertEqual(response.status_code, 500, response.text[:800])
        self.assertTrue(response.headers["Content-Type"].startswith("text/xml"))
        root = etree.fromstring(response.content)
        self.assertEqual(root.tag, f"{{{SOAP11}}}Envelope")
        fault = root.find(f"{{{SOAP11}}}Body/{{{SOAP11}}}Fault")
        self.assertIsNotNone(fault, response.text[:800])
        code = fault.find("faultcode")
        prefix, _sep, name = code.text.partition(":")
        self.assertEqual((code.nsmap.get(prefix), name), faultcode, code.text)
        self.assertEqual(fault.findtext(f"detail/{{{TNS}}}VendingFault/{{{TNS}}}code"), detail_code)
        return fault.findtext("faultstring")

    def assertFault12(self, response, status, code, subcode=None, detail_code=None):
        """A SOAP 1.2 fault (Code/Value, Subcode/Value as QNames); answers (Reason, root)."""
        self.assertEqual(response.status_code, status, response.text[:800])
        self.assertTrue(response.headers["Content-Type"].startswith("application/soap+xml"))
        root = etree.fromstring(response.content)
        self.assertEqual(root.tag, f"{{{SOAP12}}}Envelope")
        fault = root.find(f"{{{SOAP12}}}Body/{{{SOAP12}}}Fault")
        self.assertIsNotNone(fault, response.text[:800])

        def qname(element):
            prefix, _sep, name = element.text.partition(":")
            return (element.nsmap.get(prefix), name)

        value = fault.find(f"{{{SOAP12}}}Code/{{{SOAP12}}}Value")
        self.assertEqual(qname(value), code)
        sub = fault.find(f"{{{SOAP12}}}Code/{{{SOAP12}}}Subcode/{{{SOAP12}}}Value")
        self.assertEqual(qname(sub) if sub is not None else None, subcode)
        self.assertEqual(
            fault.findtext(f"{{{SOAP12}}}Detail/{{{TNS}}}VendingFault/{{{TNS}}}code"),
            detail_code,
        )
        reason = fault.find(f"{{{SOAP12}}}Reason/{{{SOAP12}}}Text")
        self.assertEqual(reason.get("{http://www.w3.org/XML/1998/namespace}lang"), "en")
        return reason.text, root

    def assertSold(self, response, reference="STD-1"):
        self.assertEqual(response.status_code, 200, response.text[:800])
        self.assertEqual(
            self._purchases().filtered(lambda p: p.bank_reference == reference).bank_reference,
            reference,
        )


@tagged("post_install", "-at_install")
class TestSoapHeaders(StandardsCase):
    def test_unknown_mandatory_header_is_a_must_understand_fault_and_sells_nothing(self):
        before = self._counts()
        body = self._envelope(
            extra='<r:Routing xmlns:r="urn:bank:routing" s:mustUnderstand="1">x</r:Routing>'
        )
        message = self.assertFault11(self._post(body), (SOAP11, "MustUnderstand"))
        self.assertIn("{urn:bank:routing}Routing", message)
        self.assertEqual(self._counts(), before)

    def test_must_understand_is_checked_before_the_credentials(self):
        body = self._envelope(
            token=self._text_token(key="not-the-key"),
            extra='<r:Routing xmlns:r="urn:bank:routing" s:mustUnderstand="1"/>',
        )
        self.assertFault11(self._post(body), (SOAP11, "MustUnderstand"))

    def test_optional_header_and_header_for_another_actor_are_ignored(self):
        body = self._envelope(
            extra='<r:Routing xmlns:r="urn:bank:routing" s:mustUnderstand="0"/>'
            '<r:Trace xmlns:r="urn:bank:routing" s:mustUnderstand="1" '
            's:actor="urn:bank:gateway"/>'
        )
        self.assertSold(self._post(body))

    def test_security_header_marked_must_understand_is_understood(self):
        # as .NET and WSS4J stacks send it
        body = self._envelope(security_attrs=' s:mustUnderstand="1"')
        self.assertSold(self._post(body))

    def test_signature_in_a_mandatory_security_header_is_refused(self):
        before = self._counts()
        signature = '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"/>'
        body = self._envelope(
            token=self._text_token() + signature, security_attrs=' s:mustUnderstand="1"'
        )
        message = self.assertFault11(
            self._post(body), (WSSE, "UnsupportedSecurityToken"), "NOT_AUTHORISED"
        )
        self.assertIn("Signature", message)
        self.assertEqual(self._counts(), before)

    def test_soap12_envelope_at_the_soap11_address_is_a_version_mismatch(self):
        before = self._counts()
        response = self._post(self._envelope(ns=SOAP12))
        message = self.assertFault11(response, (SOAP11, "VersionMismatch"))
        self.assertIn(soap.ROUTE12, message)
        self.assertEqual(self._counts(), before)

    def test_unknown_envelope_namespace_is_a_version_mismatch_at_both_addresses(self):
        before = self._counts()
        body = self._envelope(ns="urn:not-soap")
        self.assertFault11(self._post(body), (SOAP11, "VersionMismatch"))
        self.assertFault12(self._post12(body), 500, (SOAP12, "VersionMismatch"))
        self.assertEqual(self._counts(), before)

    def test_soap11_envelope_at_the_soap12_address_is_a_soap11_mismatch_with_upgrade(self):
        before = self._counts()
        response = self._post12(self._envelope())
        self.assertFault11(response, (SOAP11, "VersionMismatch"))
        # SOAP 1.2 appendix A: the fault names the envelope this address serves
        supported = etree.fromstring(response.content).find(
            f"{{{SOAP11}}}Header/{{{SOAP12}}}Upgrade/{{{SOAP12}}}SupportedEnvelope"
        )
        prefix, _sep, name = supported.get("qname").partition(":")
        self.assertEqual((supported.nsmap[prefix], name), (SOAP12, "Envelope"))
        self.assertEqual(self._counts(), before)

    def test_soap12_must_understand_fault_lists_the_header_not_understood(self):
        before = self._counts()
        body = self._envelope(
            ns=SOAP12,
            extra='<r:Routing xmlns:r="urn:bank:routing" s:mustUnderstand="true"/>',
        )
        _reason, root = self.assertFault12(self._post12(body), 500, (SOAP12, "MustUnderstand"))
        block = root.find(f"{{{SOAP12}}}Header/{{{SOAP12}}}NotUnderstood")
        prefix, _sep, name = block.get("qname").partition(":")
        self.assertEqual((block.nsmap[prefix], name), ("urn:bank:routing", "Routing"))
        self.assertEqual(self._counts(), before)

    def test_soap12_header_for_role_none_is_ignored(self):
        body = self._envelope(
            ns=SOAP12,
            extra='<r:Routing xmlns:r="urn:bank:routing" s:mustUnderstand="true" '
            f's:role="{SOAP12}/role/none"/>',
        )
        response = self._post12(body)
        self.assertSold(response)
        self.assertTrue(response.headers["Content-Type"].startswith("application/soap+xml"))
        root = etree.fromstring(response.content)
        self.assertEqual(
            root.findtext(f"{{{SOAP12}}}Body/{{{TNS}}}PurchaseResponse/{{{TNS}}}bankReference"),
            "STD-1",
        )

    def test_soap12_refusal_is_a_sender_fault_with_the_vending_subcode(self):
        body = self._envelope(
            ns=SOAP12,
            meterNumber="NOPE-404",
            amount="10.00",
            bankReference="STD-1",
            bankTime=BANK_TIME,
        )
        reason, _root = self.assertFault12(
            self._post12(body), 400, (SOAP12, "Sender"), (TNS, "UNKNOWN_METER"), "UNKNOWN_METER"
        )
        self.assertIn("NOPE-404", reason)
        self.assertFalse(self._purchases())


@tagged("post_install", "-at_install")
class TestSoapTimestamp(StandardsCase):
    def _stamped(self, created=None, expires=None):
        return self._envelope(token=self._text_token() + self._timestamp(created, expires))

    def test_expired_timestamp_is_refused_and_sells_nothing(self):
        before = self._counts()
        now = _now()
        body = self._stamped(_zulu(now - timedelta(minutes=20)), _zulu(now - timedelta(minutes=15)))
        message = self.assertFault11(self._post(body), (WSSE, "MessageExpired"), "NOT_AUTHORISED")
        self.assertIn("expired at", message)
        self.assertIn("clock skew allowed 300 s", message)
        self.assertEqual(self._counts(), before)

    def test_timestamp_created_in_the_future_is_refused(self):
        before = self._counts()
        body = self._stamped(_zulu(_now() + timedelta(minutes=30)))
        message = self.assertFault11(self._post(body), (WSSE, "MessageExpired"), "NOT_AUTHORISED")
        self.assertIn("in the future", message)
        self.assertEqual(self._counts(), before)

    def test_malformed_timestamp_is_refused(self):
        before = self._counts()
        body = self._stamped("yesterday")
        message = self.assertFault11(self._post(body), (WSSE, "InvalidSecurity"), "NOT_AUTHORISED")
        self.assertIn("yesterday", message)
        self.assertEqual(self._counts(), before)

    def test_fresh_timestamp_sells(self):
        now = _now()
        self.assertSold(self._post(self._stamped(_zulu(now), _zulu(now + timedelta(minutes=5)))))

    def test_clock_skew_setting_decides_a_recently_expired_timestamp(self):
        now = _now()
        body = self._stamped(_zulu(now - timedelta(minutes=3)), _zulu(now - timedelta(minutes=2)))
        self._set_param(wsse.CLOCK_SKEW_PARAM, "10")
        message = self.assertFault11(self._post(body), (WSSE, "MessageExpired"), "NOT_AUTHORISED")
        self.assertIn("clock skew allowed 10 s", message)
        self.assertFalse(self._purchases())
        self._set_param(wsse.CLOCK_SKEW_PARAM, "300")
        self.assertSold(self._post(body))

    def test_timestamp_without_expiry_older_than_the_lifetime_is_refused(self):
        body = self._stamped(_zulu(_now() - timedelta(minutes=20)))
        self.assertFault11(self._post(body), (WSSE, "MessageExpired"), "NOT_AUTHORISED")
        self.assertFalse(self._purchases())

    def test_settings_page_writes_the_clock_skew(self):
        settings = self.env["res.config.settings"].create(
            {"smartpm_soap_clock_skew_seconds": 45, "smartpm_soap_message_lifetime_seconds": 90}
        )
        settings.execute()
        self.assertEqual(wsse.settings(self.env), (45, 90))


@tagged("post_install", "-at_install")
class TestSoapPasswordDigest(StandardsCase):
    def _zeep(self, port=None, secret=SECRET, login=None, **token):
        client = zeep.Client(
            f"{self.base_url()}{soap.ROUTE}?wsdl",
            wsse=UsernameToken(login or self.bank_user.login, secret, use_digest=True, **token),
        )
        return client.bind("VendingService", port) if port else client.service

    def _zeep_purchase(self, service, ref):
        return service.Purchase(
            meterNumber="BNK-001",
            amount=Decimal("10.00"),
            bankReference=ref,
            bankTime=datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc),
        )

    def test_zeep_digest_sells_over_soap_11(self):
        receipt = self._zeep_purchase(self._zeep(), "DIG-11")
        purchase = self._purchases()
        self.assertEqual(receipt.reference, purchase.name)
        self.assertEqual(purchase.channel, "bank_soap")
        self.assertEqual(purchase.bank_partner_id, self.bank)
        nonce = self.env["smartpm.soap.nonce"].search([("user_id", "=", self.bank_user.id)])
        self.assertEqual(len(nonce), 1)
        self.assertGreater(nonce.forget_at, nonce.created)

    def test_zeep_digest_sells_over_soap_12(self):
        service = self._zeep("VendingSoap12Port")
        self.assertEqual(service.QueryCustomer(meterNumber="BNK-001").meterState, "active")
        receipt = self._zeep_purchase(service, "DIG-12")
        self.assertEqual(receipt.reference, self._purchases().name)
        self.assertEqual(receipt.kwh, Decimal("40.000"))

    def test_zeep_soap12_fault_carries_code_subcode_and_detail(self):
        service = self._zeep("VendingSoap12Port")
        with self.assertRaises(Fault) as caught:
            service.QueryCustomer(meterNumber="NOPE-404")
        fault = caught.exception
        self.assertIn("NOPE-404", fault.message)
        self.assertEqual(
            [(q.namespace, q.localname) for q in fault.subcodes], [(TNS, "UNKNOWN_METER")]
        )
        self.assertEqual(
            fault.detail.findtext(f"{{{TNS}}}VendingFault/{{{TNS}}}code"), "UNKNOWN_METER"
        )

    def test_zeep_digest_with_a_timestamp_sells(self):
        now = _now()
        stamp = wsse_utils.WSU.Timestamp(
            wsse_utils.WSU.Created(_zulu(now)),
            wsse_utils.WSU.Expires(_zulu(now + timedelta(minutes=5))),
        )
        self._zeep_purchase(self._zeep(timestamp_token=stamp, zulu_timestamp=True), "DIG-TS")
        self.assertEqual(len(self._purchases()), 1)

    def test_wrong_secret_is_not_authorised_and_sells_nothing(self):
        before = self._counts()
        with self.assertRaises(Fault) as caught:
            self._zeep_purchase(self._zeep(secret="not-the-shared-secret"), "DIG-BAD")
        self.assertEqual(caught.exception.code, "wsse:FailedAuthentication")
        self.assertEqual(
            caught.exception.detail.findtext(f"{{{TNS}}}VendingFault/{{{TNS}}}code"),
            "NOT_AUTHORISED",
        )
        self.assertEqual(self._counts(), before)

    def test_hand_written_wrong_digest_is_refused(self):
        before = self._counts()
        body = self._envelope(token=self._digest_token(digest="AAAAAAAAAAAAAAAAAAAAAAAAAAA="))
        message = self.assertFault11(
            self._post(body), (WSSE, "FailedAuthentication"), "NOT_AUTHORISED"
        )
        self.assertEqual(message, "Not authorised.")
        self.assertEqual(self._counts(), before)

    def test_replayed_nonce_is_refused_even_with_another_body(self):
        token = self._digest_token()
        self.assertSold(self._post(self._envelope(token=token)))
        before = self._counts()
        replay = self._envelope(
            token=token,
            meterNumber="BNK-001",
            amount="500.00",
            bankReference="STD-REPLAY",
            bankTime=BANK_TIME,
        )
        message = self.assertFault11(
            self._post(replay), (WSSE, "FailedAuthentication"), "NOT_AUTHORISED"
        )
        self.assertIn("nonce was already used", message)
        self.assertEqual(self._counts(), before)
        self.assertEqual(self._purchases().mapped("bank_reference"), ["STD-1"])

    def test_digest_created_too_long_ago_is_refused(self):
        before = self._counts()
        created = _zulu(_now() - timedelta(hours=1))
        body = self._envelope(token=self._digest_token(created=created))
        message = self.assertFault11(self._post(body), (WSSE, "MessageExpired"), "NOT_AUTHORISED")
        self.assertIn(f"created at {created}", message)
        self.assertEqual(self._counts(), before)

    def test_digest_without_nonce_is_refused(self):
        token = re.sub(r"<wsse:Nonce>.*</wsse:Nonce>", "", self._digest_token())
        body = self._envelope(token=token)
        message = self.assertFault11(
            self._post(body), (WSSE, "InvalidSecurityToken"), "NOT_AUTHORISED"
        )
        self.assertIn("Nonce", message)
        self.assertFalse(self._purchases())

    def test_bank_without_a_secret_accepts_no_digest_but_its_api_key(self):
        login = self.other_bank_user.login
        for secret in (SECRET, self.other_api_key, ""):
            with self.subTest(secret=secret[:6]):
                body = self._envelope(token=self._digest_token(login=login, secret=secret))
                self.assertFault11(
                    self._post(body), (WSSE, "FailedAuthentication"), "NOT_AUTHORISED"
                )
        self.assertFalse(self._purchases())
        token = self._text_token(login, self.other_api_key)
        self.assertSold(self._post(self._envelope(token=token)))

    def test_bank_with_a_secret_still_accepts_its_api_key(self):
        self.assertSold(self._post(self._envelope()))

    def test_another_banks_secret_does_not_authenticate(self):
        self.other_bank.smartpm_soap_digest_secret = "the-other-banks-own-secret-42"
        body = self._envelope(token=self._digest_token(self.other_bank_user.login, secret=SECRET))
        self.assertFault11(self._post(body), (WSSE, "FailedAuthentication"), "NOT_AUTHORISED")
        self.assertFalse(self._purchases())

    def test_user_outside_the_bank_group_gets_nothing_from_the_banks_secret(self):
        self.clerk.partner_id.parent_id = self.bank
        self.env.flush_all()
        body = self._envelope(token=self._digest_token(self.clerk.login))
        self.assertFault11(self._post(body), (WSSE, "FailedAuthentication"), "NOT_AUTHORISED")
        self.assertFalse(self._purchases())

    def test_expired_nonces_are_forgotten(self):
        self._zeep_purchase(self._zeep(), "DIG-GC")
        Nonce = self.env["smartpm.soap.nonce"]
        kept = Nonce.search([])
        self.assertTrue(kept)
        self.env.cr.execute(
            "UPDATE smartpm_soap_nonce SET forget_at = now() - interval '1 hour' WHERE id = %s",
            [kept[0].id],
        )
        Nonce._gc_expired_nonces()
        self.env.invalidate_all()
        self.assertEqual(Nonce.search([]), kept - kept[0])


@tagged("post_install", "-at_install")
class TestBankDigestSecretSetting(StandardsCase):
    def test_short_secret_is_refused_naming_the_bank(self):
        with self.assertRaises(ValidationError) as caught:
            self.other_bank.smartpm_soap_digest_secret = "short"
        self.assertIn("Other Bank", str(caught.exception))

    def test_generate_gives_a_new_long_secret(self):
        self.bank.action_smartpm_generate_digest_secret()
        secret = self.bank.smartpm_soap_digest_secret
        self.assertNotEqual(secret, SECRET)
        self.assertGreaterEqual(len(secret), 32)

    def test_bank_user_cannot_read_its_banks_secret(self):
        import xmlrpc.client

        proxy = xmlrpc.client.ServerProxy(f"{self.base_url()}/xmlrpc/2/object")
        args = (self.env.cr.dbname, self.bank_user.id, self.api_key, "res.partner")
        with self.assertRaises(xmlrpc.client.Fault):
            proxy.execute_kw(*args, "read", [[self.bank.id], ["smartpm_soap_digest_secret"]])
        self.assertEqual(proxy.execute_kw(*args, "read", [[self.bank.id], ["name"]])[0]["name"],
                         "Test Bank")  # fmt: skip
        self.assertNotIn("smartpm_soap_digest_secret", proxy.execute_kw(*args, "fields_get", []))


@tagged("post_install", "-at_install")
class TestSoapWsdl(StandardsCase):
    def _wsdl(self, headers=None):
        response = requests.get(
            f"{self.base_url()}{soap.ROUTE}?wsdl", headers=headers or {}, timeout=10
        )
        self.assertEqual(response.status_code, 200)
        return response

    def _locations(self, response):
        root = etree.fromstring(response.content)
        return [
            port.find("*").get("location")
            for port in root.iter("{http://schemas.xmlsoap.org/wsdl/}port")
        ]

    def test_wsdl_address_is_the_configured_one_whatever_the_host_header(self):
        self._set_param("smartpm_prepay.soap_base_url", "https://vending.example.com/")
        response = self._wsdl({"Host": "attacker.example"})
        self.assertEqual(
            self._locations(response),
            [
                "https://vending.example.com/smartpm/soap/vending",
                "https://vending.example.com/smartpm/soap12/vending",
            ],
        )
        self.assertNotIn(b"attacker", response.content)

    def test_wsdl_address_falls_back_to_the_web_base_url(self):
        self._set_param("web.base.url", "https://odoo.example.org")
        self.assertEqual(
            self._locations(self._wsdl({"Host": "attacker.example"})),
            [
                "https://odoo.example.org/smartpm/soap/vending",
                "https://odoo.example.org/smartpm/soap12/vending",
            ],
        )

    def test_wsdl_has_a_soap12_binding_and_port(self):
        root = etree.fromstring(self._wsdl().content)
        soap12 = "http://schemas.xmlsoap.org/wsdl/soap12/"
        binding = root.find(
            "{http://schemas.xmlsoap.org/wsdl/}binding[@name='VendingSoap12Binding']"
        )
        self.assertIsNotNone(binding.find(f"{{{soap12}}}binding"))
        self.assertEqual(len(binding.findall(f".//{{{soap12}}}body")), 8)
        port = root.find(".//{http://schemas.xmlsoap.org/wsdl/}port[@name='VendingSoap12Port']")
        self.assertIsNotNone(port.find(f"{{{soap12}}}address"))

    def test_schema_cut_out_of_the_wsdl_compiles_alone_and_validates_the_answers(self):
        text = self._wsdl().text
        # the schema's text alone, as a tool copies it: no namespace of wsdl:definitions
        match = re.search(r"<xsd:schema\b.*?</xsd:schema>", text, re.S)
        schema = etree.XMLSchema(etree.fromstring(match.group(0).encode()))
        receipt = self._post(self._envelope())
        self.assertEqual(receipt.status_code, 200)
        answer = etree.fromstring(receipt.content).find(f"{{{SOAP11}}}Body")[0]
        self.assertTrue(schema.validate(answer), schema.error_log)
        request = etree.fromstring(self._envelope()).find(f"{{{SOAP11}}}Body")[0]
        self.assertTrue(schema.validate(request), schema.error_log)
        refusal = self._post(self._envelope(meterNumber="NOPE-404", amount="1",
                                            bankReference="STD-2", bankTime=BANK_TIME))  # fmt: skip
        detail = etree.fromstring(refusal.content).find(f".//{{{TNS}}}VendingFault")
        self.assertTrue(schema.validate(detail), schema.error_log)
        self.assertEqual(match.group(0).count(f'xmlns:xsd="{XSD}"'), 1)
