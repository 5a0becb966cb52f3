"""Screens of amina's portal that no other journey opens: her notification preferences
(changed, saved, shown again as saved) and the receipt of one of her purchases, on the page
and as the PDF she downloads. Every figure is read from what she gets (the HTML, the
PDF's text) and compared with the back office's purchase record, unit for unit."""

import os
import subprocess
import tempfile

from lxml import html

from odoo.tests import tagged

from .common import RETRY_LATER, DemoBridgeMixin, DemoJourneyCase
from .test_tenant_journey import select, text_of


def pdf_text(content):
    """The text of a PDF, as pdftotext reads it (one line per line of the page)."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "receipt.pdf")
        with open(path, "wb") as file:
            file.write(content)
        return subprocess.run(
            ["pdftotext", "-layout", path, "-"], check=True, capture_output=True, text=True
        ).stdout


@tagged("post_install", "-at_install")
class TestTenantScreensJourney(DemoBridgeMixin, DemoJourneyCase):
    BRIDGE = "journey-tenant-screens-bridge"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tenant = cls.amina.partner_id.commercial_partner_id
        cls.meter = cls.env.ref("smartpm_prepay.demo_meter_01")
        cls.other_meter = cls.env.ref("smartpm_prepay.demo_meter_02")

    def setUp(self):
        super().setUp()
        self.authenticate("amina", "amina")

    def _get(self, url, status=200):
        response = self.url_open(url)
        self.assertEqual(response.status_code, status, url)
        return response

    def _money(self, amount):
        currency = self.meter.company_id.currency_id
        number = f"{amount:,.{currency.decimal_places}f}"
        if currency.position == "after":
            return f"{number} {currency.symbol}"
        return f"{currency.symbol} {number}"

    # ------------------------------------------------------------------ notifications
    def _preferences_shown(self, doc):
        boxes = {
            name: select(doc, f"input#{name}")[0]
            for name in ("smartpm_notify_email", "smartpm_notify_sms")
        }
        return {name: box.get("checked") is not None for name, box in boxes.items()}

    def test_amina_changes_her_notification_preferences_and_sees_them_saved(self):
        tenant = self.tenant.sudo()
        before = (tenant.smartpm_notify_email, tenant.smartpm_notify_sms)
        response = self._get("/my/notifications")
        doc = html.fromstring(response.text)
        self.assertEqual(
            self._preferences_shown(doc),
            {"smartpm_notify_email": before[0], "smartpm_notify_sms": before[1]},
        )
        # her own address and number, as her account holds them
        self.assertIn(tenant.email, text_of(doc))
        self.assertIn(tenant.mobile or tenant.phone, text_of(doc))
        # the portal home and her account details lead here
        home = html.fromstring(self._get("/my/home").text)
        self.assertTrue(select(home, "a[href='/my/notifications']"), "portal home entry")
        account = html.fromstring(self._get("/my/account").text)
        self.assertTrue(select(account, "a[href='/my/notifications']"), "account link")

        # she turns e-mail off and SMS on (the opposite of each), and saves
        wanted = (not before[0], not before[1])
        csrf = select(doc, "form[action='/my/notifications'] input")[0].get("value")
        data = {"csrf_token": csrf}
        if wanted[0]:
            data["smartpm_notify_email"] = "1"
        if wanted[1]:
            data["smartpm_notify_sms"] = "1"
        response = self.url_open("/my/notifications", data=data)
        self.assertEqual(response.status_code, 200)
        doc = html.fromstring(response.text)
        self.assertEqual(text_of(select(doc, ".alert-success")[0]), "Your preferences are saved.")
        self.assertFalse(select(doc, ".alert-danger"))
        self.env.invalidate_all()
        self.assertEqual((tenant.smartpm_notify_email, tenant.smartpm_notify_sms), wanted)
        # opened again later: what she saved, no message
        doc = html.fromstring(self._get("/my/notifications").text)
        self.assertEqual(
            self._preferences_shown(doc),
            {"smartpm_notify_email": wanted[0], "smartpm_notify_sms": wanted[1]},
        )
        self.assertFalse(select(doc, ".alert-success"))

    def test_a_posted_partner_changes_only_her_own_preferences(self):
        other = self.other_meter.tenant_id.sudo()
        before = (other.smartpm_notify_email, other.smartpm_notify_sms)
        doc = html.fromstring(self._get("/my/notifications").text)
        csrf = select(doc, "form[action='/my/notifications'] input")[0].get("value")
        self.url_open(
            "/my/notifications",
            data={
                "csrf_token": csrf,
                "partner_id": str(other.id),
                "smartpm_notify_email": "1",
                "smartpm_notify_sms": "1",
            },
        )
        self.env.invalidate_all()
        self.assertEqual((other.smartpm_notify_email, other.smartpm_notify_sms), before)
        self.assertEqual(
            (self.tenant.sudo().smartpm_notify_email, self.tenant.sudo().smartpm_notify_sms),
            (True, True),
        )

    # ------------------------------------------------------------------ receipt
    def _her_purchase(self):
        """Amina's newest purchase, delivered to her meter by the bridge (as the demo's
        bridge delivers the demo's sales): the meter answers its new credit."""
        purchase = self.env(user=self.owner)["smartpm.credit.purchase"].search(
            [("meter_id", "=", self.meter.id), ("tenant_id", "=", self.tenant.id)],
            order="date desc, id desc",
            limit=1,
        )
        self.assertTrue(purchase, "the demo sold amina credit")

        def meter_answers(job):
            if job.meter_id != self.meter:
                return None
            if job.job_type != "add_credit":
                return RETRY_LATER
            return {"credit_kwh": self.meter.credit_kwh + job.payload["kwh"], "relay": "connected"}

        self._bridge_runs(meter_answers)
        self.assertEqual(purchase.state, "delivered")
        return purchase

    def _expected_receipt(self, purchase):
        """{key: text} of the receipt, from the back office's purchase record itself."""
        expected = {"amount": self._money(purchase.amount), "kwh": f"{purchase.kwh:.2f} kWh"}
        if purchase.debt_recovered or purchase.debt_balance_after:
            expected.update(
                debt_recovered=self._money(purchase.debt_recovered),
                debt_balance=self._money(purchase.debt_balance_after),
                credit_amount=self._money(purchase.credit_amount),
            )
        if purchase.emergency_repaid_kwh:
            expected["emergency_repaid_kwh"] = f"{purchase.emergency_repaid_kwh:.2f} kWh"
        if purchase.debt_repaid_kwh:
            expected["negative_repaid_kwh"] = f"{purchase.debt_repaid_kwh:.2f} kWh"
        if purchase.emergency_repaid_kwh or purchase.debt_repaid_kwh:
            net = purchase.kwh - purchase.emergency_repaid_kwh - purchase.debt_repaid_kwh
            expected["net_kwh"] = f"{net:.2f} kWh"
        result = purchase.sudo().job_id.result or {}
        if "credit_kwh" in result:
            expected["new_balance_kwh"] = f"{float(result['credit_kwh']):.2f} kWh"
        expected["transfer_number"] = str(purchase.transfer_number)
        return expected

    def test_her_purchase_page_shows_the_split_the_back_office_records(self):
        purchase = self._her_purchase()
        # she reaches it from her meter page
        meter_page = html.fromstring(self._get(f"/my/meters/{self.meter.id}").text)
        self.assertIn(
            f"/my/purchases/{purchase.id}",
            [a.get("href") for a in select(meter_page, "a.o_smartpm_purchase_ref")],
        )
        doc = html.fromstring(self._get(f"/my/purchases/{purchase.id}").text)
        self.assertEqual(text_of(select(doc, "h4 .o_smartpm_purchase_ref")[0]), purchase.name)
        shown = {dd.get("data-key"): text_of(dd) for dd in select(doc, ".o_smartpm_receipt dd")}
        self.assertEqual(shown, self._expected_receipt(purchase))
        labels = [text_of(dt) for dt in select(doc, ".o_smartpm_receipt dt")]
        self.assertIn("New balance", labels, "a delivered sale: the meter's own balance")
        self.assertIn(self.meter.serial_number, text_of(doc))
        self.assertEqual([a.get("href") for a in select(doc, ".o_portal_submenu a")], ["/my/home"])

    def test_she_downloads_the_receipt_pdf_with_the_same_figures(self):
        purchase = self._her_purchase()
        doc = html.fromstring(self._get(f"/my/purchases/{purchase.id}").text)
        link = select(doc, "a.o_smartpm_receipt_pdf")[0].get("href")
        response = self._get(link)
        self.assertIn("attachment", response.headers["Content-Disposition"])
        self.assertIn(f"Receipt-{purchase.name}.pdf", response.headers["Content-Disposition"])
        # Odoo's test mode serves the report as HTML (wkhtmltopdf would call back this
        # server, held by the request): the PDF the route serves, rendered as it renders it
        content, kind = (
            self.env["ir.actions.report"]
            .sudo()
            .with_company(purchase.company_id)
            .with_context(force_report_rendering=True)
            ._render_qweb_pdf("smartpm_prepay.action_report_purchase_receipt", purchase.ids)
        )
        self.assertEqual(kind, "pdf")
        self.assertTrue(content.startswith(b"%PDF"))
        text = pdf_text(content)
        lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
        self.assertIn(f"Electricity credit receipt {purchase.name}", lines)
        self.assertIn(self.meter.serial_number, text)
        labels = {row["key"]: row["label"] for row in purchase.sudo().receipt_lines}
        for key, value in self._expected_receipt(purchase).items():
            self.assertIn(f"{labels[key]} {value}", lines, f"{key} in the PDF")

    def test_another_tenants_receipt_is_not_found(self):
        other = (
            self.env["smartpm.credit.purchase"]
            .sudo()
            .search([("meter_id", "=", self.other_meter.id)], limit=1)
        )
        self.assertTrue(other)
        for url in (f"/my/purchases/{other.id}", f"/my/purchases/{other.id}?report_type=pdf"):
            response = self._get(url, status=404)
            self.assertNotIn(other.name, response.text)
