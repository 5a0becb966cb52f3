"""Issue 16 §6 in the portal: /my/statement is the logged-in tenant's own statement, of
the periods they held each meter, with its PDF; nobody else's by URL or RPC."""

import json
from datetime import datetime, timedelta

from odoo.tests import new_test_user, tagged

from ..services import engine, local_time, prepayment, statement
from ..services.vending import vend
from .test_portal import PortalCase

DAY = timedelta(days=1)


@tagged("post_install", "-at_install")
class TestStatementPortal(PortalCase):
    """Meter TOUR-001: tenant A (Amara) from -40 to -10 days, then tenant B (Bola). A bought
    8.00 (32 kWh) on it at -20 days and used 3 kWh at -15 days; B bought 2.50 (10 kWh) at
    -5 days and used 4 kWh at -3 days."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.now = datetime.now().replace(microsecond=0)
        cls.portal_b = new_test_user(
            cls.env,
            "stmt_tenant_b",
            groups="base.group_portal",
            partner_id=cls.tenant_b.id,
            password="stmt_tenant_b-pw-123",
        )
        meter, now = cls.meter_a, cls.now
        cls.sale_a = cls._delivered(vend(cls.env, meter, 8.0, "backoffice", "REF-AMARA"), 20)
        meter.tenant_id = cls.tenant_b
        cls.sale_b = cls._delivered(vend(cls.env, meter, 2.5, "backoffice", "REF-BOLA"), 5)
        old, new = meter.assignment_ids.sorted("id")
        old.write({"date_start": now - 40 * DAY, "date_end": now - 10 * DAY})
        new.write({"date_start": now - 10 * DAY})
        today = local_time.local_today(cls.company)
        cls.env["smartpm.consumption.daily"].sudo().create(
            [
                {
                    "meter_id": meter.id,
                    "day": today - 15 * DAY,
                    "kwh": 3.0,
                    "company_id": cls.company.id,
                    "tenant_id": cls.tenant_a.id,
                },
                {
                    "meter_id": meter.id,
                    "day": today - 3 * DAY,
                    "kwh": 4.0,
                    "company_id": cls.company.id,
                    "tenant_id": cls.tenant_b.id,
                },
            ]
        )
        cls.today = today
        cls.period = f"date_from={today - 30 * DAY}&date_to={today}"

    @classmethod
    def _delivered(cls, purchase, days_ago):
        purchase._on_delivered({})
        when = cls.now - days_ago * DAY
        engine.as_engine(purchase).write({"date": when, "date_delivered": when})
        return purchase

    def _page(self, query=""):
        return self.url_open(f"/my/statement?{self.period}{query}")

    def test_tenant_sees_own_purchases_and_consumption_only(self):
        self._login()
        response = self._page()
        self.assertEqual(response.status_code, 200)
        page = response.text
        self.assertIn(self.tenant_a.name, page)
        self.assertIn("REF-AMARA", page)
        self.assertIn("-3.000", page)
        self.assertNotIn("REF-BOLA", page)
        self.assertNotIn("-4.000", page)
        self.assertNotIn(self.tenant_b.name, page)

    def test_new_tenant_of_the_meter_sees_nothing_of_the_old_one(self):
        self.authenticate("stmt_tenant_b", "stmt_tenant_b-pw-123")
        page = self._page().text
        self.assertIn("REF-BOLA", page)
        self.assertIn("-4.000", page)
        self.assertNotIn("REF-AMARA", page)
        self.assertNotIn("-3.000", page)
        self.assertNotIn(self.tenant_a.name, page)
        # B's section of TOUR-001 starts when B moved in, not before
        st = statement.tenant_statement(
            self.env, self.tenant_b, self.today - 30 * DAY, self.today, meter=self.meter_a
        )
        [section] = st["meters"]
        self.assertEqual(len(section["periods"]), 1)
        self.assertGreaterEqual(
            section["periods"][0][0],
            statement._local(self.company, self.now - 10 * DAY),
        )

    def test_closing_credit_on_the_page_is_the_reports(self):
        prepayment.recognise(self.company, today=self.today + DAY)
        self._login()
        page = self._page().text
        st = statement.tenant_statement(self.env, self.tenant_a, self.today - 30 * DAY, self.today)
        self.env.flush_all()
        report = self.env["smartpm.credit.balance.report"].search(
            [("tenant_id", "=", self.tenant_a.id), ("company_id", "=", self.company.id)]
        )
        self.assertEqual(st["closing_kwh"], 29.0)
        self.assertEqual(report.remaining_kwh, st["closing_kwh"])
        self.assertAlmostEqual(report.remaining_value, st["closing_value"])
        closing = page.split('o_smartpm_statement_closing fw-bold">')[1].split("</tr>")[0]
        self.assertIn("29.000 kWh", closing)
        self.assertIn("7.25", closing)

    def test_another_tenants_meter_in_the_url_answers_404(self):
        self._login()
        response = self._page(f"&meter_id={self.meter_b.id}")
        self.assertEqual(response.status_code, 404)
        self.assertNotIn("OTHER-002", response.text)
        pdf = self.url_open(f"/my/statement/pdf?{self.period}&meter_id={self.meter_b.id}")
        self.assertEqual(pdf.status_code, 404)

    def test_old_meter_shows_only_the_tenants_own_period(self):
        self._login()
        response = self._page(f"&meter_id={self.meter_a.id}")
        self.assertEqual(response.status_code, 200)
        self.assertIn("REF-AMARA", response.text)
        self.assertNotIn("REF-BOLA", response.text)

    def test_pdf_download_is_the_tenants_own(self):
        self._login()
        response = self.url_open(f"/my/statement/pdf?{self.period}")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.headers["Content-Type"], "application/pdf")
        # in test mode Odoo renders the report's HTML instead of calling wkhtmltopdf
        body = response.content.decode(errors="replace")
        self.assertIn(self.tenant_a.name, body)
        self.assertIn("REF-AMARA", body)
        self.assertNotIn("REF-BOLA", body)

    def test_report_url_of_another_tenant_is_refused(self):
        self._login()
        for kind in ("pdf", "html"):
            response = self.url_open(
                f"/report/{kind}/smartpm_prepay.report_tenant_statement/{self.tenant_b.id}"
            )
            self.assertIn(response.status_code, (403, 404), kind)
            self.assertNotIn("REF-BOLA", response.text)
            self.assertNotIn(self.tenant_b.name, response.text)

    def test_rpc_to_the_statement_wizard_is_refused(self):
        self._login()
        response = self.url_open(
            "/web/dataset/call_kw",
            data=json.dumps(
                {
                    "jsonrpc": "2.0",
                    "method": "call",
                    "params": {
                        "model": "smartpm.tenant.statement.wizard",
                        "method": "web_save",
                        "args": [[], {"tenant_id": self.tenant_b.id}],
                        "kwargs": {"specification": {"statement_html": {}}},
                    },
                }
            ),
            headers={"Content-Type": "application/json"},
        )
        result = response.json()
        self.assertIn("error", result)
        self.assertNotIn("REF-BOLA", response.text)
        self.assertFalse(self.env["smartpm.tenant.statement.wizard"].search([]))

    def test_portal_home_has_the_statement_card(self):
        self._login()
        home = self.url_open("/my/home").text
        self.assertIn('href="/my/statement"', home)
        counters = self.make_jsonrpc_request("/my/counters", {"counters": ["statement_count"]})
        self.assertEqual(counters["statement_count"], 1)

    def test_anonymous_visitor_is_sent_to_login(self):
        response = self.url_open(f"/my/statement?{self.period}", allow_redirects=False)
        self.assertIn(response.status_code, (302, 303))
        self.assertIn("/web/login", response.headers["Location"])
