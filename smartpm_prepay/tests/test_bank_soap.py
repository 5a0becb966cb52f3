from datetime import datetime, timezone
from decimal import Decimal

import requests
import zeep
from lxml import etree
from zeep.exceptions import Fault
from zeep.wsse.username import UsernameToken

from odoo.tests import tagged

from .common import assert_payment_document
from .common_bank import BankChannelCase

TNS = "urn:smartpm-prepay:vending:1"
BANK_TIME = datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc)


@tagged("post_install", "-at_install")
class TestBankSoap(BankChannelCase):
    def _client(self, login=None, password=None, wsse=True):
        login = login or self.bank_user.login
        password = password or self.api_key
        return zeep.Client(
            f"{self.base_url()}/smartpm/soap/vending?wsdl",
            wsse=UsernameToken(login, password) if wsse else None,
        ).service

    def _purchase(self, service=None, ref="BANKREF-1", amount="10.00", meter="BNK-001", **kwargs):
        service = service or self._client()
        return service.Purchase(
            meterNumber=meter,
            amount=Decimal(amount),
            bankReference=ref,
            bankTime=BANK_TIME,
            **kwargs,
        )

    def _fault_code(self, fault):
        return fault.detail.find(f"{{{TNS}}}VendingFault/{{{TNS}}}code").text

    def assertFault(self, code, call, *args, **kwargs):
        with self.assertRaises(Fault) as caught:
            call(*args, **kwargs)
        self.assertEqual(self._fault_code(caught.exception), code, caught.exception.message)
        return caught.exception

    # ---------------------------------------------------------------- WSDL
    def test_wsdl_points_at_the_web_base_url_by_default(self):
        response = requests.get(f"{self.base_url()}/smartpm/soap/vending?wsdl", timeout=10)
        self.assertEqual(response.status_code, 200)
        location = (
            etree.fromstring(response.content)
            .find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address")
            .get("location")
        )
        self.assertEqual(location, f"{self.base_url()}/smartpm/soap/vending")

    # ---------------------------------------------------------------- operations
    def test_query_customer_answers_tenant_state_price_and_limits(self):
        answer = self._client().QueryCustomer(meterNumber="bnk-001")
        self.assertEqual(answer.tenantName, "Nkechi Bank-Test")
        self.assertEqual(answer.tenantNumber, self.tenant.tenant_number)
        self.assertEqual(answer.meterState, "active")
        self.assertTrue(answer.sellable)
        self.assertEqual(answer.tariffPrice, Decimal("0.2500"))
        self.assertEqual(
            (answer.minimumAmount, answer.maximumAmount), (Decimal("1.00"), Decimal("1000.00"))
        )
        self.assertEqual(answer.currency, self.currency.name)

    def test_purchase_answers_reference_kwh_and_state(self):
        receipt = self._purchase()
        purchase = self._purchases()
        self.assertEqual(len(purchase), 1)
        self.assertEqual(receipt.reference, purchase.name)
        self.assertEqual(receipt.kwh, Decimal("40.000"))
        self.assertEqual(receipt.state, "queued")
        self.assertEqual(receipt.bankReference, "BANKREF-1")
        self.assertEqual(purchase.channel, "bank_soap")
        self.assertEqual(purchase.bank_partner_id, self.bank)
        self.assertEqual(purchase.bank_time, datetime(2026, 11, 26, 9, 30))

    def test_purchase_posts_invoice_paid_through_the_bank_journal(self):
        self._purchase()
        self._post_bank_sales()
        invoice = self._purchases().invoice_id
        self.assertEqual(invoice.state, "posted")
        self.assertEqual(invoice.partner_id, self.tenant)
        self.assertEqual(invoice.amount_total, 10.0)
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        payment_journals = invoice.matched_payment_ids.journal_id | (
            invoice.line_ids.matched_credit_ids.credit_move_id.journal_id
        )
        self.assertIn(self.journal, payment_journals)
        assert_payment_document(self, self._purchases(), self.journal)

    def test_repeated_purchase_returns_the_first_receipt(self):
        first = self._purchase()
        again = self._purchase()
        self.assertEqual(again.reference, first.reference)
        self.assertEqual(again.transferNumber, first.transferNumber)
        self.assertEqual(len(self._purchases()), 1)

    def test_same_reference_with_other_amount_is_a_duplicate_fault(self):
        self._purchase()
        self.assertFault("DUPLICATE_REFERENCE", self._purchase, amount="11.00")
        self.assertEqual(len(self._purchases()), 1)

    def test_two_banks_may_use_the_same_reference(self):
        mine = self._purchase()
        other = self._purchase(self._client(self.other_bank_user.login, self.other_api_key))
        self.assertNotEqual(mine.reference, other.reference)
        self.assertEqual(len(self._purchases()), 2)

    def test_unknown_meter_is_a_fault(self):
        self.assertFault("UNKNOWN_METER", self._purchase, meter="NOPE-404")
        self.assertFalse(self._purchases())

    def test_meter_out_of_service_is_not_sellable(self):
        self.assertFault("METER_NOT_SELLABLE", self._purchase, meter="BNK-DRAFT")
        self.assertFalse(
            self.env["smartpm.credit.purchase"].search([("meter_id", "=", self.meter_draft.id)])
        )

    def test_amount_above_maximum_is_out_of_range_and_leaves_nothing(self):
        invoices_before = self.env["account.move"].search_count([])
        self.assertFault("AMOUNT_OUT_OF_RANGE", self._purchase, amount="1000.01")
        self.assertFalse(self._purchases())
        self.assertEqual(self.env["account.move"].search_count([]), invoices_before)

    def test_currency_other_than_the_tariffs_is_refused(self):
        other = "EUR" if self.currency.name != "EUR" else "USD"
        self.assertFault("CURRENCY_MISMATCH", self._purchase, currency=other)
        self.assertFalse(self._purchases())

    def test_wrong_api_key_is_not_authorised(self):
        self.assertFault(
            "NOT_AUTHORISED",
            self._client(password="not-the-key").QueryCustomer,
            meterNumber="BNK-001",
        )

    def test_request_without_security_header_is_not_authorised(self):
        self.assertFault(
            "NOT_AUTHORISED", self._client(wsse=False).QueryCustomer, meterNumber="BNK-001"
        )

    def test_user_outside_the_bank_group_is_not_authorised(self):
        service = self._client(self.clerk.login, self.clerk_key)
        self.assertFault(
            "NOT_AUTHORISED",
            service.Purchase,
            meterNumber="BNK-001",
            amount=Decimal("10"),
            bankReference="X1",
            bankTime=BANK_TIME,
        )
        self.assertFalse(self._purchases())

    def test_password_is_accepted_like_odoo_xmlrpc(self):
        service = self._client(password="bank_api-pw-123")
        self.assertEqual(service.QueryCustomer(meterNumber="BNK-001").meterState, "active")

    def test_malformed_envelope_is_an_invalid_request_fault(self):
        response = requests.post(
            f"{self.base_url()}/smartpm/soap/vending",
            data=b"<soap:Envelope",
            headers={"Content-Type": "text/xml"},
            timeout=10,
        )
        self.assertEqual(response.status_code, 500)
        root = etree.fromstring(response.content)
        self.assertEqual(root.findtext(".//faultcode"), "soap:Client")
        self.assertEqual(root.findtext(f".//{{{TNS}}}code"), "INVALID_REQUEST")

    def test_query_purchase_follows_delivery(self):
        self._purchase()
        self._purchases()._on_delivered({})
        self.env.flush_all()
        receipt = self._client().QueryPurchase(bankReference="BANKREF-1")
        self.assertEqual(receipt.state, "delivered")

    def test_other_bank_cannot_see_a_purchase(self):
        self._purchase()
        service = self._client(self.other_bank_user.login, self.other_api_key)
        self.assertFault("UNKNOWN_PURCHASE", service.QueryPurchase, bankReference="BANKREF-1")

    def test_reverse_undelivered_purchase_refunds_through_the_bank_journal(self):
        self._purchase()
        receipt = self._client().ReversePurchase(bankReference="BANKREF-1")
        purchase = self._purchases()
        self.assertEqual(receipt.state, "reversed")
        self.assertEqual(purchase.job_id.state, "cancelled")
        self.assertEqual(purchase.credit_note_id.state, "posted")
        self.assertIn(purchase.credit_note_id.payment_state, ("paid", "in_payment"))

    def test_never_claimed_sale_is_reversed_at_once_and_refunded_once(self):
        self._purchase()
        receipt = self._client().ReversePurchase(bankReference="BANKREF-1")
        self.assertEqual(receipt.state, "reversed")
        self.env.invalidate_all()
        note = self._purchases().credit_note_id
        refunds = self.env["account.payment"].search(
            [("payment_type", "=", "outbound"), ("partner_id", "=", note.partner_id.id)]
        )
        self.assertEqual(len(refunds), 1)
        self.assertEqual(refunds.reconciled_invoice_ids, note)
        self.assertEqual(refunds.journal_id, self.journal)
        self.assertFalse(self._purchases().check_job_id)

    def test_attempted_delivery_is_pending_check_until_the_meter_says_not_applied(self):
        self._purchase()
        purchase = self._purchases()
        self._claim_delivery(purchase)
        client = self._client()
        first = client.ReversePurchase(bankReference="BANKREF-1")
        self.assertEqual(first.state, "pending_check")
        self.env.invalidate_all()
        self.assertFalse(purchase.credit_note_id)  # no money back before the meter says
        # the bank asks again: same answer, nothing done twice
        check = purchase.check_job_id
        self.assertEqual(client.ReversePurchase(bankReference="BANKREF-1").state, "pending_check")
        self.assertEqual(purchase.check_job_id, check)
        self.assertEqual(client.QueryPurchase(bankReference="BANKREF-1").state, "pending_check")
        self._meter_answers(purchase, applied=False)
        self.assertEqual(purchase.state, "reversed")
        self.assertIn(purchase.credit_note_id.payment_state, ("paid", "in_payment"))
        payments = self.env["account.payment"].search_count([("journal_id", "=", self.journal.id)])
        done = client.ReversePurchase(bankReference="BANKREF-1")
        self.assertEqual(done.state, "reversed")
        self.env.invalidate_all()
        # refunded once
        self.assertEqual(
            self.env["account.payment"].search_count([("journal_id", "=", self.journal.id)]),
            payments,
        )

    def test_meter_that_applied_the_credit_makes_the_reversal_not_reversible(self):
        self._purchase()
        purchase = self._purchases()
        self._claim_delivery(purchase)
        client = self._client()
        self.assertEqual(client.ReversePurchase(bankReference="BANKREF-1").state, "pending_check")
        self._meter_answers(purchase, applied=True)
        self.assertEqual(purchase.state, "delivered")
        fault = self.assertFault(
            "NOT_REVERSIBLE", client.ReversePurchase, bankReference="BANKREF-1"
        )
        self.assertIn("on meter BNK-001", fault.message)
        self.env.invalidate_all()
        self.assertFalse(purchase.credit_note_id)

    def test_delivered_purchase_cannot_be_reversed(self):
        self._purchase()
        self._purchases()._on_delivered({})
        self.env.flush_all()
        self.assertFault(
            "NOT_REVERSIBLE", self._client().ReversePurchase, bankReference="BANKREF-1"
        )
        self.assertEqual(self._purchases().state, "delivered")
