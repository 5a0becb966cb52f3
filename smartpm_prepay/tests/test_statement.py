"""Issue 16 §6: the tenant statement (services/statement.py): opening credit, purchases,
reversals, consumption and closing credit of a period of the company's local days, on
screen (wizard), as a PDF, and the same closing credit as the prepayment report."""

import shutil
import subprocess
import unittest
from datetime import timedelta

from odoo import fields
from odoo.exceptions import AccessError
from odoo.tests import Form, new_test_user, tagged

from ..services import engine, local_time, prepayment, statement
from .test_prepayment_accounting import PrepaymentCase

DAY = timedelta(days=1)


@tagged("post_install", "-at_install")
class TestTenantStatement(PrepaymentCase):
    """Company in Tokyo (UTC+9). Period: the first day of last local month to today.

    Before the period: s0 (10.00 at 0.25 = 40 kWh), 5 kWh consumed. In the period: s1 (5.00
    at 0.25 = 20 kWh, sold at 00:30 local on the first day: still the day before in UTC),
    s2 (6.00 at 0.30 = 20 kWh), s3 (3.00 at 0.30 = 10 kWh, never delivered, reversed);
    30 kWh consumed on the last day of last month and 40 kWh on the first of this month
    (5 of s0 and 20 of s1 at 0.25, 15 of s2 at 0.30)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company.partner_id.tz = "Asia/Tokyo"
        cls.today = local_time.local_today(cls.company)
        cls.month_start = cls.today.replace(day=1)
        cls.date_from, cls.last_of_month = statement.last_full_month(cls.company)

    def _at(self, purchase, day, hour=10, minute=0):
        """Date the sale at local ``day`` ``hour``:``minute`` (of the company)."""
        when = local_time.day_start_utc(self.company, day) + timedelta(hours=hour, minutes=minute)
        engine.as_engine(purchase).write({"date": when})
        return purchase

    def _deliver_at(self, purchase, day):
        purchase._on_delivered({})
        engine.as_engine(purchase).write(
            {"date_delivered": local_time.day_start_utc(self.company, day) + timedelta(hours=11)}
        )

    def _scenario(self):
        d0 = self.date_from
        self.meter.assignment_ids.date_start = local_time.day_start_utc(self.company, d0 - 10 * DAY)
        s0 = self._at(self._sell(self.meter, 10.0, "ST-0", delivered_on=None), d0 - 5 * DAY)
        self._deliver_at(s0, d0 - 5 * DAY)
        self._consume(self.meter, [d0 - 2 * DAY], 5.0)
        s1 = self._at(self._sell(self.meter, 5.0, "ST-1", delivered_on=None), d0, 0, 30)
        self._deliver_at(s1, d0 + 2 * DAY)
        self.meter.tariff_id = self.dear
        s2 = self._at(self._sell(self.meter, 6.0, "ST-2", delivered_on=None), d0 + 3 * DAY)
        self._deliver_at(s2, d0 + 3 * DAY)
        s3 = self._at(self._sell(self.meter, 3.0, "ST-3", delivered_on=None), d0 + 4 * DAY)
        s3.action_reverse()
        self.assertEqual(s3.state, "reversed")
        self._consume(self.meter, [self.last_of_month], 30.0)
        self._consume(self.meter, [self.month_start], 40.0)
        # the other tenant's sale and consumption are never in this statement
        other = self._sell(self.meter_b, 20.0, "ST-B", delivered_on=None)
        self._at(other, d0 + 1 * DAY)
        self._consume(self.meter_b, [d0 + 1 * DAY], 7.0)
        return s0, s1, s2, s3

    def _statement(self, **kw):
        return statement.tenant_statement(
            self.env, self.tenant, kw.get("date_from", self.date_from), self.today
        )

    def test_opening_purchases_reversal_consumption_add_up_to_closing(self):
        _s0, s1, s2, s3 = self._scenario()
        st = self._statement()
        self.assertEqual((st["opening_kwh"], st["opening_value"]), (35.0, 8.75))
        totals = st["totals"]
        self.assertEqual((totals["purchase"]["kwh"], totals["purchase"]["value"]), (50.0, 14.0))
        self.assertEqual((totals["reversal"]["kwh"], totals["reversal"]["value"]), (-10.0, -3.0))
        self.assertEqual(
            (totals["consumption"]["kwh"], totals["consumption"]["value"]), (-70.0, -18.25)
        )
        self.assertEqual((st["closing_kwh"], st["closing_value"]), (5.0, 1.5))
        self.assertTrue(statement.is_balanced(st))
        [section] = st["meters"]
        self.assertEqual(section["meter"], self.meter)
        purchases = [x for x in section["lines"] if x["kind"] == "purchase"]
        self.assertEqual([x["purchase_id"] for x in purchases], [s1.id, s2.id, s3.id])
        self.assertEqual([x["price_per_kwh"] for x in purchases], [0.25, 0.30, 0.30])
        self.assertEqual(purchases[0]["channel"], "Back office")
        self.assertEqual(purchases[0]["ref"], "ST-1")
        [reversal] = [x for x in section["lines"] if x["kind"] == "reversal"]
        self.assertEqual(reversal["document"], s3.credit_note_id.name)
        self.assertTrue(s3.credit_note_id)

    def test_consumption_across_the_month_boundary_is_valued_fifo_per_local_day(self):
        self._scenario()
        lines = self._statement()["meters"][0]["lines"]
        consumption = [x for x in lines if x["kind"] == "consumption"]
        self.assertEqual(
            [(x["day"], x["kwh"], x["value"]) for x in consumption],
            [(self.last_of_month, -30.0, -7.5), (self.month_start, -40.0, -10.75)],
        )
        # in time order (the reversal, made now, after the sales it reverses)
        self.assertEqual([x["time"] for x in lines], sorted(x["time"] for x in lines))

    def test_sale_just_after_local_midnight_is_in_the_local_day_not_the_utc_day(self):
        _s0, s1, *_rest = self._scenario()
        self.assertLess(s1.date.date(), self.date_from)  # the day before, in UTC
        st = self._statement()
        ids = [x.get("purchase_id") for x in st["meters"][0]["lines"]]
        self.assertIn(s1.id, ids)
        # and the statement of the month before ends without it
        before = statement.tenant_statement(
            self.env, self.tenant, self.date_from - 10 * DAY, self.date_from - DAY
        )
        self.assertEqual(before["closing_kwh"], 35.0)
        self.assertEqual(before["closing_kwh"], self._statement()["opening_kwh"])

    def test_closing_credit_equals_the_credit_balance_report(self):
        self._scenario()
        prepayment.recognise(self.company, today=self.today + DAY)
        st = self._statement()
        report = self.env["smartpm.credit.balance.report"].search(
            [("tenant_id", "=", self.tenant.id), ("company_id", "=", self.company.id)]
        )
        self.assertEqual(report.remaining_kwh, st["closing_kwh"])
        self.assertAlmostEqual(report.remaining_value, st["closing_value"])
        self.assertAlmostEqual(report.liability_balance, st["closing_value"])
        self.assertAlmostEqual(self._balance(self.liability, self.tenant), -st["closing_value"])
        # as the recognition sees it: what is left of the tenant's purchases
        purchases = self.tenant.purchase_ids.filtered(lambda p: p.state != "reversed")
        self.assertAlmostEqual(sum(purchases.mapped("kwh_remaining")), st["closing_kwh"])

    def test_taxed_sale_counts_its_untaxed_value_and_shows_what_was_paid(self):
        self.tariff.tax_ids = self.env["account.tax"].create(
            {
                "name": "VAT 15% incl.",
                "amount": 15.0,
                "type_tax_use": "sale",
                "price_include_override": "tax_included",
                "company_id": self.company.id,
            }
        )
        self.meter.assignment_ids.date_start = local_time.day_start_utc(
            self.company, self.date_from - 10 * DAY
        )
        sale = self._at(self._sell(self.meter, 11.5, "ST-TAX", delivered_on=None), self.date_from)
        self._deliver_at(sale, self.date_from)
        self._consume(self.meter, [self.last_of_month], 10.0)
        prepayment.recognise(self.company, today=self.today + DAY)
        st = self._statement()
        [purchase] = [x for x in st["meters"][0]["lines"] if x["kind"] == "purchase"]
        self.assertEqual(
            (purchase["amount"], purchase["value"], purchase["kwh"]), (11.5, 10.0, 40.0)
        )
        self.assertEqual((st["closing_kwh"], st["closing_value"]), (30.0, 7.5))
        report = self.env["smartpm.credit.balance.report"].search(
            [("tenant_id", "=", self.tenant.id), ("company_id", "=", self.company.id)]
        )
        self.assertEqual(report.remaining_kwh, 30.0)
        self.assertAlmostEqual(report.remaining_value, 7.5)

    def test_statement_of_one_meter_is_that_meters_only(self):
        self._scenario()
        other = self._meter("PRE-3", self.tenant, self.tariff)
        self._at(self._sell(other, 2.0, "ST-O", delivered_on=None), self.date_from + DAY)
        both = self._statement()
        self.assertEqual([s["meter"] for s in both["meters"]], [self.meter, other])
        self.assertEqual(both["closing_kwh"], 13.0)
        one = statement.tenant_statement(
            self.env, self.tenant, self.date_from, self.today, meter=other
        )
        self.assertEqual([s["meter"] for s in one["meters"]], [other])
        self.assertEqual((one["opening_kwh"], one["closing_kwh"]), (0.0, 8.0))

    def test_a_new_line_kind_is_one_provider(self):
        self._scenario()

        def forfeit(scope):
            yield statement.make_line(
                "forfeit",
                local_time.day_start_utc(self.company, self.today),
                self.meter,
                -5.0,
                -1.5,
                "Forfeited at move-out",
            )

        st = statement.tenant_statement(
            self.env,
            self.tenant,
            self.date_from,
            self.today,
            providers=[*statement.LINE_PROVIDERS, forfeit],
        )
        self.assertEqual(st["totals"]["forfeit"]["kwh"], -5.0)
        html = self.env["ir.qweb"]._render("smartpm_prepay.statement_body", {"statement": st})
        self.assertIn("Forfeited at move-out", html)
        self.assertIn("Forfeit", html.split("o_smartpm_statement_total_forfeit")[1])
        self.assertEqual((st["closing_kwh"], st["closing_value"]), (0.0, 0.0))
        self.assertTrue(statement.is_balanced(st))

    def test_default_period_is_the_last_full_local_month(self):
        wizard = Form(self.env["smartpm.tenant.statement.wizard"])
        self.assertEqual(wizard.date_from, self.date_from)
        self.assertEqual(wizard.date_to, self.last_of_month)
        self.assertEqual(self.last_of_month + DAY, self.month_start)

    def test_wizard_shows_the_lines_on_screen(self):
        self._scenario()
        wizard = self.env["smartpm.tenant.statement.wizard"].create(
            {"tenant_id": self.tenant.id, "date_from": self.date_from, "date_to": self.today}
        )
        html = str(wizard.statement_html)
        self.assertIn("Esi Prepay", html)
        self.assertIn("ST-2", html)
        self.assertIn(
            wizard.tenant_id.purchase_ids.filtered("credit_note_id").credit_note_id.name, html
        )
        self.assertNotIn("ST-B", html)
        self.env.company.external_report_layout_id = self.env.ref("web.external_layout_standard")
        action = wizard.action_print()
        self.assertEqual(action["report_name"], "smartpm_prepay.report_tenant_statement")
        self.assertEqual(action["data"]["date_to"], fields.Date.to_string(self.today))

    def test_statement_button_opens_the_wizard_for_the_tenant(self):
        action = self.env.ref("smartpm_prepay.action_tenant_statement_wizard")
        arch = self.env["res.partner"].get_view(
            self.env.ref("smartpm_prepay.view_tenant_form").id, "form"
        )["arch"]
        self.assertIn(f'name="{action.id}"', arch)
        self.assertIn("Statement", arch)

    # ------------------------------------------------------------------ access
    def test_cashier_sees_tenants_of_their_company_only(self):
        self._scenario()
        cashier = new_test_user(
            self.env,
            "stmt_cashier",
            groups="smartpm_prepay.group_cashier",
            company_id=self.company.id,
            company_ids=[self.company.id],
        )
        wizard = (
            self.env["smartpm.tenant.statement.wizard"]
            .with_user(cashier)
            .create(
                {"tenant_id": self.tenant.id, "date_from": self.date_from, "date_to": self.today}
            )
        )
        self.assertIn("ST-2", str(wizard.statement_html))
        company_2 = self.company_data_2["company"]
        cashier_2 = new_test_user(
            self.env,
            "stmt_cashier_2",
            groups="smartpm_prepay.group_cashier",
            company_id=company_2.id,
            company_ids=[company_2.id],
        )
        st = statement.tenant_statement(
            self.env(user=cashier_2), self.tenant.with_user(cashier_2), self.date_from, self.today
        )
        self.assertEqual(st["meters"], [])
        self.assertEqual((st["closing_kwh"], st["closing_value"]), (0.0, 0.0))

    def test_portal_user_cannot_open_the_wizard_nor_render_anothers_pdf(self):
        self._scenario()
        portal = new_test_user(
            self.env, "stmt_portal_b", groups="base.group_portal", partner_id=self.tenant_b.id
        )
        with self.assertRaises(AccessError):
            self.env["smartpm.tenant.statement.wizard"].with_user(portal).create(
                {"tenant_id": self.tenant.id, "date_from": self.date_from, "date_to": self.today}
            )
        with self.assertRaises(AccessError):
            self.env["ir.actions.report"].with_user(portal)._render_qweb_html(
                "smartpm_prepay.report_tenant_statement", self.tenant.ids
            )
        self.assertFalse(self.env["smartpm.tenant.statement.wizard"].search([]))

    # ------------------------------------------------------------------ PDF
    @unittest.skipUnless(shutil.which("pdftotext"), "pdftotext (poppler-utils) is not installed")
    def test_pdf_shows_the_tenant_and_the_figures(self):
        self._scenario()
        report = self.env["ir.actions.report"].with_context(force_report_rendering=True)
        pdf, kind = report._render_qweb_pdf(
            "smartpm_prepay.report_tenant_statement",
            self.tenant.ids,
            data={
                "date_from": fields.Date.to_string(self.date_from),
                "date_to": fields.Date.to_string(self.today),
            },
        )
        self.assertEqual(kind, "pdf")
        self.assertTrue(pdf.startswith(b"%PDF"))
        text = subprocess.run(
            ["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True
        ).stdout.decode()
        self.assertIn("Esi Prepay", text)
        self.assertIn("PRE-1", text)
        self.assertIn("ST-2", text)
        self.assertIn("35.000 kWh", text)  # opening
        self.assertIn("5.000 kWh", text)  # closing
        self.assertIn("-40.000", text)  # the first day of this month's consumption
        self.assertNotIn("ST-B", text)
