"""The demo's owner prints the day's vending report after the demo cashier's sales.

As ``cashier`` (the demo's user and rights) two sales in the back office's *Sell credit*
wizard; as the owner (``admin``) the *Daily vending report* menu, its wizard and its Print
button's PDF. Its figures are the back office's: the
purchases list of the day and the payments booked that day. The cashier prints his own.
"""

import shutil
import subprocess
import unittest

from odoo.tests import Form, tagged

from ...services import local_time
from ..common import assert_payment_document
from .common import DemoJourneyCase


def _pdf_text(pdf):
    return subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode()


def _money(value):
    return f"{value:,.2f}"


@tagged("post_install", "-at_install")
@unittest.skipUnless(shutil.which("pdftotext"), "pdftotext (poppler-utils) is not installed")
class TestDailyVendingJourney(DemoJourneyCase):
    def _sell_as_cashier(self, meter, amount, user=None):
        wizard = Form(
            self.env["smartpm.sell.credit.wizard"]
            .with_user(user or self.cashier)
            .with_context(default_meter_id=meter.id)
        )
        wizard.amount = amount
        action = wizard.save().action_confirm()
        return self.env["smartpm.credit.purchase"].browse(action["res_id"])

    def _print(self, user, wizard):
        """What the Print button gives ``user``: the report action, then its PDF, as text."""
        action = wizard.with_user(user).action_print()
        # the demo company has a document layout: Print prints at once (no "Configure your
        # document layout" dialog first)
        self.assertEqual(action.get("type"), "ir.actions.report", action)
        self.assertEqual(action["report_name"], "smartpm_prepay.report_daily_vending")
        # read with the user's rights (the record rules say whose figures they may print)
        self.env["ir.actions.report"].with_user(user)._render_qweb_html(
            action["report_name"], wizard.ids
        )
        # Odoo's test mode serves reports as HTML, and wkhtmltopdf would call back this
        # server (held by the test) for the styles and print blank pages: the PDF as the
        # route renders it, with the styles' address refused at once (text unchanged)
        self.env["ir.config_parameter"].sudo().set_param("report.url", "http://127.0.0.1:9")
        pdf, kind = (
            self.env["ir.actions.report"]
            .sudo()
            .with_context(force_report_rendering=True)
            ._render_qweb_pdf(action["report_name"], wizard.ids)
        )
        self.assertEqual(kind, "pdf")
        return _pdf_text(pdf)

    @staticmethod
    def _section_rows(text, name):
        """The lines of the report's section ``name``: its seller rows, up to its total (whose
        label may wrap in its cell)."""
        lines = text.splitlines()
        start = lines.index(name)
        end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("Total "))
        return lines[start + 1 : end]

    def test_demo_sales_name_who_sold_them(self):
        """The demo's own sales read like real ones on the owner's report of their day: the
        register's sale is the demo cashier's, the bank's names the demo bank."""
        Purchase = self.env["smartpm.credit.purchase"].with_user(self.owner)
        pos = Purchase.search([("channel", "=", "pos"), ("external_ref", "=", "DEMO-POS-0001")])
        bank_sale = Purchase.search(
            [("channel", "=", "bank_xmlrpc"), ("bank_reference", "=", "DEMO-BANK-0001")]
        )
        self.assertEqual(len(pos), 1)
        self.assertEqual(len(bank_sale), 1)
        demo_bank = self.env.ref("smartpm_prepay.demo_bank")
        self.assertEqual(bank_sale.bank_partner_id, demo_bank)
        # paid in the bank's settlement journal, as the bank API's sales are
        assert_payment_document(self, bank_sale, demo_bank.smartpm_bank_journal_id)

        company = pos.company_id
        wizard = (
            self.env["smartpm.daily.vending.wizard"]
            .with_user(self.owner)
            .create({"date": local_time.local_today(company, pos.date)})
        )
        text = self._print(self.owner, wizard)
        channels = dict(Purchase._fields["channel"]._description_selection(self.env))
        pos_rows = self._section_rows(text, channels["pos"])
        self.assertTrue(any(row.startswith(self.cashier.name) for row in pos_rows), pos_rows)
        bank_rows = self._section_rows(text, channels["bank_xmlrpc"])
        self.assertTrue(any(row.startswith(demo_bank.name) for row in bank_rows), bank_rows)
        self.assertNotIn(self.env.ref("base.user_root").name, text)  # OdooBot sold nothing
        self.assertNotIn("(no bank)", text)

    def test_owner_prints_the_days_report_equal_to_the_back_office(self):
        meter = self.env.ref("smartpm_prepay.demo_meter_03")
        self._sell_as_cashier(meter, 12.0)
        self._sell_as_cashier(meter, 8.0)
        company = meter.company_id
        # the owner's menu and wizard: today, every channel and seller
        menu = self.env.ref("smartpm_prepay.menu_daily_vending_report")
        self.assertIn(menu.id, self.env["ir.ui.menu"].with_user(self.owner)._visible_menu_ids())
        action = menu.action.sudo().read()[0]
        wizard = self.env[action["res_model"]].with_user(self.owner).create({})
        today = local_time.local_today(company)
        self.assertEqual(wizard.date, today)
        self.assertFalse(wizard.user_id)
        text = self._print(self.owner, wizard)

        # the back office's figures of the day, as the owner reads them
        start, end = local_time.day_bounds_utc(company, today)
        Purchase = self.env["smartpm.credit.purchase"].with_user(self.owner)
        day_domain = [("company_id", "=", company.id), ("date", ">=", start), ("date", "<", end)]
        sold = Purchase.search(day_domain + [("channel", "not in", ("fbe", "transfer"))])
        office = sold.filtered(lambda p: p.channel == "backoffice")
        cashier_sales = office.filtered(lambda p: p.create_uid == self.cashier)
        self.assertEqual(len(cashier_sales), 2)
        self.assertIn(f"Daily vending report {today}", text)
        self.assertIn(self.cashier.name, text)
        # his back-office row (the demo's register sale is his too, in its own section)
        cashier_line = next(
            line
            for line in self._section_rows(text, "Back office")
            if line.startswith(self.cashier.name)
        )
        self.assertIn(_money(sum(cashier_sales.mapped("amount"))), cashier_line)
        total_line = next(line for line in text.splitlines() if "Grand total" in line)
        self.assertIn(f" {len(sold)} ", f" {total_line} ")
        self.assertIn(_money(sum(sold.mapped("amount"))), total_line)
        # the payments booked today of the back office's sales are the report's figure
        payments = (
            self.env["account.payment"]
            .with_user(self.owner)
            .search([("memo", "in", office.mapped("name")), ("payment_type", "=", "inbound")])
        )
        self.assertEqual(set(payments.mapped("date")), {today})
        office_line = next(
            line for line in text.splitlines() if line.strip().startswith("Total Back office")
        )
        self.assertIn(_money(sum(payments.mapped("amount"))), office_line)

    def test_demo_cashier_prints_his_own_figures(self):
        meter = self.env.ref("smartpm_prepay.demo_meter_03")
        mine = self._sell_as_cashier(meter, 12.0) | self._sell_as_cashier(meter, 7.25)
        theirs = self._sell_as_cashier(meter, 31.0, user=self.owner)  # not the cashier's
        self.env["smartpm.daily.vending.wizard"].with_user(self.owner).create({})
        wizard = self.env["smartpm.daily.vending.wizard"].with_user(self.cashier).create({})
        self.assertEqual(wizard.user_id, self.cashier)
        text = self._print(self.cashier, wizard)

        # every sale the cashier took today on the demo: in the back office (he sold it) and
        # at a register (his POS orders), read by the owner from the purchases list
        company = meter.company_id
        start, end = local_time.day_bounds_utc(company, local_time.local_today(company))
        day = (
            self.env["smartpm.credit.purchase"]
            .with_user(self.owner)
            .search([("company_id", "=", company.id), ("date", ">=", start), ("date", "<", end)])
        )
        own = day.filtered(
            lambda p: (
                p.create_uid == self.cashier
                if p.channel == "backoffice"
                # the POS order's cashier, else who recorded the sale (the demo's register sale)
                else p.channel == "pos"
                and (p.pos_order_line_id.order_id.user_id or p.create_uid) == self.cashier
            )
        )
        self.assertTrue(mine <= own)
        self.assertFalse(theirs & own)
        lines = text.splitlines()
        self.assertIn(f"Cashier: {self.cashier.name}", text)
        # each channel he sold in: its total is his sales there (names wrap in the cells)
        for channel in set(own.mapped("channel")):
            sold = own.filtered(lambda p, c=channel: p.channel == c)
            self.assertIn(_money(sum(sold.mapped("amount"))), text, channel)
        # the page's total: his count, money received and kWh sold, nobody else's
        received = sum(own.mapped("amount"))
        total_line = next(line for line in lines if "Grand total" in line)
        self.assertIn(f" {len(own)} ", f" {total_line} ")
        self.assertIn(_money(received), total_line)
        self.assertIn(f"{sum(own.mapped('kwh')):.3f}", total_line)
        # nobody else's figures: not the owner's sale, nor the other channels
        self.assertNotIn(self.owner.name, text)
        self.assertNotIn(_money(received + theirs.amount), text)
        self.assertNotIn("Bank (", text)
        self.assertNotIn("Monthly grant", text)
