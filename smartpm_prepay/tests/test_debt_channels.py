"""The debt split as each channel answers it: bank XML-RPC and SOAP, the portal pages."""

from decimal import Decimal

from odoo.tests import tagged

from . import test_bank_soap, test_bank_xmlrpc, test_portal
from .common_bank import BankChannelCase

# helpers of the channels' own tests (their modules, not their classes: a test class
# imported here would run twice)
SOAP_TIME = test_bank_soap.BANK_TIME
BANK_TIME = test_bank_xmlrpc.BANK_TIME
PortalCase = test_portal.PortalCase


def _debt(env, tenant, company, amount, **vals):
    debt = env["smartpm.tenant.debt"].create(
        {
            "tenant_id": tenant.id,
            "company_id": company.id,
            "description": vals.pop("description", "Arrears before prepaid"),
            "amount": amount,
            **vals,
        }
    )
    debt.action_confirm()
    env.flush_all()  # the bank's request runs in the server's thread, on the same cursor
    return debt


@tagged("post_install", "-at_install")
class TestDebtBankXmlrpc(BankChannelCase):
    _call = test_bank_xmlrpc.TestBankXmlrpc._call

    def test_xmlrpc_receipt_shows_the_debt_split(self):
        debt = _debt(self.env, self.tenant, self.company, 50.0, recovery_percent=25.0)
        receipt = self._call("purchase", "BNK-001", 20.0, False, "XR-DEBT", BANK_TIME)
        self.assertEqual(receipt["amount"], "20.00")
        self.assertEqual(receipt["debtRecovered"], "5.00")
        self.assertEqual(receipt["debtBalance"], "45.00")
        self.assertEqual(receipt["creditAmount"], "15.00")
        self.assertEqual(receipt["kwh"], "60.000")  # 15 / 0.25
        self.env.invalidate_all()  # written by the server's thread
        self.assertEqual(debt.balance, 45.0)
        self._post_bank_sales()  # the invoice and payment, posted after the answer
        purchase = self._purchases()
        self.assertEqual(purchase.invoice_id.amount_total, 15.0)
        self.assertEqual(debt.invoice_id.amount_residual, 45.0)
        # the same request again: the same receipt, nothing recovered twice
        again = self._call("purchase", "BNK-001", 20.0, False, "XR-DEBT", BANK_TIME)
        self.assertEqual(
            (again["reference"], again["debtRecovered"]), (receipt["reference"], "5.00")
        )
        self.assertEqual(debt.balance, 45.0)

    def test_bank_user_cannot_read_or_write_debts_over_xmlrpc(self):
        import xmlrpc.client

        debt = _debt(self.env, self.tenant, self.company, 50.0)
        proxy = xmlrpc.client.ServerProxy(f"{self.base_url()}/xmlrpc/2/object")
        for method, args in (
            ("search_read", [[]]),
            ("write", [[debt.id], {"balance": 0.0}]),
            ("action_cancel", [[debt.id]]),
        ):
            with self.subTest(method=method), self.assertRaises(xmlrpc.client.Fault):
                proxy.execute_kw(
                    self.env.cr.dbname,
                    self.bank_user.id,
                    self.api_key,
                    "smartpm.tenant.debt",
                    method,
                    args,
                )
        debt.invalidate_recordset()
        self.assertEqual((debt.balance, debt.state), (50.0, "active"))


@tagged("post_install", "-at_install")
class TestDebtBankSoap(BankChannelCase):
    _client = test_bank_soap.TestBankSoap._client

    def _purchase(self, ref="BANKREF-1"):
        return self._client().Purchase(
            meterNumber="BNK-001", amount=Decimal("10.00"), bankReference=ref, bankTime=SOAP_TIME
        )

    def test_soap_receipt_has_the_debt_fields_only_for_a_tenant_with_debts(self):
        plain = self._purchase()
        self.assertIsNone(plain.debtRecovered)
        _debt(self.env, self.tenant, self.company, 3.0, recovery_rule="fixed", recovery_fixed=5.0)
        receipt = self._purchase("BANKREF-DEBT")
        self.assertEqual(receipt.amount, Decimal("10.00"))
        self.assertEqual(receipt.debtRecovered, Decimal("3.00"))
        self.assertEqual(receipt.debtBalance, Decimal("0.00"))
        self.assertEqual(receipt.creditAmount, Decimal("7.00"))
        self.assertEqual(receipt.kwh, Decimal("28.000"))


@tagged("post_install", "-at_install")
class TestDebtPortal(PortalCase):
    _done_transaction = test_portal.TestPortalPayment._done_transaction
    _portal_purchases = test_portal.TestPortalPayment._portal_purchases

    def test_portal_shows_the_debt_card_the_split_before_paying_and_on_the_purchase(self):
        debt = _debt(self.env, self.tenant_a, self.company, 30.0, recovery_percent=25.0)
        _debt(self.env, self.tenant_b, self.company, 99.0, description="Someone else's")
        self._login()
        page = self.url_open(f"/my/meters/{self.meter_a.id}").text
        self.assertIn("o_smartpm_debts", page)
        self.assertIn("Arrears before prepaid", page)
        self.assertIn("30.00", page)
        self.assertNotIn("Someone else", page)
        buy = self.url_open(f"/my/meters/{self.meter_a.id}/buy?amount=12").text
        self.assertIn("Debt repaid", buy)
        self.assertIn("36.00 kWh", buy)  # (12 - 3) / 0.25
        tx = self._done_transaction(12.0, reference="CREDIT-DEBT-1")
        tx._post_process()
        purchase = self._portal_purchases()
        self.assertEqual((purchase.debt_recovered, purchase.kwh), (3.0, 36.0))
        self.assertEqual(debt.balance, 27.0)
        self.assertEqual(purchase.invoice_id.amount_total, 9.0)
        self.assertIn(purchase.invoice_id.payment_state, ("paid", "in_payment"))
        self.assertEqual(debt.invoice_id.amount_residual, 27.0)
        page = self.url_open(f"/my/meters/{self.meter_a.id}").text
        self.assertIn("o_smartpm_purchase_debt_recovered", page)
        self.assertIn("27.00", page)

    def test_tenant_without_debts_sees_no_debt_card(self):
        self._login()
        page = self.url_open(f"/my/meters/{self.meter_a.id}").text
        self.assertNotIn("o_smartpm_debts", page)
