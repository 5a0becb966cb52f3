"""Issue 16 §6 in the portal: /my/statement is the logged-in tenant's own statement, of
the periods they held each meter, with its PDF; nobody else's by URL or RPC."""

import json
from datetime import datetime, timedelta

from lxml import html

from odoo.tests import new_test_user, tagged

from ..services import engine, local_time, prepayment, statement
from ..services.vending import vend
from .test_portal import PortalCase
from .test_tou import TouMixin

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


@tagged("post_install", "-at_install")
class TestStatementPortalBands(TouMixin, PortalCase):
    """A time-of-use meter, money mode: Amara held it from -20 to -10 days, Bola since. Its
    rate registers (Wh): off-peak 1000 at -15 days, 5000 at -10 days (Amara leaves), 9000 at
    -5 days, 12000 an hour ago; peak 0, 2000, 5000, 6000."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tou_tariff = cls._tou_tariff(name="Portal TOU")
        cls.portal_b = new_test_user(
            cls.env,
            "bands_tenant_b",
            groups="base.group_portal",
            partner_id=cls.tenant_b.id,
            password="bands_tenant_b-pw-123",
        )
        now = datetime.now().replace(microsecond=0)
        cls.meter = cls.env["smartpm.meter"].create(
            {
                "serial_number": "TOU-PORTAL",
                "host": "127.0.0.1",
                "port": 4102,
                "state": "active",
                "tenant_id": cls.tenant_a.id,
                "tariff_id": cls.tou_tariff.id,
                "credit_mode": "money",
            }
        )
        cls.meter.tenant_id = cls.tenant_b
        old, new = cls.meter.assignment_ids.sorted("id")
        old.write({"date_start": now - 20 * DAY, "date_end": now - 10 * DAY})
        new.write({"date_start": now - 10 * DAY})
        rows = []
        for days, off, peak in ((15, 1000, 0), (10, 5000, 2000), (5, 9000, 5000)):
            for rate, wh in ((1, off), (2, peak)):
                rows.append((now - days * DAY, rate, wh))
        for rate, wh in ((1, 12000), (2, 6000)):
            rows.append((now - timedelta(hours=1), rate, wh))
        cls.env["smartpm.reading"].sudo().create(
            [
                {
                    "meter_id": cls.meter.id,
                    "obis": f"1.0.1.8.{rate}.255",
                    "reading_time": when,
                    "value": wh,
                }
                for when, rate, wh in rows
            ]
        )
        cls.today = local_time.local_today(cls.company)
        cls.period = f"date_from={cls.today - 30 * DAY}&date_to={cls.today}"

    def _portal_bands(self, login, password):
        """[(band, price, kWh)] of the meter's section of the tenant's /my/statement."""
        self.authenticate(login, password)
        response = self.url_open(f"/my/statement?{self.period}&meter_id={self.meter.id}")
        self.assertEqual(response.status_code, 200)
        doc = html.fromstring(response.text)
        rows = doc.xpath("//table[contains(@class, 'o_smartpm_statement_bands')]//tbody/tr")
        return [tuple(td.text_content().strip() for td in row.xpath("td"))[:3] for row in rows]

    def _statement_bands(self, tenant):
        st = statement.tenant_statement(
            self.env, tenant, self.today - 30 * DAY, self.today, self.meter
        )
        [section] = st["meters"]
        return [(b["name"], f"{b['price']:.4f}", f"{b['kwh']:.3f}") for b in section["bands"]]

    def test_portal_kwh_per_band_is_the_statements_for_the_time_she_held_the_meter(self):
        bola = self._portal_bands("bands_tenant_b", "bands_tenant_b-pw-123")
        self.assertEqual(bola, self._statement_bands(self.tenant_b))
        # from her move-in (-10 days: 5000 / 2000 Wh) to the last reading, not Amara's
        self.assertEqual(bola, [("Off-peak", "0.1000", "7.000"), ("Peak", "0.4000", "4.000")])
        amara = self._portal_bands("tenant_a", "tenant_a-pw-123")
        self.assertEqual(amara, self._statement_bands(self.tenant_a))
        self.assertEqual(amara, [("Off-peak", "0.1000", "5.000"), ("Peak", "0.4000", "2.000")])
        # between them, every Wh the registers counted, once
        for i, wh in ((0, 12000), (1, 6000)):
            self.assertAlmostEqual(float(bola[i][2]) + float(amara[i][2]), wh / 1000)
