"""The tenant's journey: amina, the demo's tenant, on her portal with the demo's data.

Every figure her meter page shows is read from the HTML she gets and compared with what the
back office holds (readings, daily consumption, purchases, the tariff, the meter), unit for
unit; she buys credit through the portal and the payment's reference is the purchase's
number; she cannot see anyone else's meter.
"""

import math
import re
from datetime import date, datetime, timedelta

import pytz
from lxml import html

from odoo import fields
from odoo.tests import tagged
from odoo.tests.common import JsonRpcException

from ...services import vending
from .common import DemoJourneyCase

ENERGY_OBIS = "1.0.1.8.0.255"
KWH_RE = re.compile(r"(-?[\d,]+\.\d+) kWh")


SIMPLE_RE = re.compile(r"([\w-]+)?((?:[.#][\w-]+|\[[\w-]+='[^']*'\])*)")
PART_RE = re.compile(r"\.([\w-]+)|#([\w-]+)|\[([\w-]+)='([^']*)'\]")


def select(element, selector):
    """Elements matching a simple CSS selector (descendants of tag.class#id[attr='v']
    parts), with XPath: the portal's HTML as the tenant's browser gets it."""
    xpath = "."
    for step in selector.split():
        tag, rest = SIMPLE_RE.fullmatch(step).groups()
        conditions = []
        for cls, ident, attr, value in PART_RE.findall(rest or ""):
            if cls:
                conditions.append(f"contains(concat(' ', normalize-space(@class), ' '), ' {cls} ')")
            elif ident:
                conditions.append(f"@id='{ident}'")
            else:
                conditions.append(f"@{attr}='{value}'")
        xpath += f"//{tag or '*'}" + "".join(f"[{c}]" for c in conditions)
    return element.xpath(xpath)


def text_of(element):
    return " ".join(element.text_content().split())


def kwh_of(text):
    """The kWh figure a text shows (it must say kWh)."""
    match = KWH_RE.fullmatch(text)
    assert match, f"{text!r} is not a figure in kWh"
    return float(match.group(1).replace(",", ""))


@tagged("post_install", "-at_install")
class TestTenantJourney(DemoJourneyCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tenant = cls.amina.partner_id.commercial_partner_id
        cls.meter = cls.env.ref("smartpm_prepay.demo_meter_01")
        cls.other_meter = cls.env.ref("smartpm_prepay.demo_meter_02")
        assert cls.meter.tenant_id == cls.tenant, "the demo's amina holds SIM00001"
        assert cls.other_meter.tenant_id != cls.tenant
        cls.company = cls.meter.company_id
        cls.demo_provider = cls.env.ref("payment.payment_provider_demo")
        cls.demo_method = cls.env.ref("payment_demo.payment_method_demo")

    # ------------------------------------------------------------------ helpers
    @property
    def back_office(self):
        """The owner's view of the records."""
        return self.env(user=self.owner)

    def _page(self, url, status=200):
        self.authenticate("amina", "amina")
        response = self.url_open(url)
        self.assertEqual(response.status_code, status, url)
        return response, html.fromstring(response.text)

    def _tz(self):
        # amina's own time zone, else the property's company's
        return pytz.timezone(self.amina.tz or self.company.partner_id.tz or "UTC")

    def _local_text(self, utc_naive):
        """A date-time as the portal prints it to amina (her language, her time zone)."""
        lang = self.env["res.lang"]._lang_get(self.amina.lang or "en_US")
        local = pytz.utc.localize(utc_naive).astimezone(self._tz())
        time_format = lang.time_format.replace(":%S", "")
        return local.strftime(f"{lang.date_format} {time_format}")

    def _company_today(self):
        tz = pytz.timezone(self.company.partner_id.tz or "UTC")
        return datetime.now(tz).date()

    def _back_office_days(self):
        """{local day: kWh} of the meter in the back office's daily consumption."""
        rows = self.back_office["smartpm.consumption.daily"].search(
            [("meter_id", "=", self.meter.id), ("tenant_id", "=", self.tenant.id)]
        )
        days = {}
        for row in rows:
            days[row.day] = days.get(row.day, 0.0) + row.kwh
        return days

    def _back_office_months(self):
        """{first day of the month: kWh}: the back office's own grouping by month."""
        groups = self.back_office["smartpm.consumption.daily"]._read_group(
            [("meter_id", "=", self.meter.id), ("tenant_id", "=", self.tenant.id)],
            ["day:month"],
            ["kwh:sum"],
        )
        return {fields.Date.to_date(month): kwh for month, kwh in groups}

    def _chart(self, doc, which):
        """[(period, kWh in the table, value printed on the bar)] of a portal chart."""
        box = select(doc, f".o_smartpm_chart_{which}")
        self.assertEqual(len(box), 1, f"one {which} chart")
        box = box[0]
        bars = {
            col.get("data-period"): text_of(select(col, ".o_smartpm_chart_value")[0])
            for col in select(box, ".o_smartpm_chart_col")
        }
        rows = []
        for tr in select(box, ".o_smartpm_chart_table tbody tr"):
            period = tr.get("data-period")
            rows.append(
                (
                    date.fromisoformat(period),
                    kwh_of(text_of(select(tr, ".o_smartpm_kwh")[0])),
                    bars[period],
                )
            )
        self.assertTrue(select(box, ".o_smartpm_chart_tick"), "the chart has a y axis")
        total = kwh_of(text_of(select(box, ".o_smartpm_chart_total")[0]))
        return sorted(rows), total

    def _purchase_rows(self, doc):
        rows = []
        for tr in select(doc, ".o_smartpm_purchases tr.o_smartpm_purchase"):
            rows.append(
                {
                    "reference": text_of(select(tr, ".o_smartpm_purchase_ref")[0]),
                    "date": text_of(select(tr, ".o_smartpm_purchase_date")[0]),
                    "amount": text_of(select(tr, ".o_smartpm_purchase_amount")[0]),
                    "kwh": kwh_of(text_of(select(tr, ".o_smartpm_purchase_kwh")[0])),
                    "state": text_of(select(tr, "td.d-sm-table-cell .o_smartpm_state")[0]),
                }
            )
        return rows

    def _money(self, amount):
        currency = self.company.currency_id
        number = f"{amount:,.{currency.decimal_places}f}"
        if currency.position == "after":
            return f"{number} {currency.symbol}"
        return f"{currency.symbol} {number}"

    def _sell_at_the_back_office(self, amount, ref):
        """The office's Sell credit: invoiced and paid in cash in one step."""
        env = self.back_office
        cash = env["account.journal"].search(
            [("type", "=", "cash"), ("company_id", "=", self.company.id)], limit=1
        )
        wizard = env["smartpm.sell.credit.wizard"].create(
            {
                "meter_id": self.meter.id,
                "amount": amount,
                "external_ref": ref,
                "journal_id": cash.id,
            }
        )
        return env["smartpm.credit.purchase"].browse(wizard.action_confirm()["res_id"])

    # ------------------------------------------------------------------ figures
    def test_meter_page_figures_equal_the_back_office(self):
        _response, doc = self._page(f"/my/meters/{self.meter.id}")
        meter = self.back_office["smartpm.meter"].browse(self.meter.id)

        # credit, as the meter last reported it
        credit = kwh_of(text_of(select(doc, ".o_smartpm_credit")[0]))
        self.assertAlmostEqual(credit, round(meter.credit_kwh, 2), places=6)

        # the energy register, converted from the unit it was read in
        reading = self.back_office["smartpm.reading"].search(
            [("meter_id", "=", meter.id), ("obis", "=", ENERGY_OBIS)],
            order="reading_time desc",
            limit=1,
        )
        self.assertTrue(reading, "the demo has readings for SIM00001")
        expected_kwh = (
            reading.value if (reading.unit or "").lower() == "kwh" else reading.value / 1000
        )
        shown = kwh_of(text_of(select(doc, ".o_smartpm_last_reading_kwh")[0]))
        self.assertAlmostEqual(shown, round(expected_kwh, 3), places=6)
        self.assertEqual(
            text_of(select(doc, ".o_smartpm_last_reading_time")[0]),
            self._local_text(reading.reading_time),
        )

        # daily consumption: the last 30 local days, each equal to the back office's
        days, total = self._chart(doc, "daily")
        today = self._company_today()
        self.assertEqual(
            [d for d, _kwh, _label in days], [today - timedelta(days=i) for i in range(29, -1, -1)]
        )
        office_days = self._back_office_days()
        self.assertTrue(any(office_days.get(d) for d, _k, _l in days), "demo consumption shown")
        for day, kwh, label in days:
            expected = round(office_days.get(day, 0.0), 3)
            self.assertAlmostEqual(kwh, expected, places=6, msg=f"kWh on {day}")
            self.assertEqual(label, f"{expected:.1f}" if expected else "", f"bar of {day}")
        self.assertAlmostEqual(total, round(sum(k for _d, k, _l in days), 3), places=6)

        # monthly consumption: the last 12 local months, as the back office groups them
        months, total = self._chart(doc, "monthly")
        first = today.replace(day=1)
        expected_months = []
        for _i in range(12):
            expected_months.insert(0, first)
            first = (first - timedelta(days=1)).replace(day=1)
        self.assertEqual([m for m, _k, _l in months], expected_months)
        office_months = self._back_office_months()
        for month, kwh, label in months:
            expected = round(office_months.get(month, 0.0), 3)
            self.assertAlmostEqual(kwh, expected, places=6, msg=f"kWh in {month}")
            self.assertEqual(label, f"{expected:.1f}" if expected else "", f"bar of {month}")
        self.assertTrue(
            any(kwh for _m, kwh, _l in months), "a month with consumption is not shown as 0"
        )

        # purchases: hers on this meter, newest first, as the back office records them
        purchases = self.back_office["smartpm.credit.purchase"].search(
            [("meter_id", "=", meter.id), ("tenant_id", "=", self.tenant.id)],
            order="date desc, id desc",
            limit=20,
        )
        self.assertTrue(purchases, "the demo sold credit for SIM00001")
        labels = {
            "paid": "Delivering",
            "queued": "Delivering",
            "delivered": "Delivered",
            "failed": "Delayed",
            "pending_check": "Refund pending",
            "reversed": "Reversed",
        }
        self.assertEqual(
            self._purchase_rows(doc),
            [
                {
                    "reference": p.name,
                    "date": self._local_text(p.date),
                    "amount": self._money(p.amount),
                    "kwh": round(p.kwh, 2),
                    "state": labels[p.state],
                }
                for p in purchases
            ],
        )

    def test_price_is_the_tariffs_tiers_and_the_months_position(self):
        _response, doc = self._page(f"/my/meters/{self.meter.id}")
        tariff = self.meter.sudo()._get_tariff()
        tiers = tariff.tier_ids.sorted("from_kwh")
        self.assertTrue(tiers, "the demo tariff has block tiers")
        self.assertFalse(tariff.tax_ids, "the demo tariff has no tax: prices are as stored")
        base = self._money(tariff.price_per_kwh)
        expected = f"First {tiers[0].from_kwh:g} kWh of the month at {base} per kWh"
        for tier, following in zip(tiers, list(tiers[1:]) + [None], strict=True):
            if following:
                expected += (
                    f", from {tier.from_kwh:g} to {following.from_kwh:g} kWh at "
                    f"{self._money(tier.price_per_kwh)}"
                )
            else:
                expected += f", then {self._money(tier.price_per_kwh)} per kWh"
        price = text_of(select(doc, ".o_smartpm_price")[0]).replace("\xa0", " ")
        self.assertEqual(price, expected)

        # this month's position in the tiers: what the back office sold the tenant this local
        # month, over all their meters of the company
        tz = pytz.timezone(self.company.partner_id.tz or "UTC")
        month_start = tz.localize(
            datetime.combine(self._company_today().replace(day=1), datetime.min.time())
        )
        month_start = month_start.astimezone(pytz.utc).replace(tzinfo=None)
        sold = self.back_office["smartpm.credit.purchase"].search(
            [
                ("tenant_id", "=", self.meter.tenant_id.id),
                ("company_id", "=", self.meter.company_id.id),
                ("date", ">=", month_start),
                ("state", "!=", "reversed"),
            ]
        )
        month_kwh = sum(sold.mapped("kwh"))
        shown = kwh_of(text_of(select(doc, ".o_smartpm_month_kwh")[0]))
        self.assertAlmostEqual(shown, round(month_kwh, 2), places=6)
        next_price = tariff.price_per_kwh
        for tier in tiers:
            if month_kwh >= tier.from_kwh:
                next_price = tier.price_per_kwh
        self.assertEqual(
            text_of(select(doc, ".o_smartpm_next_price")[0]).replace("\xa0", " "),
            self._money(next_price),
        )
        # and the last sale was priced that way: its kWh at the stated prices make its amount
        last = sold.sorted("date")[-1:]
        if last:
            paid = sum(part["kwh"] * part["price_per_kwh"] for part in last.tier_breakdown)
            self.assertAlmostEqual(paid, last.amount_untaxed, delta=tariff.currency_id.rounding)
            stated = {tariff.price_per_kwh, *tiers.mapped("price_per_kwh")}
            self.assertLessEqual({p["price_per_kwh"] for p in last.tier_breakdown}, stated)

    def test_days_and_months_follow_the_company_time_zone(self):
        """The root cause of the empty month: days and months are the company's, from its
        time zone, as in the back office (not UTC, not the first month without history)."""
        self.company.partner_id.tz = "America/Los_Angeles"
        today = self._company_today()
        Consumption = self.env["smartpm.consumption.daily"]
        Consumption._rebuild_days(today - timedelta(days=40), today, self.company)
        _response, doc = self._page(f"/my/meters/{self.meter.id}")
        days, _total = self._chart(doc, "daily")
        self.assertEqual(days[-1][0], today)
        office_days = self._back_office_days()
        for day, kwh, _label in days:
            self.assertAlmostEqual(kwh, round(office_days.get(day, 0.0), 3), places=6)
        months, _total = self._chart(doc, "monthly")
        office_months = self._back_office_months()
        for month, kwh, _label in months:
            self.assertAlmostEqual(kwh, round(office_months.get(month, 0.0), 3), places=6)

    def test_purchase_times_are_in_the_tenants_time_zone(self):
        self.amina.tz = "Africa/Lagos"  # UTC+1, her own preference
        _response, doc = self._page(f"/my/meters/{self.meter.id}")
        purchase = self.back_office["smartpm.credit.purchase"].search(
            [("meter_id", "=", self.meter.id), ("tenant_id", "=", self.tenant.id)],
            order="date desc, id desc",
            limit=1,
        )
        row = self._purchase_rows(doc)[0]
        self.assertEqual(row["reference"], purchase.name)
        local = pytz.utc.localize(purchase.date).astimezone(pytz.timezone("Africa/Lagos"))
        self.assertEqual(row["date"], local.strftime("%m/%d/%Y %H:%M"))
        self.assertIn("Africa/Lagos", text_of(select(doc, ".o_smartpm_meter_page")[0]))

    def test_meters_list_shows_her_meters_with_the_same_figures(self):
        _response, doc = self._page("/my/meters")
        cards = select(doc, ".o_smartpm_meter_card")
        meters = self.back_office["smartpm.meter"].search([("tenant_id", "=", self.tenant.id)])
        self.assertEqual(
            sorted(text_of(select(c, ".o_smartpm_serial")[0]) for c in cards),
            sorted(meters.mapped("serial_number")),
        )
        card = next(c for c in cards if c.get("data-meter-id") == str(self.meter.id))
        self.assertAlmostEqual(
            kwh_of(text_of(select(card, ".o_smartpm_credit")[0])),
            round(self.meter.credit_kwh, 2),
            places=6,
        )
        _resp, page = self._page(f"/my/meters/{self.meter.id}")
        self.assertEqual(
            text_of(select(card, ".o_smartpm_last_reading")[0]),
            "Meter reading: " + text_of(select(page, ".o_smartpm_last_reading")[0]),
        )
        self.assertTrue(select(doc, ".o_portal_submenu a[href='/my/home']"), "breadcrumbs")

    def test_every_portal_page_has_breadcrumbs_back(self):
        for url, back in (
            ("/my/meters", ["/my/home"]),
            (f"/my/meters/{self.meter.id}", ["/my/home", "/my/meters"]),
            (
                f"/my/meters/{self.meter.id}/buy?amount=3",
                ["/my/home", "/my/meters", f"/my/meters/{self.meter.id}"],
            ),
        ):
            _response, doc = self._page(url)
            links = [a.get("href") for a in select(doc, ".o_portal_submenu a")]
            self.assertEqual(links, back, url)

    def test_purchases_are_paginated(self):
        Purchase = self.back_office["smartpm.credit.purchase"]
        domain = [("meter_id", "=", self.meter.id), ("tenant_id", "=", self.tenant.id)]
        for i in range(25 - Purchase.search_count(domain)):
            self._sell_at_the_back_office(1.0, f"JOURNEY-PAGE-{i}")
        purchases = Purchase.search(domain, order="date desc, id desc")
        self.assertGreater(len(purchases), 20)
        _response, first = self._page(f"/my/meters/{self.meter.id}")
        _response, second = self._page(f"/my/meters/{self.meter.id}/page/2")
        page1 = [r["reference"] for r in self._purchase_rows(first)]
        page2 = [r["reference"] for r in self._purchase_rows(second)]
        self.assertEqual(len(page1), 20)
        self.assertEqual(page1 + page2, purchases.mapped("name"))
        self.assertIn(
            f"/my/meters/{self.meter.id}/page/2",
            [a.get("href") for a in select(first, ".o_portal_pager a")],
        )
        # the figures do not change with the page
        self.assertEqual(self._chart(first, "daily"), self._chart(second, "daily"))

    def test_buy_page_quotes_what_the_sale_will_give(self):
        _response, doc = self._page(f"/my/meters/{self.meter.id}/buy?amount=3")
        tariff = self.meter.sudo()._get_tariff()
        quote = tariff._quote_amount(3.0, vending.month_kwh(self.env, self.meter.sudo()))
        self.assertEqual(
            text_of(select(doc, "#o_payment_summary_energy")[0]), f"{quote['kwh']:.2f} kWh"
        )
        price = text_of(select(doc, "#o_payment_summary_price")[0]).replace("\xa0", " ")
        for part in quote["tier_breakdown"]:
            self.assertIn(f"at {self._money(part['price_per_kwh'])}", price)

    # ------------------------------------------------------------------ buying
    def _tx_params(self, amount):
        return {
            "provider_id": self.demo_provider.id,
            "payment_method_id": self.demo_method.id,
            "token_id": None,
            "amount": amount,
            "flow": "direct",
            "tokenization_requested": False,
            "landing_route": "/elsewhere",
            "is_validation": False,
        }

    def _transactions(self):
        return self.env["payment.transaction"].sudo().search([("smartpm_meter_id", "!=", False)])

    def test_portal_purchase_payment_reference_is_the_cp_number(self):
        self.authenticate("amina", "amina")
        before = self._transactions()
        processing = self.make_jsonrpc_request(
            f"/my/meters/{self.meter.id}/transaction", self._tx_params(3.0)
        )
        tx = self._transactions() - before
        self.assertEqual(len(tx), 1)
        self.assertRegex(tx.reference, r"^CP\d{6}$")
        self.assertEqual(processing["reference"], tx.reference)
        self.assertEqual(tx.landing_route, f"/my/meters/{self.meter.id}")
        # the demo provider pays it, as its card form does
        self.make_jsonrpc_request(
            "/payment/demo/simulate_payment",
            {"reference": tx.reference, "payment_details": "4242", "simulated_state": "done"},
        )
        self.assertEqual(tx.state, "done")
        tx._post_process()
        purchase = tx.smartpm_purchase_id
        self.assertTrue(purchase)
        self.assertEqual(
            (purchase.name, purchase.external_ref, purchase.channel),
            (tx.reference, tx.reference, "portal"),
        )
        self.assertEqual((purchase.amount, purchase.tenant_id), (3.0, self.tenant))
        self.assertEqual(purchase.invoice_id.payment_reference, tx.reference)
        self.assertTrue(tx.payment_id.memo.startswith(tx.reference))
        # and amina sees it under that number, with the amount and kWh the back office has
        _response, doc = self._page(f"/my/meters/{self.meter.id}")
        row = self._purchase_rows(doc)[0]
        self.assertEqual(
            (row["reference"], row["amount"], row["kwh"]),
            (purchase.name, self._money(3.0), round(purchase.kwh, 2)),
        )

    def test_tour_amina_reads_her_meter_and_buys_credit(self):
        before = self._transactions()
        self.start_tour("/my", "smartpm_tenant_journey", login="amina")
        tx = self._transactions() - before
        self.assertEqual(len(tx), 1)
        self.assertEqual(tx.state, "done")
        purchase = tx.smartpm_purchase_id
        self.assertEqual((purchase.name, purchase.amount), (tx.reference, 3.0))
        self.assertEqual(purchase.meter_id, self.meter)
        _response, doc = self._page(f"/my/meters/{self.meter.id}")
        self.assertEqual(self._purchase_rows(doc)[0]["reference"], purchase.name)

    # ------------------------------------------------------------------ refusals
    def test_another_tenants_meter_is_not_found_and_nothing_leaks(self):
        other = self.other_meter.sudo()
        other_refs = self.env["smartpm.credit.purchase"].search([("meter_id", "=", other.id)])
        for url in (
            f"/my/meters/{other.id}",
            f"/my/meters/{other.id}/page/2",
            f"/my/meters/{other.id}/buy?amount=3",
        ):
            response, _doc = self._page(url, status=404)
            self.assertNotIn(other.serial_number, response.text)
            for ref in other_refs.mapped("name"):
                self.assertNotIn(ref, response.text)
        response, doc = self._page("/my/meters")
        self.assertNotIn(other.serial_number, response.text)

    def test_transaction_for_another_tenants_meter_is_refused(self):
        self.authenticate("amina", "amina")
        before = self._transactions()
        with self.assertRaises(JsonRpcException):
            self.make_jsonrpc_request(
                f"/my/meters/{self.other_meter.id}/transaction", self._tx_params(3.0)
            )
        self.assertEqual(self._transactions(), before)

    def test_bad_amounts_are_refused_and_nothing_is_created(self):
        self.authenticate("amina", "amina")
        before = self._transactions()
        purchases = self.env["smartpm.credit.purchase"].search_count([])
        for amount in (-5.0, 0.0, "inf", "nan", "-inf", "abc", 1e308):
            with self.assertRaises(JsonRpcException, msg=repr(amount)):
                self.make_jsonrpc_request(
                    f"/my/meters/{self.meter.id}/transaction", self._tx_params(amount)
                )
            response = self.url_open(
                f"/my/meters/{self.meter.id}/buy?amount={amount}", allow_redirects=False
            )
            self.assertIn(response.status_code, (302, 303), repr(amount))
            self.assertIn("error=", response.headers["Location"])
        self.assertEqual(self._transactions(), before)
        self.assertEqual(self.env["smartpm.credit.purchase"].search_count([]), purchases)
        self.assertFalse(math.isnan(self.meter.credit_kwh))


@tagged("post_install", "-at_install")
class TestTenantJourneyPhone(DemoJourneyCase):
    browser_size = "390x844"
    touch_enabled = True

    def test_tour_amina_on_a_phone(self):
        before = self.env["payment.transaction"].sudo().search([])
        self.start_tour("/my", "smartpm_tenant_journey", login="amina")
        tx = self.env["payment.transaction"].sudo().search([]) - before
        self.assertEqual(len(tx), 1)
        self.assertEqual(tx.smartpm_purchase_id.name, tx.reference)
