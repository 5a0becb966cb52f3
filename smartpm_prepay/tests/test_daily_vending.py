"""The daily vending report: a company's local day of sales per channel and seller, equal to
the books of that day, a cashier's own figures only, the same whenever printed."""

import shutil
import subprocess
import unittest
from datetime import date, datetime
from unittest.mock import patch

from freezegun import freeze_time

from odoo.addons.account.tests.common import AccountTestInvoicingCommon
from odoo.exceptions import AccessError
from odoo.tests import Form, new_test_user, tagged

from ..services import daily_vending, fbe, local_time, standing_charge
from ..services.vending import vend
from .test_pos import SmartpmPosCase
from .test_tou import TouMixin

DAY = date(2026, 11, 20)
# Africa/Johannesburg is UTC+2 all year: 23:30 local on the 20th is 21:30 UTC on the 20th,
# 00:30 local on the 21st is 22:30 UTC on the 20th (a UTC day would count it on the 20th)
TZ = "Africa/Johannesburg"


@tagged("post_install", "-at_install")
class TestDailyVending(TouMixin, AccountTestInvoicingCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company = cls.company_data["company"]
        cls.company.partner_id.tz = TZ
        # a layout chosen (else Print opens Odoo's document layout wizard first)
        cls.company.external_report_layout_id = cls.env.ref("web.external_layout_standard")
        cls.company.write({"smartpm_min_amount": 1.0, "smartpm_max_amount": 1000.0})
        cls.env.user.groups_id += cls.env.ref("smartpm_prepay.group_manager")
        cls.tariff = cls.env["smartpm.tariff"].create({"name": "Flat", "price_per_kwh": 0.25})
        cls.tenant = cls.env["res.partner"].create({"name": "Esi", "is_tenant": True})
        cls.meter = cls.env["smartpm.meter"].create(
            {
                "serial_number": "DV-1",
                "host": "127.0.0.1",
                "port": 4100,
                "state": "active",
                "tenant_id": cls.tenant.id,
                "tariff_id": cls.tariff.id,
            }
        )
        groups = "smartpm_prepay.group_operator,account.group_account_invoice"
        cls.ama = new_test_user(
            cls.env, "dv_ama", name="Ama Cashier", groups=groups, company_id=cls.company.id, tz=TZ
        )
        cls.kofi = new_test_user(
            cls.env, "dv_kofi", name="Kofi Cashier", groups=groups, company_id=cls.company.id, tz=TZ
        )
        cls.owner = new_test_user(
            cls.env,
            "dv_owner",
            name="Owner",
            groups="smartpm_prepay.group_manager,account.group_account_invoice",
            company_id=cls.company.id,
            tz=TZ,
        )
        cls.bank = cls.env["res.partner"].create({"name": "Sunrise Bank", "is_company": True})
        cls.cash = cls.company_data["default_journal_cash"]
        cls.bank_journal = cls.company_data["default_journal_bank"]

    def _sell(self, user, amount, when, meter=None):
        with freeze_time(when):
            wizard = Form(
                self.env["smartpm.sell.credit.wizard"]
                .with_user(user)
                .with_context(default_meter_id=(meter or self.meter).id)
            )
            wizard.amount = amount
            wizard.journal_id = self.cash
            action = wizard.save().action_confirm()
        return self.env["smartpm.credit.purchase"].browse(action["res_id"])

    def _scenario(self):
        """The 20th: Ama sells 20.00 at 08:00 and reverses it at 15:00, the bank sells 30.00
        at 12:00, Kofi sells 10.00 at 23:30; Ama sells 5.00 at 00:30 on the 21st."""
        s1 = self._sell(self.ama, 20.0, datetime(2026, 11, 20, 6, 0))
        with freeze_time(datetime(2026, 11, 20, 10, 0)):
            s4 = vend(
                self.env(su=True), self.meter, 30.0, "bank_xmlrpc", "DV-B1", bank_partner=self.bank
            )
            s4._create_invoice_and_payment(self.bank_journal)
        with freeze_time(datetime(2026, 11, 20, 13, 0)):
            s1.with_user(self.ama).action_reverse()
        self.assertEqual(s1.state, "reversed")
        s2 = self._sell(self.kofi, 10.0, datetime(2026, 11, 20, 21, 30))
        s3 = self._sell(self.ama, 5.0, datetime(2026, 11, 20, 22, 30))
        return s1, s2, s3, s4

    def _report(self, user=None, **kw):
        return daily_vending.daily_vending(
            self.env, self.company, kw.pop("day", DAY), kw.pop("channel", None), user
        )

    def _section(self, report, channel):
        [section] = [s for s in report["sections"] if s["channel"] == channel]
        return section

    def _pdf_text(self, wizard, user):
        report = (
            self.env["ir.actions.report"].with_user(user).with_context(force_report_rendering=True)
        )
        pdf, kind = report._render_qweb_pdf("smartpm_prepay.report_daily_vending", wizard.ids)
        self.assertEqual(kind, "pdf")
        return subprocess.run(
            ["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True
        ).stdout.decode()

    # ------------------------------------------------------------------ figures
    def test_day_is_the_company_local_day(self):
        s1, s2, s3, s4 = self._scenario()
        report = self._report()
        self.assertEqual(report["sales"], s1 | s2 | s4)  # 23:30 local in, 00:30 the next day out
        total = report["total"]
        self.assertEqual(total["count"], 3)
        self.assertAlmostEqual(total["amount"], 60.0)
        self.assertAlmostEqual(total["credit_kwh"], 240.0)
        self.assertEqual(total["reversal_count"], 1)
        self.assertAlmostEqual(total["reversal_amount"], 20.0)
        self.assertAlmostEqual(total["net"], 40.0)
        office = self._section(report, "backoffice")
        self.assertEqual(
            [(r["seller"], r["count"], r["amount"]) for r in office["rows"]],
            [("Ama Cashier", 1, 20.0), ("Kofi Cashier", 1, 10.0)],
        )
        bank = self._section(report, "bank_xmlrpc")
        self.assertEqual(
            [(r["seller"], r["amount"]) for r in bank["rows"]], [("Sunrise Bank", 30.0)]
        )
        next_day = self._report(day=date(2026, 11, 21))
        self.assertEqual(next_day["sales"], s3)
        self.assertEqual(next_day["total"]["reversal_count"], 0)

    def test_totals_equal_the_payments_and_credit_notes_of_the_day(self):
        self._scenario()
        report = self._report()
        payments = self.env["account.payment"].search(
            [
                ("company_id", "=", self.company.id),
                ("date", "=", DAY),
                ("payment_type", "=", "inbound"),
                ("state", "!=", "draft"),
            ]
        )
        self.assertEqual(len(payments), 3)  # each sale counted once
        self.assertAlmostEqual(report["total"]["amount"], sum(payments.mapped("amount")))
        self.assertEqual(set(payments.mapped("memo")), set(report["sales"].mapped("name")))
        notes = self.env["account.move"].search(
            [
                ("company_id", "=", self.company.id),
                ("move_type", "=", "out_refund"),
                ("state", "=", "posted"),
                ("invoice_date", "=", DAY),
            ]
        )
        self.assertAlmostEqual(
            report["total"]["reversal_amount"], sum(notes.mapped("amount_total"))
        )
        for section in report["sections"]:
            for figure in ("count", "amount", "net"):
                self.assertAlmostEqual(
                    section["total"][figure], sum(r[figure] for r in section["rows"])
                )

    def test_reversal_of_a_sale_that_recovered_debt_gives_back_the_whole_amount(self):
        debt = self.env["smartpm.tenant.debt"].create(
            {
                "tenant_id": self.tenant.id,
                "company_id": self.company.id,
                "description": "Arrears",
                "amount": 30.0,
                "recovery_rule": "fixed",
                "recovery_fixed": 30.0,
            }
        )
        debt.action_confirm()
        sale = self._sell(self.ama, 50.0, datetime(2026, 11, 20, 6, 0))
        self.assertEqual((sale.debt_recovered, sale.credit_amount), (30.0, 20.0))
        with freeze_time(datetime(2026, 11, 20, 13, 0)):
            sale.with_user(self.ama).action_reverse()
        self.assertEqual(debt.balance, 30.0)  # owed again
        total = self._report()["total"]
        # the books of the day: the payment (50.00 in the cash journal) and the credit note
        # (the credit part, 20.00); the debt's invoice is open again, so the 30.00 recovered
        # is owed back too (the payment's open rest): the tenant gets the whole 50.00 back
        payments = self.env["account.payment"].search(
            [("memo", "=", sale.name), ("payment_type", "=", "inbound")]
        )
        note = sale.credit_note_id
        self.assertEqual((note.amount_total, note.invoice_date), (20.0, DAY))
        self.assertEqual(payments.date, DAY)
        self.assertAlmostEqual(total["amount"], payments.amount)
        payment_rest = -sum(
            payments.move_id.line_ids.filtered(
                lambda line: line.account_id.account_type == "asset_receivable"
            ).mapped("amount_residual")
        )
        self.assertAlmostEqual(payment_rest, 30.0)
        self.assertAlmostEqual(total["reversal_amount"], note.amount_total + payment_rest)
        self.assertAlmostEqual(total["debt_restored"], 30.0)
        self.assertAlmostEqual(total["net"], 0.0)
        self.assertEqual(debt.invoice_id.amount_residual, 30.0)

    def test_sale_near_midnight_is_booked_on_the_company_day_whatever_the_users_tz(self):
        # the user's time zone is UTC, the company's UTC+2: 22:30 UTC on the 20th is 00:30
        # on the 21st for the company, the day the report counts the sale
        self.kofi.tz = "UTC"
        sale = self._sell(self.kofi, 10.0, datetime(2026, 11, 20, 22, 30))
        next_day = date(2026, 11, 21)
        self.assertEqual(sale.invoice_id.invoice_date, next_day)
        payments = self.env["account.payment"].search(
            [("memo", "=", sale.name), ("payment_type", "=", "inbound")]
        )
        self.assertEqual(payments.date, next_day)
        self.assertEqual(self._report(day=next_day)["sales"], sale)
        self.assertFalse(self._report()["sales"] & sale)
        # reversed at 23:10 UTC (01:10 on the 21st, local): the credit note is the 21st's too
        with freeze_time(datetime(2026, 11, 20, 23, 10)):
            sale.with_user(self.kofi).action_reverse()
        self.assertEqual(sale.credit_note_id.invoice_date, next_day)
        self.assertEqual(sale.credit_note_id.date, next_day)
        self.assertAlmostEqual(self._report(day=next_day)["total"]["reversal_amount"], 10.0)

    def test_money_meter_row_counts_currency_not_kwh(self):
        tou = self._tou_tariff("DV time of use")
        tenant = self.env["res.partner"].create({"name": "Kwame TOU", "is_tenant": True})
        money_meter = self.env["smartpm.meter"].create(
            {
                "serial_number": "DV-M",
                "host": "127.0.0.1",
                "port": 4100,
                "state": "active",
                "tenant_id": tenant.id,
                "tariff_id": tou.id,
                "credit_mode": "money",
            }
        )
        money = self._sell(self.ama, 12.0, datetime(2026, 11, 20, 7, 0), meter=money_meter)
        kwh = self._sell(self.ama, 5.0, datetime(2026, 11, 20, 8, 0))
        self.assertEqual((money.credit_mode, money.credit_money), ("money", 12.0))
        [row] = self._section(self._report(), "backoffice")["rows"]
        self.assertEqual((row["seller"], row["count"]), ("Ama Cashier", 2))
        self.assertAlmostEqual(row["amount"], 17.0)
        self.assertAlmostEqual(row["credit_money"], money.credit_money)
        self.assertAlmostEqual(row["credit_kwh"], kwh.kwh)  # the kWh meter's sale only
        self.assertAlmostEqual(kwh.kwh, 20.0)

    def test_free_basic_electricity_is_its_own_row_with_no_money(self):
        social = self.env["smartpm.tariff"].create(
            {"name": "DV lifeline", "price_per_kwh": 0.25, "fbe_social": True, "fbe_kwh_month": 30}
        )
        tenant = self.env["res.partner"].create({"name": "Thandi Social", "is_tenant": True})
        self.env["smartpm.meter"].create(
            {
                "serial_number": "DV-F",
                "host": "127.0.0.1",
                "port": 4100,
                "state": "active",
                "tenant_id": tenant.id,
                "tariff_id": social.id,
            }
        )
        with freeze_time(datetime(2026, 11, 20, 7, 0)):
            granted = fbe.grant_due(self.env, self.company)["granted"]
            self.assertFalse(fbe.grant_due(self.env, self.company)["granted"])  # once
        self.assertEqual(len(granted), 1)
        report = self._report()
        section = self._section(report, "fbe")
        [row] = section["rows"]
        self.assertEqual(
            (row["seller"], row["fbe_count"], row["fbe_kwh"]), ("Monthly grant", 1, 30)
        )
        self.assertEqual((row["count"], row["amount"], row["net"]), (0, 0.0, 0.0))
        self.assertEqual(report["total"]["fbe_kwh"], 30.0)
        self.assertEqual(report["total"]["amount"], 0.0)
        self.assertEqual(report["sales"], granted)

    def test_standing_charges_are_listed_apart_on_the_day_collected(self):
        self.tariff.write({"standing_charge_amount": 1.5, "standing_charge_period": "day"})
        self._sell(self.ama, 20.0, datetime(2026, 11, 19, 8, 0))
        with freeze_time(datetime(2026, 11, 20, 7, 0)):
            queued = standing_charge.collect_due(self.env, self.company)["queued"]
        self.assertTrue(queued)
        with freeze_time(datetime(2026, 11, 20, 21, 45)):  # 23:45 local: the 20th
            for charge in queued:
                standing_charge.on_cleared(charge, charge.job_id, {"cleared_kwh": charge.kwh})
        self.assertEqual(set(queued.mapped("state")), {"collected"})
        report = self._report()
        self.assertEqual(report["standing_charge_count"], len(queued))
        self.assertAlmostEqual(report["standing_charge_amount"], sum(queued.mapped("amount")))
        self.assertAlmostEqual(report["standing_charge_kwh"], sum(queued.mapped("kwh")))
        self.assertAlmostEqual(report["standing_charge_amount"], 1.5 * len(queued))
        # not a sale: no seller's row, no money received that day
        self.assertEqual(report["total"]["amount"], 0.0)
        self.assertEqual(self._report(day=date(2026, 11, 21))["standing_charge_count"], 0)
        # a cashier's own report has none
        self.assertEqual(self._report(user=self.ama)["standing_charge_count"], 0)

    def test_print_sums_the_day_once(self):
        self._scenario()
        wizard = (
            self.env["smartpm.daily.vending.wizard"].with_user(self.owner).create({"date": DAY})
        )
        with patch.object(
            daily_vending, "daily_vending", wraps=daily_vending.daily_vending
        ) as summed:
            action = wizard.action_print()
            self.env["ir.actions.report"].with_user(self.owner)._render_qweb_html(
                action["report_name"], wizard.ids
            )
        self.assertEqual(summed.call_count, 1)

    def test_channel_filter_keeps_one_channel(self):
        self._scenario()
        report = self._report(channel="bank_xmlrpc")
        self.assertEqual([s["channel"] for s in report["sections"]], ["bank_xmlrpc"])
        self.assertAlmostEqual(report["total"]["amount"], 30.0)

    # ------------------------------------------------------------------ access
    def test_cashier_prints_own_figures_only(self):
        self._scenario()
        Wizard = self.env["smartpm.daily.vending.wizard"].with_user(self.ama)
        form = Form(Wizard)  # the menu's form, as the cashier sees it
        form.date = DAY
        wizard = form.save()
        self.assertEqual(wizard.user_id, self.ama)  # the default: oneself
        self.assertEqual(
            wizard.action_print()["report_name"], "smartpm_prepay.report_daily_vending"
        )
        report = wizard._get_report()
        self.assertEqual([s["channel"] for s in report["sections"]], ["backoffice"])
        self.assertEqual(
            [(r["seller"], r["count"]) for r in report["sections"][0]["rows"]], [("Ama Cashier", 1)]
        )
        with self.assertRaises(AccessError):
            Wizard.create({"date": DAY, "user_id": self.kofi.id})
        with self.assertRaises(AccessError):
            Wizard.create({"date": DAY, "user_id": False})
        with self.assertRaises(AccessError):
            wizard.write({"user_id": self.kofi.id})
        # the owner's wizard (everyone's figures) printed by the cashier
        everyone = (
            self.env["smartpm.daily.vending.wizard"].with_user(self.owner).create({"date": DAY})
        )
        self.assertFalse(everyone.user_id)
        with self.assertRaises(AccessError):
            self.env["ir.actions.report"].with_user(self.ama)._render_qweb_html(
                "smartpm_prepay.report_daily_vending", everyone.ids
            )

    def test_owner_prints_anyones_figures(self):
        self._scenario()
        Wizard = self.env["smartpm.daily.vending.wizard"].with_user(self.owner)
        kofi = Wizard.create({"date": DAY, "user_id": self.kofi.id})
        self.assertEqual(kofi._get_report()["total"]["amount"], 10.0)
        self.assertEqual(Wizard.create({"date": DAY})._get_report()["total"]["count"], 3)

    # ------------------------------------------------------------------ PDF
    @unittest.skipUnless(shutil.which("pdftotext"), "pdftotext (poppler-utils) is not installed")
    def test_pdf_shows_the_day_per_channel_and_seller_and_reprints_the_same(self):
        _s1, _s2, s3, _s4 = self._scenario()
        wizard = (
            self.env["smartpm.daily.vending.wizard"].with_user(self.owner).create({"date": DAY})
        )
        text = self._pdf_text(wizard, self.owner)
        for expected in (
            "Daily vending report 2026-11-20",
            TZ,
            "Back office",
            "Ama Cashier",
            "Kofi Cashier",
            "Bank (XML-RPC)",
            "Sunrise Bank",
            "Grand total",
            "240.000",
            "Standing charges collected from credit",
        ):
            self.assertIn(expected, text)
        total_line = next(line for line in text.splitlines() if "Grand total" in line)
        self.assertIn("60.00", total_line)
        self.assertIn("40.00", total_line)
        # the next day goes on (a sale reversed, another sold): the 20th prints the same
        with freeze_time(datetime(2026, 11, 21, 9, 0)):
            s3.action_reverse()
        self._sell(self.kofi, 7.0, datetime(2026, 11, 21, 10, 0))
        wizard_again = (
            self.env["smartpm.daily.vending.wizard"].with_user(self.owner).create({"date": DAY})
        )
        self.assertEqual(self._pdf_text(wizard_again, self.owner), text)

    @unittest.skipUnless(shutil.which("pdftotext"), "pdftotext (poppler-utils) is not installed")
    def test_cashier_pdf_shows_their_name_only(self):
        self._scenario()
        wizard = self.env["smartpm.daily.vending.wizard"].with_user(self.kofi).create({"date": DAY})
        wizard.with_user(self.kofi).action_print()
        text = self._pdf_text(wizard, self.kofi)
        self.assertIn("Kofi Cashier", text)
        self.assertNotIn("Ama Cashier", text)
        self.assertNotIn("Sunrise Bank", text)


@tagged("post_install", "-at_install")
class TestDailyVendingPos(SmartpmPosCase):
    def test_pos_sale_is_the_row_of_the_orders_cashier(self):
        order = self._sync(self._order_data([(self.meter, 10.0)]))
        purchase = self._purchases()
        self.assertEqual(purchase.channel, "pos")
        company = purchase.company_id
        day = local_time.local_today(company, purchase.date)
        report = daily_vending.daily_vending(self.env, company, day)
        [section] = [s for s in report["sections"] if s["channel"] == "pos"]
        [row] = section["rows"]
        self.assertEqual(row["seller"], order.user_id.name)
        self.assertEqual(row["count"], 1)
        self.assertAlmostEqual(row["amount"], order.amount_total)
        self.assertAlmostEqual(row["credit_kwh"], purchase.kwh)
        self.assertAlmostEqual(purchase.kwh, 20.0)  # 10.00 at 0.50
        # the order's cashier prints it as their own
        own = daily_vending.daily_vending(self.env, company, day, user=order.user_id)
        self.assertAlmostEqual(own["total"]["amount"], 10.0)
