"""The receipt of every channel shows one split (services/receipt.py, issue 17 §1, §2, §5):
amount paid, debt recovered and left, emergency credit and negative (friendly) credit
repaid, the net energy added, the new balance and the transfer number; the same figures,
unit for unit, in the bank's XML-RPC and SOAP answers, the tenant portal, the back office's
purchase form and Sell credit wizard (the POS: test_debt_pos_tour, journeys)."""

import re
from decimal import Decimal

from odoo.tests import Form, new_test_user, tagged

from ..services import engine, job_queue, receipt
from ..services.sale_info import format_money
from ..services.vending import vend
from . import test_bank_soap, test_bank_xmlrpc
from .common_bank import BankChannelCase
from .test_pos import SmartpmPosCase
from .test_tou import TouMixin
from .test_vending import VendingCase

BANK_TIME = test_bank_xmlrpc.BANK_TIME
SOAP_TIME = test_bank_soap.BANK_TIME


def _plain(text):
    return " ".join((text or "").replace("\N{NO-BREAK SPACE}", " ").split())


@tagged("post_install", "-at_install")
def _receipt_users(cls, cashier_login):
    """The tenant's portal login and a cashier, as the receipts' readers."""
    cls.portal_user = new_test_user(
        cls.env,
        "t_rcpt_tenant",
        groups="base.group_portal",
        partner_id=cls.tenant.id,
        password="t_rcpt_tenant-pw-123",
    )
    cls.cashier = new_test_user(cls.env, cashier_login, groups="smartpm_prepay.group_cashier")


class FlushFirst:
    def setUp(self):
        super().setUp()
        self.env.flush_all()  # the bank's request runs in the server's thread


class TestReceiptSplit(FlushFirst, BankChannelCase):
    """Tenant with a debt (5.00, 4.00 a purchase) and 5 kWh of emergency credit taken at
    1 kWh left; the tariff is 0.25 a kWh: 10.00 pays 4.00 of debt and buys 24 kWh, of which
    the meter keeps 5 kWh for the emergency credit: 19 kWh net, 20 kWh on the meter."""

    _call = test_bank_xmlrpc.TestBankXmlrpc._call
    _client = test_bank_soap.TestBankSoap._client

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.debt = cls.env["smartpm.tenant.debt"].create(
            {
                "tenant_id": cls.tenant.id,
                "company_id": cls.company.id,
                "description": "Arrears before prepaid",
                "amount": 5.0,
                "recovery_rule": "fixed",
                "recovery_fixed": 4.0,
            }
        )
        cls.debt.action_confirm()
        cls.meter.sudo().write(
            {"emergency_status": "in_use", "emergency_in_use_kwh": 5.0, "credit_kwh": 1.0}
        )
        _receipt_users(cls, "t_rcpt_cashier")

    def _money(self, amount):
        return _plain(format_money(self.env, amount, self.currency))

    def _expected_lines(self, from_meter=False, transfer=1):
        mark = "" if from_meter else " (expected)"
        balance = "New balance" if from_meter else "Estimated new balance"
        return [
            ("amount", "Amount paid", self._money(10.0)),
            ("debt_recovered", "Debt recovered", self._money(4.0)),
            ("debt_balance", "Debt balance left", self._money(1.0)),
            ("credit_amount", "Credit bought", self._money(6.0)),
            ("kwh", "Energy bought", "24.00 kWh"),
            ("emergency_repaid_kwh", f"Emergency credit repaid{mark}", "5.00 kWh"),
            ("net_kwh", f"Net energy added{mark}", "19.00 kWh"),
            ("new_balance_kwh", balance, "20.00 kWh"),
            ("transfer_number", "Transfer number", str(transfer)),
        ]

    @staticmethod
    def _rows(lines):
        return [(r["key"], _plain(r["label"]), _plain(r["value"])) for r in lines]

    def _deliver(self, purchase, credit_kwh=20.0, emergency_repaid_kwh=5.0):
        """The bridge delivers the token; the meter says what it kept and its credit."""
        self.env.invalidate_all()
        env = engine.as_engine(self.env["smartpm.meter.job"]).env
        claimed = [j["id"] for j in job_queue.claim(env, "rcpt-bridge", 500, 60)]
        self.assertIn(purchase.job_id.id, claimed)
        job_queue.complete(
            env,
            purchase.job_id.id,
            "rcpt-bridge",
            {
                "transfer_number": purchase.transfer_number,
                "already_applied": False,
                "credit_kwh": credit_kwh,
                "relay": "connected",
                "emergency_status": "enabled",
                "emergency_in_use_kwh": 0.0,
                "emergency_repaid_kwh": emergency_repaid_kwh,
            },
        )
        self.env.flush_all()
        self.env.invalidate_all()

    def _portal_receipt(self, purchase):
        """The receipt lines of the tenant's purchase page, as (key, label, value)."""
        self.authenticate("t_rcpt_tenant", "t_rcpt_tenant-pw-123")
        page = self.url_open(f"/my/purchases/{purchase.id}")
        self.assertEqual(page.status_code, 200)
        found = re.findall(
            r'<dt class="[^"]*o_smartpm_receipt_label_(\w+)">([^<]*)</dt>\s*'
            r'<dd class="[^"]*" data-key="\w+">([^<]*)</dd>',
            page.text,
        )
        return [(key, _plain(label), _plain(value)) for key, label, value in found]

    def _sell_by_xmlrpc(self, ref="XR-SPLIT"):
        answer = self._call("purchase", "BNK-001", 10.0, False, ref, BANK_TIME)
        self.env.invalidate_all()
        return answer, self._purchases()

    # ------------------------------------------------------------------ the split
    def test_the_split_is_expected_at_the_sale_then_the_meters(self):
        answer, purchase = self._sell_by_xmlrpc()
        self.assertEqual(
            (
                purchase.expected_emergency_repaid_kwh,
                purchase.expected_negative_repaid_kwh,
                purchase.expected_balance_kwh,
            ),
            (5.0, 0.0, 20.0),
        )
        self.assertEqual(self._rows(purchase.receipt_lines), self._expected_lines())
        # the meter kept 4.5 kWh only (the tenant had used less of it meanwhile): its word
        self._deliver(purchase, credit_kwh=20.5, emergency_repaid_kwh=4.5)
        split = receipt.split(purchase)
        self.assertTrue(split["from_meter"])
        self.assertEqual(
            (split["emergency_repaid_kwh"], split["net_kwh"], split["new_balance_kwh"]),
            (4.5, 19.5, 20.5),
        )
        self.assertEqual(split["kwh"], split["emergency_repaid_kwh"] + split["net_kwh"])

    def test_a_second_sale_before_delivery_expects_only_what_the_first_leaves(self):
        self.meter.sudo().emergency_in_use_kwh = 30.0
        self.env.flush_all()
        _first, first = self._sell_by_xmlrpc("XR-ONE")
        self.assertEqual(first.expected_emergency_repaid_kwh, 24.0)  # all of its 24 kWh
        self._call("purchase", "BNK-001", 10.0, False, "XR-TWO", BANK_TIME)
        self.env.invalidate_all()
        second = self._purchases() - first
        # the debt is 1.00 now: 9.00 buys 36 kWh, 6 of which repay the rest of the 30
        self.assertEqual((second.debt_recovered, second.kwh), (1.0, 36.0))
        self.assertEqual(second.expected_emergency_repaid_kwh, 6.0)
        self.assertEqual(second.expected_balance_kwh, 1.0 + 30.0)

    # ------------------------------------------------------------------ channels
    def test_xmlrpc_answer_has_the_split(self):
        answer, purchase = self._sell_by_xmlrpc()
        self.assertEqual(
            {k: answer[k] for k in ("amount", "debtRecovered", "debtBalance", "creditAmount")},
            {
                "amount": "10.00",
                "debtRecovered": "4.00",
                "debtBalance": "1.00",
                "creditAmount": "6.00",
            },
        )
        self.assertEqual(
            {
                k: answer[k]
                for k in (
                    "kwh",
                    "emergencyRepaidKwh",
                    "negativeCreditRepaidKwh",
                    "netKwh",
                    "newBalanceKwh",
                    "splitFromMeter",
                    "transferNumber",
                )
            },
            {
                "kwh": "24.000",
                "emergencyRepaidKwh": "5.000",
                "negativeCreditRepaidKwh": "0.000",
                "netKwh": "19.000",
                "newBalanceKwh": "20.000",
                "splitFromMeter": False,
                "transferNumber": 1,
            },
        )
        self._deliver(purchase)
        again = self._call("query_purchase", "XR-SPLIT")
        self.assertEqual((again["state"], again["splitFromMeter"]), ("delivered", True))
        self.assertEqual((again["emergencyRepaidKwh"], again["netKwh"]), ("5.000", "19.000"))

    def test_soap_receipt_has_the_split_and_leaves_it_out_without_repayment(self):
        service = self._client()
        answer = service.Purchase(
            meterNumber="BNK-001", amount=Decimal("10.00"), bankReference="S-1", bankTime=SOAP_TIME
        )
        self.assertEqual(
            (answer.debtRecovered, answer.debtBalance, answer.creditAmount, answer.kwh),
            (Decimal("4.00"), Decimal("1.00"), Decimal("6.00"), Decimal("24.000")),
        )
        self.assertEqual(
            (answer.emergencyRepaidKwh, answer.negativeCreditRepaidKwh, answer.netKwh),
            (Decimal("5.000"), Decimal("0.000"), Decimal("19.000")),
        )
        self.assertEqual((answer.newBalanceKwh, answer.splitFromMeter), (Decimal("20.000"), False))
        # the emergency credit is repaid by that sale: the next one repays nothing, and
        # its receipt is the one a client of the earlier WSDL knows
        self.env.invalidate_all()
        self._deliver(self._purchases())
        plain = service.Purchase(
            meterNumber="BNK-001", amount=Decimal("10.00"), bankReference="S-2", bankTime=SOAP_TIME
        )
        self.assertIsNone(plain.emergencyRepaidKwh)
        self.assertIsNone(plain.netKwh)
        self.assertIsNone(plain.splitFromMeter)

    def test_portal_purchase_page_and_meter_page_show_the_split(self):
        _answer, purchase = self._sell_by_xmlrpc()
        self.assertEqual(self._portal_receipt(purchase), self._expected_lines())
        meter_page = self.url_open(f"/my/meters/{self.meter.id}").text
        self.assertIn("o_smartpm_last_receipt", meter_page)
        self.assertIn(f'href="/my/purchases/{purchase.id}"', meter_page)
        self._deliver(purchase)
        self.assertEqual(self._portal_receipt(purchase), self._expected_lines(from_meter=True))

    def test_portal_purchase_of_another_tenant_is_a_404(self):
        other = self.env["res.partner"].create({"name": "Other Tenant", "is_tenant": True})
        self.meter.sudo().tenant_id = other
        self.env.flush_all()
        _answer, purchase = self._sell_by_xmlrpc()
        self.authenticate("t_rcpt_tenant", "t_rcpt_tenant-pw-123")
        self.assertEqual(self.url_open(f"/my/purchases/{purchase.id}").status_code, 404)
        self.assertEqual(self.url_open("/my/purchases/999999").status_code, 404)

    def test_back_office_wizard_and_purchase_form_show_the_split(self):
        wizard = Form(
            self.env["smartpm.sell.credit.wizard"]
            .with_user(self.cashier)
            .with_context(default_meter_id=self.meter.id)
        )
        wizard.amount = 10.0
        wizard.journal_id = self.company_data["default_journal_cash"]
        preview = [tuple(line.split(": ", 1)) for line in wizard.receipt_preview.splitlines()]
        # before the sale: no transfer number yet
        expected = [(label, value) for _key, label, value in self._expected_lines()]
        self.assertEqual([(_plain(a), _plain(b)) for a, b in preview], expected[:-1])
        self.assertEqual(wizard.estimated_balance_kwh, 20.0)
        action = wizard.save().action_confirm()
        purchase = (
            self.env["smartpm.credit.purchase"].with_user(self.cashier).browse(action["res_id"])
        )
        shown = [tuple(line.split(": ", 1)) for line in purchase.receipt_text.splitlines()]
        self.assertEqual([(_plain(a), _plain(b)) for a, b in shown], expected)

    def test_every_channel_shows_the_same_figures_for_one_sale(self):
        answer, purchase = self._sell_by_xmlrpc()
        self._deliver(purchase)
        expected = self._expected_lines(from_meter=True)
        soap = self._client().QueryPurchase(bankReference="XR-SPLIT")
        self.env.invalidate_all()
        back_office = [
            tuple(line.split(": ", 1))
            for line in purchase.with_user(self.cashier).receipt_text.splitlines()
        ]
        self.assertEqual(self._portal_receipt(purchase), expected)
        self.assertEqual(
            [(_plain(a), _plain(b)) for a, b in back_office], [(b, c) for _a, b, c in expected]
        )
        # the bank's figures: the same numbers
        xmlrpc = self._call("query_purchase", "XR-SPLIT")
        for bank in (xmlrpc, {k: str(getattr(soap, k)) for k in xmlrpc if hasattr(soap, k)}):
            self.assertEqual(
                [
                    Decimal(bank[k])
                    for k in (
                        "amount",
                        "debtRecovered",
                        "debtBalance",
                        "creditAmount",
                        "kwh",
                        "emergencyRepaidKwh",
                        "netKwh",
                        "newBalanceKwh",
                        "transferNumber",
                    )
                ],
                [Decimal(x) for x in ("10", "4", "1", "6", "24", "5", "19", "20", "1")],
            )

    # ------------------------------------------------------------------ PDF
    def test_receipt_pdf_prints_the_split(self):
        import shutil
        import subprocess
        import tempfile

        if not shutil.which("pdftotext"):
            self.skipTest("pdftotext (poppler-utils) is not installed")
        _answer, purchase = self._sell_by_xmlrpc()
        self.env.company.external_report_layout_id = self.env.ref("web.external_layout_standard")
        pdf, kind = (
            self.env["ir.actions.report"]
            .with_context(force_report_rendering=True)
            ._render_qweb_pdf("smartpm_prepay.action_report_purchase_receipt", purchase.ids)
        )
        self.assertEqual(kind, "pdf")
        with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
            f.write(pdf)
            f.flush()
            text = subprocess.run(
                ["pdftotext", "-layout", f.name, "-"], capture_output=True, text=True, check=True
            ).stdout
        lines = [_plain(line) for line in text.splitlines()]
        for _key, label, value in self._expected_lines():
            self.assertTrue(
                any(line.startswith(label) and line.endswith(value) for line in lines),
                f"{label} {value} not on the PDF:\n{text}",
            )
        # the tenant downloads the same PDF from their purchase page
        self.authenticate("t_rcpt_tenant", "t_rcpt_tenant-pw-123")
        response = self.url_open(f"/my/purchases/{purchase.id}?report_type=pdf&download=true")
        self.assertEqual(response.status_code, 200)
        self.assertIn(f"Receipt-{purchase.name}.pdf", response.headers["Content-Disposition"])
        # (tests render reports as HTML unless forced: the same lines)
        self.assertIn("o_smartpm_receipt_emergency_repaid_kwh", response.text)
        other = self.env["res.partner"].create({"name": "Not Theirs", "is_tenant": True})
        self.meter.sudo().tenant_id = other
        self.env.flush_all()
        self._call("purchase", "BNK-001", 10.0, False, "XR-OTHER", BANK_TIME)
        self.env.invalidate_all()
        theirs = self._purchases().filtered(lambda p: p.tenant_id == other)
        response = self.url_open(f"/my/purchases/{theirs.id}?report_type=pdf")
        self.assertEqual(response.status_code, 404)


@tagged("post_install", "-at_install")
class TestReceiptNegativeCredit(BankChannelCase):
    """No debt, no emergency credit; the meter ran to -3 kWh in a friendly period: 10.00
    buys 40 kWh, 3 repay the negative credit, 37 net, 37 on the meter."""

    _call = test_bank_xmlrpc.TestBankXmlrpc._call
    _client = test_bank_soap.TestBankSoap._client

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.meter.sudo().credit_kwh = -3.0
        cls.portal_user = new_test_user(
            cls.env,
            "t_rcpt_neg",
            groups="base.group_portal",
            partner_id=cls.tenant.id,
            password="t_rcpt_neg-pw-123",
        )

    def test_every_channel_shows_the_negative_credit_repaid(self):
        self.env.flush_all()
        answer = self._call("purchase", "BNK-001", 10.0, False, "XR-NEG", BANK_TIME)
        self.env.invalidate_all()
        purchase = self._purchases()
        self.assertFalse(answer["hasDebt"])
        self.assertEqual(
            (answer["kwh"], answer["negativeCreditRepaidKwh"], answer["netKwh"]),
            ("40.000", "3.000", "37.000"),
        )
        self.assertEqual(
            (answer["emergencyRepaidKwh"], answer["newBalanceKwh"]), ("0.000", "37.000")
        )
        expected = [
            ("amount", "Amount paid", _plain(format_money(self.env, 10.0, self.currency))),
            ("kwh", "Energy bought", "40.00 kWh"),
            ("negative_repaid_kwh", "Negative credit repaid (expected)", "3.00 kWh"),
            ("net_kwh", "Net energy added (expected)", "37.00 kWh"),
            ("new_balance_kwh", "Estimated new balance", "37.00 kWh"),
            ("transfer_number", "Transfer number", "1"),
        ]
        self.assertEqual(TestReceiptSplit._rows(purchase.receipt_lines), expected)
        soap = self._client().QueryPurchase(bankReference="XR-NEG")
        self.assertEqual(
            (soap.negativeCreditRepaidKwh, soap.netKwh, soap.debtRecovered),
            (Decimal("3.000"), Decimal("37.000"), None),
        )
        # delivered: the meter reports 37 kWh after the token, the purchase 3 kWh repaid
        env = engine.as_engine(self.env["smartpm.meter.job"]).env
        job_queue.claim(env, "rcpt-bridge", 500, 60)
        job_queue.complete(
            env,
            purchase.job_id.id,
            "rcpt-bridge",
            {
                "transfer_number": 1,
                "already_applied": False,
                "credit_kwh": 37.0,
                "relay": "connected",
            },
        )
        self.env.flush_all()
        self.env.invalidate_all()
        self.assertEqual(purchase.debt_repaid_kwh, 3.0)
        self.authenticate("t_rcpt_neg", "t_rcpt_neg-pw-123")
        page = self.url_open(f"/my/purchases/{purchase.id}").text
        for label, value in (
            ("Negative credit repaid", "3.00 kWh"),
            ("Net energy added", "37.00 kWh"),
            ("New balance", "37.00 kWh"),
        ):
            self.assertRegex(page, rf">{label}</dt>\s*<dd[^>]*>{value}</dd>")
        xmlrpc = self._call("query_purchase", "XR-NEG")
        self.assertEqual(
            (xmlrpc["negativeCreditRepaidKwh"], xmlrpc["netKwh"], xmlrpc["splitFromMeter"]),
            ("3.000", "37.000", True),
        )


@tagged("post_install", "-at_install")
class TestMoneyReceipt(TouMixin, VendingCase):
    """A money-mode sale (time of use, issue 17 §6) on a tariff with a standing charge, to a
    tenant with a debt: 10.00 pays 2.50 of debt (25 %) and puts 7.50 on the meter, which
    buys 75.00 kWh off-peak (0.10) or 18.75 kWh at peak (0.40)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tou_tariff = cls._tou_tariff()
        cls.tou_tariff.standing_charge_amount = 0.5
        cls.money_tenant = cls._tenant("Grace receipt")
        cls.money_meter = cls._meter(
            "TOU-RCPT",
            tenant_id=cls.money_tenant.id,
            state="active",
            credit_mode="money",
            tariff_id=cls.tou_tariff.id,
        )
        debt = cls.env["smartpm.tenant.debt"].create(
            {
                "tenant_id": cls.money_tenant.id,
                "description": "Arrears",
                "amount": 20.0,
                "recovery_percent": 25.0,
            }
        )
        debt.action_confirm()

    def _money(self, amount):
        return _plain(format_money(self.env, amount, self.company.currency_id))

    def test_money_receipt_shows_debt_credit_kwh_by_band_and_the_standing_charge(self):
        purchase = vend(self.env, self.money_meter, 10.0, "backoffice", "RCPT-MONEY")
        expected = [
            ("amount", "Amount paid", self._money(10.0)),
            ("debt_recovered", "Debt recovered", self._money(2.5)),
            ("debt_balance", "Debt balance left", self._money(17.5)),
            ("credit_amount", "Credit bought", self._money(7.5)),
            ("credit_money", "Credit added to the meter", self._money(7.5)),
            ("band_1", f"Energy it buys at Off-peak ({self._money(0.1)} per kWh)", "75.00 kWh"),
            ("band_2", f"Energy it buys at Peak ({self._money(0.4)} per kWh)", "18.75 kWh"),
            (
                "standing_charge",
                "Standing charge (taken from the credit)",
                f"{self._money(0.5)} per day",
            ),
            # the meter had no credit: the 7.50 is its balance once it takes the token
            ("new_balance_money", "Estimated new balance", self._money(7.5)),
            ("transfer_number", "Transfer number", str(purchase.transfer_number)),
        ]
        rows = TestReceiptSplit._rows(purchase.receipt_lines)
        self.assertEqual(rows, expected)
        self.assertNotIn("kWh", purchase.receipt_text.split("Energy it buys")[0])

    def test_once_delivered_the_money_receipt_shows_the_meters_balance(self):
        purchase = vend(self.env, self.money_meter, 10.0, "backoffice", "RCPT-MONEY-2")
        env = engine.as_engine(self.env["smartpm.meter.job"]).env
        claimed = [j["id"] for j in job_queue.claim(env, "rcpt-bridge", 500, 60)]
        self.assertIn(purchase.job_id.id, claimed)
        # a money-mode meter's credit, in money, as the bridge reports it
        job_queue.complete(
            env,
            purchase.job_id.id,
            "rcpt-bridge",
            {
                "transfer_number": purchase.transfer_number,
                "already_applied": False,
                "credit_money": 9.25,
                "relay": "connected",
                "charge_total": 0.0,
            },
        )
        self.env.invalidate_all()
        self.assertEqual(purchase.state, "delivered")
        rows = {
            key: (label, value)
            for key, label, value in TestReceiptSplit._rows(purchase.receipt_lines)
        }
        self.assertEqual(rows["new_balance_money"], ("New balance", self._money(9.25)))
        self.assertEqual(self.money_meter.credit_money, 9.25)


class MoneySplitMixin:
    """A money-mode meter (time of use, no tax) owing 2.00 of emergency credit with 0.50 of
    credit left: 10.00 puts 10.00 on it, of which it keeps 2.00 for the emergency credit:
    8.00 net, 8.50 on the meter. Or, ``negative``, at -3.00 after a friendly period: 3.00
    repay it, 7.00 net and on the meter."""

    EMERGENCY = {"credit_money": 0.5, "emergency_status": "in_use", "emergency_in_use_money": 2.0}
    NEGATIVE = {"credit_money": -3.0}

    @classmethod
    def _money_meter(cls, serial, tenant, **vals):
        tariff = cls._tou_tariff(name=f"Money split {serial}")
        meter = (
            cls.env["smartpm.meter"]
            .sudo()
            .create(
                {
                    "serial_number": serial,
                    "host": "127.0.0.1",
                    "port": 4100,
                    "state": "active",
                    "tenant_id": tenant.id,
                    "tariff_id": tariff.id,
                    "credit_mode": "money",
                    **vals,
                }
            )
        )
        meter.write(cls.EMERGENCY)
        return meter

    def _money_text(self, amount):
        return _plain(format_money(self.env, amount, self.env.company.currency_id))

    def _expected_money_rows(self, from_meter=False, negative=False):
        """The money split's rows of the receipt: expected at the sale, the meter's after."""
        mark = "" if from_meter else " (expected)"
        if negative:
            repaid = [("negative_repaid_money", f"Negative credit repaid{mark}", 3.0)]
            net, balance = 7.0, 7.0
        else:
            repaid = [("emergency_repaid_money", f"Emergency credit repaid{mark}", 2.0)]
            net, balance = 8.0, 8.5
        rows = [("credit_money", "Credit added to the meter", 10.0), *repaid]
        rows.append(("net_money", f"Net credit added{mark}", net))
        rows.append(
            ("new_balance_money", "New balance" if from_meter else "Estimated new balance", balance)
        )
        return [(key, label, self._money_text(value)) for key, label, value in rows]

    def _money_rows(self, lines):
        keys = {"credit_money", "emergency_repaid_money", "negative_repaid_money", "net_money"}
        keys.add("new_balance_money")
        return [row for row in TestReceiptSplit._rows(lines) if row[0] in keys]

    def _deliver_money(self, purchase, negative=False):
        """The meter takes the token and says what it kept and its credit after it."""
        self.env.flush_all()
        self.env.invalidate_all()
        env = engine.as_engine(self.env["smartpm.meter.job"]).env
        claimed = [j["id"] for j in job_queue.claim(env, "rcpt-money", 500, 60)]
        self.assertIn(purchase.job_id.id, claimed)
        result = {"credit_money": 7.0} if negative else {"credit_money": 8.5}
        if not negative:
            result["emergency_repaid_money"] = 2.0
        job_queue.complete(
            env,
            purchase.job_id.id,
            "rcpt-money",
            {
                "transfer_number": purchase.transfer_number,
                "already_applied": False,
                "relay": "connected",
                "charge_total": 0.0,
                **result,
            },
        )
        self.env.flush_all()
        self.env.invalidate_all()


@tagged("post_install", "-at_install")
class TestMoneySplitAtSale(FlushFirst, MoneySplitMixin, TouMixin, BankChannelCase):
    """A money-mode meter's receipt says what its credit repays already at the sale, on the
    bank's XML-RPC and SOAP answers, the portal and the back office; the meter's own
    figures replace it once delivered (the POS: TestMoneySplitPos)."""

    _call = test_bank_xmlrpc.TestBankXmlrpc._call
    _client = test_bank_soap.TestBankSoap._client
    _portal_receipt = TestReceiptSplit._portal_receipt

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company.smartpm_min_amount = 0.1
        cls.money_meter = cls._money_meter("BNK-MONEY", cls.tenant)
        _receipt_users(cls, "t_rcpt_m_cashier")

    def _money_purchase(self, ref):
        return self.env["smartpm.credit.purchase"].search(
            [("meter_id", "=", self.money_meter.id), ("bank_reference", "=", ref)]
        )

    def test_xmlrpc_answer_has_the_money_split_at_the_sale_then_the_meters(self):
        answer = self._call("purchase", "BNK-MONEY", 10.0, False, "XR-MONEY", BANK_TIME)
        self.env.invalidate_all()
        purchase = self._money_purchase("XR-MONEY")
        self.assertEqual((purchase.state, purchase.credit_money), ("queued", 10.0))
        keys = (
            "creditMoney",
            "emergencyRepaidMoney",
            "negativeCreditRepaidMoney",
            "netMoney",
            "newBalanceMoney",
            "splitFromMeter",
        )
        self.assertEqual(
            {k: answer[k] for k in keys},
            {
                "creditMoney": "10.00",
                "emergencyRepaidMoney": "2.000",
                "negativeCreditRepaidMoney": "0.000",
                "netMoney": "8.000",
                "newBalanceMoney": "8.50",
                "splitFromMeter": False,
            },
        )
        self.assertEqual(self._money_rows(purchase.receipt_lines), self._expected_money_rows())
        # a second sale before the first is on the meter: the emergency credit is repaid
        second = self._call("purchase", "BNK-MONEY", 5.0, False, "XR-MONEY-2", BANK_TIME)
        self.assertEqual(
            (second["emergencyRepaidMoney"], second["netMoney"], second["newBalanceMoney"]),
            ("0.000", "5.000", "13.50"),
        )
        self._deliver_money(purchase)
        again = self._call("query_purchase", "XR-MONEY")
        self.assertEqual(
            (again["state"], again["splitFromMeter"], again["emergencyRepaidMoney"]),
            ("delivered", True, "2.000"),
        )
        self.assertEqual(
            self._money_rows(purchase.receipt_lines), self._expected_money_rows(from_meter=True)
        )

    def test_soap_answer_has_the_money_split_and_not_the_kwh_one(self):
        self.money_meter.sudo().write({"emergency_status": "enabled", **self.NEGATIVE})
        self.env.flush_all()
        answer = self._client().Purchase(
            meterNumber="BNK-MONEY",
            amount=Decimal("10.00"),
            bankReference="S-MONEY",
            bankTime=SOAP_TIME,
        )
        self.assertEqual(
            (answer.emergencyRepaidMoney, answer.negativeCreditRepaidMoney, answer.netMoney),
            (Decimal("0.000"), Decimal("3.000"), Decimal("7.000")),
        )
        self.assertEqual((answer.newBalanceMoney, answer.splitFromMeter), (Decimal("7.00"), False))
        self.assertIsNone(answer.negativeCreditRepaidKwh)
        self.assertIsNone(answer.netKwh)
        # a kWh meter's answer has no money split
        plain = self._client().Purchase(
            meterNumber="BNK-001",
            amount=Decimal("10.00"),
            bankReference="S-KWH",
            bankTime=SOAP_TIME,
        )
        self.assertIsNone(plain.netMoney)
        self.assertIsNone(plain.emergencyRepaidMoney)

    def test_portal_shows_the_money_split_expected_then_from_the_meter(self):
        self._call("purchase", "BNK-MONEY", 10.0, False, "XR-MONEY-P", BANK_TIME)
        self.env.invalidate_all()
        purchase = self._money_purchase("XR-MONEY-P")
        shown = [row for row in self._portal_receipt(purchase) if "money" in row[0]]
        self.assertEqual(shown, self._expected_money_rows())
        page = self.url_open(f"/my/purchases/{purchase.id}").text
        self.assertIn("o_smartpm_receipt_expected", page)
        self._deliver_money(purchase)
        shown = [row for row in self._portal_receipt(purchase) if "money" in row[0]]
        self.assertEqual(shown, self._expected_money_rows(from_meter=True))
        self.assertNotIn(
            "o_smartpm_receipt_expected", self.url_open(f"/my/purchases/{purchase.id}").text
        )

    def test_back_office_wizard_and_purchase_show_the_money_split(self):
        self.money_meter.sudo().write({"emergency_status": "enabled", **self.NEGATIVE})
        wizard = Form(
            self.env["smartpm.sell.credit.wizard"]
            .with_user(self.cashier)
            .with_context(default_meter_id=self.money_meter.id)
        )
        wizard.amount = 10.0
        wizard.journal_id = self.company_data["default_journal_cash"]
        expected = [
            (label, value) for _key, label, value in self._expected_money_rows(negative=True)
        ]
        preview = [
            tuple(_plain(x) for x in line.split(": ", 1))
            for line in wizard.receipt_preview.splitlines()
        ]
        self.assertEqual([row for row in preview if row in expected], expected)
        action = wizard.save().action_confirm()
        purchase = (
            self.env["smartpm.credit.purchase"].with_user(self.cashier).browse(action["res_id"])
        )
        self.assertEqual(purchase.expected_negative_repaid_money, 3.0)
        shown = [
            tuple(_plain(x) for x in line.split(": ", 1))
            for line in purchase.receipt_text.splitlines()
        ]
        self.assertEqual([row for row in shown if row in expected], expected)
        self._deliver_money(purchase, negative=True)
        self.assertEqual(purchase.debt_repaid_money, 3.0)
        self.assertEqual(
            self._money_rows(purchase.receipt_lines),
            self._expected_money_rows(from_meter=True, negative=True),
        )


@tagged("post_install", "-at_install")
class TestMoneySplitPos(MoneySplitMixin, TouMixin, SmartpmPosCase):
    """The POS: the credit popup's preview, the receipt screen's status and the order
    line's receipt show the money split at the sale, the meter's once delivered."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.user.groups_id += cls.env.ref("smartpm_prepay.group_manager")
        cls.money_meter = cls._money_meter(
            "POS-MONEY", cls.tenant, transformer_id=cls.transformer.id
        )

    def test_pos_preview_and_receipt_show_the_money_split(self):
        quote = self.env["smartpm.meter"].pos_quote_credit(
            self.money_meter.id, 10.0, self.config.id
        )
        self.assertFalse(quote.get("refusal"), quote.get("refusal"))
        self.assertEqual(self._money_rows(quote["receipt_lines"]), self._expected_money_rows())
        order = self._sync(self._order_data([(self.money_meter, 10.0)]))
        purchase = self._purchases(self.money_meter)
        self.assertEqual((purchase.channel, purchase.expected_emergency_repaid_money), ("pos", 2.0))
        status = self.env["pos.order"].smartpm_credit_status(order.id)
        self.assertEqual(self._money_rows(status[0]["receipt_lines"]), self._expected_money_rows())
        self.assertEqual(
            self._money_rows(order.lines.smartpm_receipt_lines), self._expected_money_rows()
        )
        self._deliver_money(purchase)
        status = self.env["pos.order"].smartpm_credit_status(order.id)
        self.assertEqual(
            self._money_rows(status[0]["receipt_lines"]),
            self._expected_money_rows(from_meter=True),
        )
