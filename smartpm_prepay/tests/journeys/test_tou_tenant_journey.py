"""Grace's journey (issue 17, "Done when"): the demo's tenant on a time-of-use tariff with
a standing charge and arrears buys credit in her portal with the demo payment provider;
her receipt, as her browser gets it (HTML and PDF), shows the debt recovered, the credit
put on her money-mode meter, the energy it buys band by band and the standing charge,
and every figure is the back office's purchase's, unit for unit. The meter's own figures
after delivery are checked end to end (tests/test_e2e_tou_demo.py).
"""

import shutil
import subprocess
import tempfile

from lxml import html

from odoo.tests import tagged

from ...services import tou
from .common import DemoJourneyCase
from .test_tenant_journey import select, text_of

AMOUNT = 12.0


@tagged("post_install", "-at_install")
class TestTouTenantJourney(DemoJourneyCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.grace = cls.env.ref("smartpm_prepay.demo_portal_user_tenant_25")
        cls.tenant = cls.grace.partner_id.commercial_partner_id
        cls.meter = cls.env.ref("smartpm_prepay.demo_meter_25")
        cls.tariff = cls.env.ref("smartpm_prepay.demo_tariff_tou")
        cls.debt = cls.env.ref("smartpm_prepay.demo_debt_grace")
        cls.company = cls.meter.company_id
        cls.demo_provider = cls.env.ref("payment.payment_provider_demo")
        cls.demo_method = cls.env.ref("payment_demo.payment_method_demo")

    @property
    def back_office(self):
        return self.env(user=self.owner)

    def _money(self, amount):
        """An amount as the tenant reads it (the page's no-break space read as a space)."""
        currency = self.company.currency_id
        number = f"{amount:,.{currency.decimal_places}f}"
        if currency.position == "after":
            return f"{number} {currency.symbol}"
        return f"{currency.symbol} {number}"

    def _receipt(self, url):
        """{key: (label, value)} of the receipt on a portal page, as grace's browser gets it."""
        self.authenticate("grace", "grace")
        response = self.url_open(url)
        self.assertEqual(response.status_code, 200, url)
        doc = html.fromstring(response.text)
        boxes = select(doc, "dl.o_smartpm_receipt")
        self.assertEqual(len(boxes), 1, url)
        labels = [text_of(dt) for dt in boxes[0].xpath("./dt")]
        values = boxes[0].xpath("./dd")
        return {
            dd.get("data-key"): (label, text_of(dd))
            for label, dd in zip(labels, values, strict=True)
        }

    def _buy_in_the_portal(self, amount):
        """Grace pays with the demo provider, as its card form does; the payment's
        post-processing makes the purchase."""
        self.authenticate("grace", "grace")
        Tx = self.env["payment.transaction"].sudo()
        before = Tx.search([("smartpm_meter_id", "!=", False)])
        self.make_jsonrpc_request(
            f"/my/meters/{self.meter.id}/transaction",
            {
                "provider_id": self.demo_provider.id,
                "payment_method_id": self.demo_method.id,
                "token_id": None,
                "amount": amount,
                "flow": "direct",
                "tokenization_requested": False,
                "landing_route": "/elsewhere",
                "is_validation": False,
            },
        )
        tx = Tx.search([("smartpm_meter_id", "!=", False)]) - before
        self.assertEqual(len(tx), 1)
        self.make_jsonrpc_request(
            "/payment/demo/simulate_payment",
            {"reference": tx.reference, "payment_details": "4242", "simulated_state": "done"},
        )
        tx._post_process()
        self.assertTrue(tx.smartpm_purchase_id, "the payment made a purchase")
        return tx.smartpm_purchase_id

    # ------------------------------------------------------------------ the demo's set-up
    def test_the_demo_gives_grace_a_tou_tariff_a_standing_charge_a_debt_and_a_holiday(self):
        self.assertEqual(self.meter.tenant_id, self.tenant)
        self.assertEqual(self.meter.serial_number, "SIM00025")
        self.assertEqual((self.meter.credit_mode, self.meter.state), ("money", "active"))
        self.assertEqual(self.meter.sudo()._get_tariff(), self.tariff)
        self.assertEqual(self.tariff.pricing_mode, "tou")
        self.assertGreater(self.tariff.standing_charge_amount, 0)
        bands = tou.price_bands(self.tariff)
        self.assertEqual([b["name"] for b in bands], ["Off-peak", "Peak"])
        self.assertEqual((self.debt.state, self.debt.balance), ("active", self.debt.amount))
        calendar = self.company.smartpm_friendly_calendar_id
        self.assertTrue(self.company.smartpm_friendly_enabled)
        holidays = self.env["resource.calendar.leaves"].search(
            [("calendar_id", "=", calendar.id), ("resource_id", "=", False)]
        )
        self.assertEqual(len(holidays), 1, "one public holiday in the company's calendar")
        # the meter is sent the schedule with that holiday and its calendar of bands
        jobs = self.env["smartpm.meter.job"].search([("meter_id", "=", self.meter.id)])
        schedule = jobs.filtered(lambda j: j.job_type == "set_friendly_schedule")[-1:]
        self.assertTrue(schedule, "the friendly schedule is queued for SIM00025")
        self.assertEqual(len(schedule.payload["special_days"]), 1)
        self.assertIn("set_tariff_calendar", jobs.mapped("job_type"))

    # ------------------------------------------------------------------ buying
    def test_grace_buys_credit_and_her_receipt_shows_the_split_of_the_back_office(self):
        debt_before = self.debt.balance
        purchase = self._buy_in_the_portal(AMOUNT)
        office = self.back_office["smartpm.credit.purchase"].browse(purchase.id)
        self.assertEqual(
            (office.channel, office.tenant_id, office.meter_id, office.credit_mode),
            ("portal", self.tenant, self.meter, "money"),
        )
        # the debt's rule: 25 % of the purchase, between 1.00 and 5.00
        expected_debt = min(max(AMOUNT * 0.25, 1.0), 5.0)
        self.assertAlmostEqual(office.debt_recovered, expected_debt, places=2)
        self.assertAlmostEqual(self.debt.balance, debt_before - expected_debt, places=2)
        self.assertAlmostEqual(office.credit_amount, AMOUNT - expected_debt, places=2)
        # no tax on the demo tariff: all of the credit bought goes to the meter
        self.assertFalse(self.tariff.tax_ids)
        self.assertAlmostEqual(office.credit_money, office.credit_amount, places=2)

        for url in (f"/my/purchases/{purchase.id}", f"/my/meters/{self.meter.id}"):
            rows = self._receipt(url)
            self.assertEqual(rows["amount"], ("Amount paid", self._money(office.amount)), url)
            self.assertEqual(
                rows["debt_recovered"], ("Debt recovered", self._money(office.debt_recovered))
            )
            self.assertEqual(
                rows["debt_balance"], ("Debt balance left", self._money(self.debt.balance))
            )
            self.assertEqual(
                rows["credit_money"],
                ("Credit added to the meter", self._money(office.credit_money)),
            )
            # kWh band by band: the credit at each band's price, as the sale recorded them
            bands = office.band_prices
            self.assertEqual(len(bands), 2)
            for i, band in enumerate(bands, start=1):
                label, value = rows[f"band_{i}"]
                price = " ".join(self.tariff._format_price(band["price_untaxed"]).split())
                self.assertEqual(label, f"Energy it buys at {band['name']} ({price} per kWh)", url)
                kwh = round(office.credit_money / band["price_untaxed"], 2)
                self.assertEqual(value, f"{kwh:.2f} kWh")
            self.assertEqual(
                rows["standing_charge"],
                (
                    "Standing charge (taken from the credit)",
                    f"{self._money(self.tariff.standing_charge_amount)} per day",
                ),
            )
            self.assertNotIn("kwh", rows, "no kWh bought on a money meter")
            # not on the meter yet: the balance expected from its last known credit, said so
            self.assertEqual(office.state, "queued")
            self.assertEqual(
                rows["new_balance_money"],
                ("Estimated new balance", self._money(office.expected_balance_money)),
            )

        # the PDF she downloads says the same, line by line (tests render the report's
        # HTML unless forced: the same lines; the PDF itself read back with pdftotext)
        self.authenticate("grace", "grace")
        response = self.url_open(f"/my/purchases/{purchase.id}?report_type=pdf&download=true")
        self.assertEqual(response.status_code, 200)
        self.assertIn(f"Receipt-{purchase.name}.pdf", response.headers["Content-Disposition"])
        for row in office.receipt_lines:
            self.assertIn(f"o_smartpm_receipt_{row['key']}", response.text)
        if shutil.which("pdftotext"):
            pdf, kind = (
                self.env["ir.actions.report"]
                .with_context(force_report_rendering=True)
                ._render_qweb_pdf("smartpm_prepay.action_report_purchase_receipt", office.ids)
            )
            self.assertEqual(kind, "pdf")
            with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
                f.write(pdf)
                f.flush()
                text = subprocess.run(
                    ["pdftotext", "-layout", f.name, "-"],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            lines = [" ".join(line.split()) for line in text.splitlines()]
            for row in office.receipt_lines:
                label, value = (" ".join(row[k].split()) for k in ("label", "value"))
                self.assertTrue(
                    any(line.startswith(label) and line.endswith(value) for line in lines),
                    f"{label} {value} not on the PDF:\n{text}",
                )

    def test_a_portal_purchase_repays_the_debt_to_exactly_zero(self):
        paid = 0.0
        for _i in range(20):
            if self.debt.balance <= 0:
                break
            purchase = self._buy_in_the_portal(AMOUNT)
            paid += purchase.debt_recovered
        self.assertEqual(self.debt.state, "paid")
        self.assertEqual(self.debt.balance, 0.0)
        self.assertAlmostEqual(paid, self.debt.amount, places=2)
        rows = self._receipt(f"/my/purchases/{purchase.id}")
        self.assertEqual(rows["debt_balance"][1], self._money(0.0))

    def test_her_meter_page_and_list_show_her_credit_in_money(self):
        # as the meter last reported it (the bridge writes what a ping read)
        self.env.cr.execute(
            "UPDATE smartpm_meter SET credit_money = 1.5, online_state = 'online' WHERE id = %s",
            (self.meter.id,),
        )
        self.env.invalidate_all()
        self.assertLessEqual(self.meter.credit_money, self.meter.sudo()._get_thresholds()[0])
        self.authenticate("grace", "grace")
        for url in (f"/my/meters/{self.meter.id}", "/my/meters"):
            doc = html.fromstring(self.url_open(url).text)
            credit = select(doc, ".o_smartpm_credit")
            self.assertEqual([text_of(c) for c in credit], [self._money(1.5)], url)
        doc = html.fromstring(self.url_open(f"/my/meters/{self.meter.id}").text)
        notices = " ".join(text_of(n) for n in select(doc, ".alert"))
        self.assertIn(f"Low credit: {self._money(1.5)} left.", notices)
        self.assertNotIn("kWh left", notices)

    # ------------------------------------------------------------------ refusals
    def test_grace_cannot_see_amina_s_meter_nor_amina_grace_s(self):
        amina_meter = self.env.ref("smartpm_prepay.demo_meter_01")
        self.authenticate("grace", "grace")
        self.assertEqual(self.url_open(f"/my/meters/{amina_meter.id}").status_code, 404)
        purchase = self._buy_in_the_portal(AMOUNT)
        self.authenticate("amina", "amina")
        for url in (f"/my/meters/{self.meter.id}", f"/my/purchases/{purchase.id}"):
            response = self.url_open(url)
            self.assertIn(response.status_code, (403, 404), url)
            self.assertNotIn(purchase.name, response.text)
