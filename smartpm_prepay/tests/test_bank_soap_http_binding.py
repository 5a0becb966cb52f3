"""The HTTP bindings of the bank SOAP service as the specifications write them: each address
takes its own media type (SOAP 1.1 ``text/xml``, SOAP 1.2 ``application/soap+xml``), a wrong
one is answered with HTTP 415; SOAP 1.1's ``SOAPAction`` header and SOAP 1.2's ``action``
parameter, when present, must name the operation the body holds. Every refusal leaves
nothing behind. Hand-written envelopes and zeep."""

import requests
import zeep
from lxml import etree
from zeep import Plugin
from zeep.exceptions import Fault
from zeep.wsse.username import UsernameToken

from odoo.tests import tagged

from ..controllers import soap
from .test_bank_soap_standards import SOAP11, SOAP12, TNS, StandardsCase

PURCHASE_ACTION = f"{TNS}#Purchase"
QUERY_ACTION = f"{TNS}#QueryCustomer"


class _ActionRewriter(Plugin):
    """Sends zeep's request with another action, as a misconfigured bank stack would."""

    def __init__(self, action):
        self.action = action

    def egress(self, envelope, http_headers, operation, binding_options):
        # zeep sends a SOAPAction header on both bindings; SOAP 1.2 reads the media type's
        # action parameter only
        http_headers["SOAPAction"] = f'"{self.action}"'
        if http_headers["Content-Type"].startswith("application/soap+xml"):
            http_headers["Content-Type"] = (
                f'application/soap+xml; charset=utf-8; action="{self.action}"'
            )
        return envelope, http_headers


@tagged("post_install", "-at_install")
class TestSoapHttpBinding(StandardsCase):
    def _send(self, body, route=soap.ROUTE, headers=None):
        return requests.post(
            f"{self.base_url()}{route}", data=body, headers=headers or {}, timeout=30
        )

    def assertUnsupportedMedia(self, response, version_ns, expected_type):
        """HTTP 415 with the address's own fault (Client / Sender) naming the media type
        the address takes."""
        self.assertEqual(response.status_code, 415, response.text[:800])
        root = etree.fromstring(response.content)
        self.assertEqual(root.tag, f"{{{version_ns}}}Envelope")
        if version_ns == SOAP11:
            self.assertTrue(response.headers["Content-Type"].startswith("text/xml"))
            self.assertEqual(root.findtext(f".//{{{SOAP11}}}Fault/faultcode"), "soap:Client")
            message = root.findtext(f".//{{{SOAP11}}}Fault/faultstring")
        else:
            self.assertTrue(response.headers["Content-Type"].startswith("application/soap+xml"))
            self.assertEqual(
                root.findtext(f".//{{{SOAP12}}}Fault/{{{SOAP12}}}Code/{{{SOAP12}}}Value"),
                "env:Sender",
            )
            message = root.findtext(f".//{{{SOAP12}}}Fault/{{{SOAP12}}}Reason/{{{SOAP12}}}Text")
        self.assertIn(expected_type, message)
        return message

    # ------------------------------------------------------------ Content-Type
    def test_soap11_address_refuses_json_with_415(self):
        before = self._counts()
        response = self._send(self._envelope(), headers={"Content-Type": "application/json"})
        message = self.assertUnsupportedMedia(response, SOAP11, "text/xml")
        self.assertIn("application/json", message)
        self.assertEqual(self._counts(), before)

    def test_request_without_content_type_is_judged_by_its_envelope(self):
        # RFC 9110 §8.3: the recipient may examine the data; the envelope names its version
        session = requests.Session()
        request = requests.Request("POST", f"{self.base_url()}{soap.ROUTE}", data=self._envelope())
        prepared = session.prepare_request(request)
        self.assertNotIn("Content-Type", prepared.headers)
        self.assertSold(session.send(prepared, timeout=30))
        before = self._counts()
        response = self._send(self._envelope(ns=SOAP12, bankReference="STD-2"))
        self.assertFault11(response, (SOAP11, "VersionMismatch"))
        self.assertEqual(self._counts(), before)

    def test_soap11_envelope_sent_as_soap12_media_type_is_refused_with_415(self):
        before = self._counts()
        response = self._send(
            self._envelope(), headers={"Content-Type": "application/soap+xml; charset=utf-8"}
        )
        self.assertUnsupportedMedia(response, SOAP11, "text/xml")
        self.assertEqual(self._counts(), before)

    def test_soap12_envelope_sent_as_text_xml_is_refused_with_415(self):
        before = self._counts()
        response = self._send(
            self._envelope(ns=SOAP12),
            route=soap.ROUTE12,
            headers={"Content-Type": "text/xml; charset=utf-8"},
        )
        message = self.assertUnsupportedMedia(response, SOAP12, "application/soap+xml")
        self.assertIn("text/xml", message)
        self.assertEqual(self._counts(), before)

    def test_soap12_address_refuses_form_data_with_415(self):
        before = self._counts()
        response = self._send(
            b"meterNumber=BNK-001",
            route=soap.ROUTE12,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        self.assertUnsupportedMedia(response, SOAP12, "application/soap+xml")
        self.assertEqual(self._counts(), before)

    def test_soap12_envelope_at_the_soap11_address_stays_a_version_mismatch(self):
        # the other version's media type with its own envelope: the VersionMismatch fault of
        # the specifications, not a 415 (it tells the client where to go)
        before = self._counts()
        response = self._send(
            self._envelope(ns=SOAP12),
            headers={"Content-Type": "application/soap+xml; charset=utf-8"},
        )
        self.assertFault11(response, (SOAP11, "VersionMismatch"))
        self.assertEqual(self._counts(), before)

    def test_media_type_is_case_insensitive_and_charset_free(self):
        self.assertSold(self._send(self._envelope(), headers={"Content-Type": "Text/XML"}))

    # ------------------------------------------------------------ SOAPAction (1.1)
    def test_soap11_soapaction_of_the_operation_sells(self):
        response = self._send(
            self._envelope(),
            headers={
                "Content-Type": "text/xml; charset=utf-8",
                "SOAPAction": f'"{PURCHASE_ACTION}"',
            },
        )
        self.assertSold(response)

    def test_soap11_empty_soapaction_leaves_the_body_to_decide(self):
        response = self._send(
            self._envelope(), headers={"Content-Type": "text/xml", "SOAPAction": '""'}
        )
        self.assertSold(response)

    def test_soap11_soapaction_naming_another_operation_is_a_client_fault(self):
        before = self._counts()
        response = self._send(
            self._envelope(),
            headers={"Content-Type": "text/xml", "SOAPAction": f'"{QUERY_ACTION}"'},
        )
        message = self.assertFault11(response, (SOAP11, "Client"), "INVALID_REQUEST")
        self.assertIn("QueryCustomer", message)
        self.assertIn(PURCHASE_ACTION, message)
        self.assertEqual(self._counts(), before)

    def test_soap11_soapaction_of_no_operation_is_a_client_fault(self):
        before = self._counts()
        response = self._send(
            self._envelope(),
            headers={"Content-Type": "text/xml", "SOAPAction": '"urn:other-bank:Pay"'},
        )
        message = self.assertFault11(response, (SOAP11, "Client"), "INVALID_REQUEST")
        self.assertIn("urn:other-bank:Pay", message)
        self.assertEqual(self._counts(), before)

    # ------------------------------------------------------------ action parameter (1.2)
    def test_soap12_action_parameter_of_the_operation_sells(self):
        response = self._send(
            self._envelope(ns=SOAP12),
            route=soap.ROUTE12,
            headers={
                "Content-Type": f'application/soap+xml; charset=utf-8; action="{PURCHASE_ACTION}"'
            },
        )
        self.assertSold(response)

    def test_soap12_action_parameter_naming_another_operation_is_a_sender_fault(self):
        before = self._counts()
        response = self._send(
            self._envelope(ns=SOAP12),
            route=soap.ROUTE12,
            headers={"Content-Type": f'application/soap+xml; action="{QUERY_ACTION}"'},
        )
        reason, _root = self.assertFault12(
            response, 400, (SOAP12, "Sender"), (TNS, "INVALID_REQUEST"), "INVALID_REQUEST"
        )
        self.assertIn("QueryCustomer", reason)
        self.assertEqual(self._counts(), before)

    # ------------------------------------------------------------ zeep
    def _zeep(self, port=None, plugins=()):
        client = zeep.Client(
            f"{self.base_url()}{soap.ROUTE}?wsdl",
            wsse=UsernameToken(self.bank_user.login, self.api_key),
            plugins=list(plugins),
        )
        return client.bind("VendingService", port) if port else client.service

    def test_zeep_sends_the_wsdl_actions_and_is_served_on_both_bindings(self):
        self.assertEqual(self._zeep().QueryCustomer(meterNumber="BNK-001").meterState, "active")
        service12 = self._zeep("VendingSoap12Port")
        self.assertEqual(service12.QueryCustomer(meterNumber="BNK-001").meterState, "active")

    def test_zeep_with_another_operations_soapaction_gets_a_fault(self):
        before = self._counts()
        for port in (None, "VendingSoap12Port"):
            service = self._zeep(port, plugins=[_ActionRewriter(PURCHASE_ACTION)])
            with self.assertRaises(Fault) as caught:
                service.QueryCustomer(meterNumber="BNK-001")
            self.assertIn("Purchase", caught.exception.message)
        self.assertEqual(self._counts(), before)
