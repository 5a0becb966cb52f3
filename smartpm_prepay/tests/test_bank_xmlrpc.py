import xmlrpc.client

from odoo.tests import tagged

from ..services import bank_api
from .common import assert_payment_document
from .common_bank import BankChannelCase

BANK_TIME = "2026-11-26T09:30:00Z"


@tagged("post_install", "-at_install")
class TestBankXmlrpc(BankChannelCase):
    def _call(self, method, *args, user=None, key=None):
        user = user or self.bank_user
        proxy = xmlrpc.client.ServerProxy(f"{self.base_url()}/xmlrpc/2/object")
        return proxy.execute_kw(
            self.env.cr.dbname,
            user.id,
            key or self.api_key,
            "smartpm.bank.api",
            method,
            list(args),
        )

    def assertFaultCode(self, code, method, *args, **kwargs):
        with self.assertRaises(xmlrpc.client.Fault) as caught:
            self._call(method, *args, **kwargs)
        self.assertIn(f"{code}: ", caught.exception.faultString)

    def test_query_customer_answers_like_soap(self):
        answer = self._call("query_customer", "BNK-001")
        self.assertEqual(answer["tenantName"], "Nkechi Bank-Test")
        self.assertEqual(answer["meterState"], "active")
        self.assertIs(answer["sellable"], True)
        self.assertEqual(answer["maximumAmount"], "1000.00")

    def test_purchase_records_an_xmlrpc_bank_sale_with_paid_invoice(self):
        receipt = self._call("purchase", "BNK-001", 20.0, False, "XR-1", BANK_TIME)
        purchase = self._purchases()
        self.assertEqual(receipt["reference"], purchase.name)
        self.assertEqual(receipt["kwh"], "80.000")
        self.assertEqual(purchase.channel, "bank_xmlrpc")
        self.assertEqual(purchase.bank_partner_id, self.bank)
        self._post_bank_sales()
        self.assertIn(purchase.invoice_id.payment_state, ("paid", "in_payment"))
        assert_payment_document(self, purchase, self.journal)  # the bank's settlement journal

    def test_repeated_purchase_returns_the_first_receipt(self):
        first = self._call("purchase", "BNK-001", 20.0, False, "XR-1", BANK_TIME)
        again = self._call("purchase", "BNK-001", 20.0, False, "XR-1", BANK_TIME)
        self.assertEqual(first["reference"], again["reference"])
        self.assertEqual(len(self._purchases()), 1)

    def test_reference_used_over_soap_is_the_same_sale_over_xmlrpc(self):
        soap = bank_api.purchase(
            self.env(user=self.bank_user), "bank_soap", "BNK-001", 20.0, None, "XR-1", BANK_TIME
        )
        self.env.flush_all()
        again = self._call("purchase", "BNK-001", 20.0, False, "XR-1", BANK_TIME)
        self.assertEqual(again["reference"], soap["reference"])
        self.assertFaultCode(
            "DUPLICATE_REFERENCE", "purchase", "BNK-001", 25.0, False, "XR-1", BANK_TIME
        )
        self.assertEqual(len(self._purchases()), 1)
        self.assertEqual(self._call("query_purchase", "XR-1")["amount"], "20.00")

    def test_fault_carries_the_code_and_leaves_nothing(self):
        self.assertFaultCode(
            "AMOUNT_OUT_OF_RANGE", "purchase", "BNK-001", 0.5, False, "XR-2", BANK_TIME
        )
        self.assertFalse(self._purchases())

    def test_malformed_bank_time_is_an_invalid_request(self):
        self.assertFaultCode(
            "INVALID_REQUEST", "purchase", "BNK-001", 5.0, False, "XR-3", "yesterday"
        )
        self.assertFalse(self._purchases())

    def test_user_outside_the_bank_group_is_refused(self):
        self.assertFaultCode(
            "NOT_AUTHORISED", "query_customer", "BNK-001", user=self.clerk, key=self.clerk_key
        )

    def test_reverse_purchase_over_xmlrpc(self):
        self._call("purchase", "BNK-001", 20.0, False, "XR-4", BANK_TIME)
        receipt = self._call("reverse_purchase", "XR-4")
        self.assertEqual(receipt["state"], "reversed")

    def test_reverse_attempted_purchase_over_xmlrpc_waits_for_the_meter(self):
        self._call("purchase", "BNK-001", 20.0, False, "XR-5", BANK_TIME)
        purchase = self.env["smartpm.credit.purchase"].search([("bank_reference", "=", "XR-5")])
        self._claim_delivery(purchase)
        self.assertEqual(self._call("reverse_purchase", "XR-5")["state"], "pending_check")
        self.assertEqual(self._call("reverse_purchase", "XR-5")["state"], "pending_check")
        self._meter_answers(purchase, applied=True)
        self.assertFaultCode("NOT_REVERSIBLE", "reverse_purchase", "XR-5")
        self.assertEqual(self._call("query_purchase", "XR-5")["state"], "delivered")
