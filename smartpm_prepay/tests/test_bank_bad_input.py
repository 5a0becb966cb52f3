"""Bad numbers and bad arguments on both bank protocols: a clear INVALID_REQUEST, never a
traceback or a server path, and nothing created (purchases, invoices, jobs)."""

import io
import xmlrpc.client

import requests
from lxml import etree

from odoo.tests import tagged

from ..controllers import soap
from ..services import bank_api, vending
from .common_bank import BankChannelCase

TNS = "urn:smartpm-prepay:vending:1"
BANK_TIME = "2026-11-26T09:30:00Z"
# what a bank may type where an amount goes, over SOAP (text) ...
BAD_TEXT_AMOUNTS = (
    "inf",
    "-inf",
    "Infinity",
    "nan",
    "NaN",
    "sNaN",
    "1e400",
    "1" + "0" * 400,
    "-0",
    "0",
    "-5",
    "1e-999",
    "ten",
    "10,5",
    "0x10",
    "1e12",
    "9" * 70,
)
# ... and over XML-RPC (typed values xmlrpc.client can send)
BAD_RPC_AMOUNTS = (
    float("inf"),
    float("-inf"),
    float("nan"),
    -0.0,
    0,
    -5.0,
    "1e400",
    "nan",
    "abc",
    True,
    [],
    {},
    [10.0],
    {"amount": 10.0},
)
# XML-RPC values xmlrpc.client refuses to send, written by hand
RAW_RPC_AMOUNTS = (
    f"<int>{10**400}</int>",
    f"<int>-{10**400}</int>",
    "<double>1e400</double>",
    "<double>-1e400</double>",
    "<double>nan</double>",
    f"<i8>{10**400}</i8>",
)


class BadInputCase(BankChannelCase):
    def _counts(self):
        return (
            self.env["smartpm.credit.purchase"].search_count([]),
            self.env["account.move"].search_count([]),
            self.env["smartpm.meter.job"].search_count([]),
        )

    def assertNoTraceback(self, text):
        for leak in ("Traceback", 'File "', ".py", "/odoo/", "/work/", "site-packages"):
            self.assertNotIn(leak, text)


@tagged("post_install", "-at_install")
class TestSoapBadInput(BadInputCase):
    def _envelope(self, operation, **fields):
        parts = "".join(f"<tns:{k}>{v}</tns:{k}>" for k, v in fields.items())
        return (
            f'<soap:Envelope xmlns:soap="{soap.SOAP_ENV}" xmlns:tns="{TNS}">'
            f'<soap:Header><wsse:Security xmlns:wsse="{soap.WSSE}"><wsse:UsernameToken>'
            f"<wsse:Username>{self.bank_user.login}</wsse:Username>"
            f"<wsse:Password>{self.api_key}</wsse:Password>"
            "</wsse:UsernameToken></wsse:Security></soap:Header>"
            f"<soap:Body><tns:{operation}>{parts}</tns:{operation}></soap:Body></soap:Envelope>"
        ).encode()

    def _post(self, body, **kwargs):
        return requests.post(
            f"{self.base_url()}/smartpm/soap/vending",
            data=body,
            headers={"Content-Type": "text/xml; charset=utf-8"},
            timeout=30,
            **kwargs,
        )

    def assertSoapFault(self, response, code):
        self.assertEqual(response.status_code, 500, response.text[:500])
        self.assertNoTraceback(response.text)
        root = etree.fromstring(response.content)
        self.assertEqual(root.findtext(f".//{{{TNS}}}code"), code, response.text[:500])
        return root.findtext(f".//{{{TNS}}}message")

    def test_every_bad_amount_is_an_invalid_request_and_leaves_nothing(self):
        before = self._counts()
        for i, amount in enumerate(BAD_TEXT_AMOUNTS):
            with self.subTest(amount=amount[:20]):
                response = self._post(
                    self._envelope(
                        "Purchase",
                        meterNumber="BNK-001",
                        amount=amount,
                        bankReference=f"BAD-{i}",
                        bankTime=BANK_TIME,
                    )
                )
                message = self.assertSoapFault(response, "INVALID_REQUEST")
                self.assertIn("amount", message.lower())
        self.assertEqual(self._counts(), before)
        self.assertFalse(self._purchases())

    def test_a_good_amount_still_sells(self):
        response = self._post(
            self._envelope(
                "Purchase",
                meterNumber="BNK-001",
                amount="10.00",
                bankReference="GOOD-1",
                bankTime=BANK_TIME,
            )
        )
        self.assertEqual(response.status_code, 200, response.text[:500])
        self.assertEqual(len(self._purchases()), 1)

    def test_huge_numbers_as_meter_number_or_reference_are_invalid_requests(self):
        before = self._counts()
        for operation, fields in (
            ("QueryCustomer", {"meterNumber": "9" * 5000}),
            ("QueryPurchase", {"bankReference": "9" * 5000}),
            ("ReversePurchase", {"bankReference": "1e400"}),
        ):
            with self.subTest(operation=operation):
                response = self._post(self._envelope(operation, **fields))
                code = "UNKNOWN_PURCHASE" if fields.get("bankReference") == "1e400" else None
                self.assertSoapFault(response, code or "INVALID_REQUEST")
        self.assertEqual(self._counts(), before)

    def test_chunked_body_over_the_limit_is_refused(self):
        # built before sending: the generator runs while the server holds the test cursor
        start = self._envelope("QueryCustomer", meterNumber="BNK-001")[:-30]

        def chunks():
            # a well-formed start, then far more than the limit, sent chunked (no length)
            yield start
            for _i in range(soap.MAX_BODY // 1024 + 8):
                yield b"<!--" + b"x" * 1017 + b"-->"

        response = self._post(chunks())
        message = self.assertSoapFault(response, "INVALID_REQUEST")
        self.assertIn("Oversized", message)

    def test_chunked_body_under_the_limit_is_served(self):
        body = self._envelope("QueryCustomer", meterNumber="BNK-001")
        response = self._post(iter([body[:100], body[100:]]))
        self.assertEqual(response.status_code, 200, response.text[:500])
        self.assertIn(b"Nkechi Bank-Test", response.content)


class CountingStream(io.RawIOBase):
    """An endless body that counts what is read of it."""

    def __init__(self):
        self.read_bytes = 0

    # an io stream's read(), not an Odoo model's: nothing to call super() for
    def read(self, size=-1):  # pylint: disable=method-required-super
        assert size is not None and size > 0, "read_body must never read without a bound"
        self.read_bytes += size
        return b"a" * size


@tagged("post_install", "-at_install")
class TestReadBody(BadInputCase):
    def test_endless_body_is_cut_after_the_limit(self):
        stream = CountingStream()
        with self.assertRaises(soap.BodyTooLarge):
            soap.read_body(stream, limit=100_000, chunk=8192)
        self.assertLessEqual(stream.read_bytes, 100_001)

    def test_body_at_the_limit_is_returned_whole(self):
        data = b"b" * 5000
        self.assertEqual(soap.read_body(io.BytesIO(data), limit=5000, chunk=64), data)
        with self.assertRaises(soap.BodyTooLarge):
            soap.read_body(io.BytesIO(data + b"!"), limit=5000, chunk=64)


@tagged("post_install", "-at_install")
class TestXmlrpcBadInput(BadInputCase):
    def _call(self, method, *args):
        proxy = xmlrpc.client.ServerProxy(f"{self.base_url()}/xmlrpc/2/object")
        return proxy.execute_kw(
            self.env.cr.dbname,
            self.bank_user.id,
            self.api_key,
            "smartpm.bank.api",
            method,
            list(args),
        )

    def _raw_call(self, method, params_xml):
        """execute_kw with hand-written parameters: values xmlrpc.client will not send."""
        head = "".join(
            xmlrpc.client.dumps(
                (self.env.cr.dbname, self.bank_user.id, self.api_key, "smartpm.bank.api", method),
            )
            .split("<params>\n", 1)[1]
            .rsplit("</params>", 1)[0]
        )
        body = (
            "<?xml version='1.0'?><methodCall><methodName>execute_kw</methodName><params>"
            f"{head}<param><value><array><data>{params_xml}</data></array></value></param>"
            "</params></methodCall>"
        )
        response = requests.post(
            f"{self.base_url()}/xmlrpc/2/object",
            data=body.encode(),
            headers={"Content-Type": "text/xml"},
            timeout=30,
        )
        self.assertEqual(response.status_code, 200)
        try:
            xmlrpc.client.loads(response.content)
        except xmlrpc.client.Fault as fault:
            return fault
        self.fail(f"{method} answered instead of refusing: {response.text[:300]}")

    def assertFault(self, code, method, *args):
        with self.assertRaises(xmlrpc.client.Fault) as caught:
            self._call(method, *args)
        self.assertIn(f"{code}: ", caught.exception.faultString)
        self.assertNoTraceback(caught.exception.faultString)
        return caught.exception.faultString

    def test_every_bad_amount_is_an_invalid_request_and_leaves_nothing(self):
        before = self._counts()
        for i, amount in enumerate(BAD_RPC_AMOUNTS):
            with self.subTest(amount=amount):
                self.assertFault(
                    "INVALID_REQUEST", "purchase", "BNK-001", amount, False, f"XB-{i}", BANK_TIME
                )
        self.assertEqual(self._counts(), before)

    def test_numbers_xmlrpc_client_cannot_send_are_refused_too(self):
        before = self._counts()
        for i, amount in enumerate(RAW_RPC_AMOUNTS):
            with self.subTest(amount=amount[:30]):
                fault = self._raw_call(
                    "purchase",
                    "<value><string>BNK-001</string></value>"
                    f"<value>{amount}</value>"
                    "<value><boolean>0</boolean></value>"
                    f"<value><string>XR-RAW-{i}</string></value>"
                    f"<value><string>{BANK_TIME}</string></value>",
                )
                self.assertIn("INVALID_REQUEST: ", fault.faultString)
                self.assertNoTraceback(fault.faultString)
        self.assertEqual(self._counts(), before)

    def test_every_method_refuses_bad_arguments_without_a_traceback(self):
        before = self._counts()
        huge = f"<value><int>{10**400}</int></value>"
        for method in ("query_customer", "query_purchase", "reverse_purchase"):
            for params in (huge, "<value><double>inf</double></value>", "", huge + huge):
                with self.subTest(method=method, params=params[:30]):
                    fault = self._raw_call(method, params)
                    self.assertIn("INVALID_REQUEST: ", fault.faultString)
                    self.assertNoTraceback(fault.faultString)
            for bad in ([], {}, True, 1.5, "x" * 5000):
                with self.subTest(method=method, bad=str(bad)[:20]):
                    self.assertFault("INVALID_REQUEST", method, bad)
        self.assertFault("INVALID_REQUEST", "purchase", "BNK-001")  # arguments missing
        with self.assertRaises(xmlrpc.client.Fault) as caught:
            xmlrpc.client.ServerProxy(f"{self.base_url()}/xmlrpc/2/object").execute_kw(
                self.env.cr.dbname,
                self.bank_user.id,
                self.api_key,
                "smartpm.bank.api",
                "purchase",
                [],
                {"meter_number": "BNK-001", "no_such_argument": 1},
            )
        self.assertIn("INVALID_REQUEST: ", caught.exception.faultString)
        self.assertEqual(self._counts(), before)

    def test_a_good_purchase_still_sells(self):
        receipt = self._call("purchase", "BNK-001", 10.0, False, "XR-OK", BANK_TIME)
        self.assertEqual(receipt["reference"], self._purchases().name)


@tagged("post_install", "-at_install")
class TestVendingRefusesNonFiniteAmounts(BadInputCase):
    def test_vend_refuses_what_no_channel_should_let_through(self):
        before = self._counts()
        for amount in (float("inf"), float("nan"), 10**400, -(10**400)):
            with (
                self.subTest(amount=str(amount)[:10]),
                self.assertRaises(vending.VendingError) as err,
            ):
                vending.vend(self.env, self.meter, amount, "backoffice", f"NF-{str(amount)[:8]}")
            self.assertEqual(err.exception.code, "invalid_request")
        self.assertEqual(self._counts(), before)

    def test_parse_amount_compares_huge_values_exactly(self):
        for value in (10**400, "1" + "0" * 30, 1e13):
            with self.assertRaises(bank_api.BankApiError) as err:
                bank_api.parse_amount(self.env, value)
            self.assertEqual(err.exception.code, "INVALID_REQUEST")
        self.assertEqual(bank_api.parse_amount(self.env, "10.50"), 10.5)
        self.assertEqual(bank_api.parse_amount(self.env, 7), 7.0)
