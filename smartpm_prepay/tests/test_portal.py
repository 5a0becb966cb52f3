from datetime import datetime, time, timedelta

import pytz

from odoo.addons.account.tests.common import AccountTestInvoicingHttpCommon
from odoo.tests import new_test_user, tagged
from odoo.tests.common import JsonRpcException

from ..services import local_time
from .common import assert_payment_document


class PortalCase(AccountTestInvoicingHttpCommon):
    """Two tenants with one meter each; tenant A has a portal login; the demo provider pays."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.user.groups_id += cls.env.ref("smartpm_prepay.group_manager")
        cls.company = cls.env.company
        cls.company.write({"smartpm_min_amount": 1.0, "smartpm_max_amount": 500.0})
        cls.tariff = cls.env["smartpm.tariff"].create({"name": "Portal", "price_per_kwh": 0.25})
        cls.tenant_a = cls.env["res.partner"].create(
            {"name": "Amara Portal", "is_tenant": True, "email": "amara@example.com"}
        )
        cls.tenant_b = cls.env["res.partner"].create({"name": "Bola Other", "is_tenant": True})
        cls.meter_a = cls._meter("TOUR-001", cls.tenant_a, 4100)
        cls.meter_b = cls._meter("OTHER-002", cls.tenant_b, 4101)
        cls.portal_user = new_test_user(
            cls.env,
            "tenant_a",
            groups="base.group_portal",
            partner_id=cls.tenant_a.id,
            password="tenant_a-pw-123",
        )
        cls.payment_method = cls.env.ref("payment_demo.payment_method_demo").sudo()
        cls.payment_method.active = True
        # the demo provider of the test company (the stock one belongs to the main company)
        cls.provider = (
            cls.env.ref("payment.payment_provider_demo")
            .sudo()
            .copy(
                {
                    "name": "Demo (test company)",
                    "company_id": cls.company.id,
                }
            )
        )
        cls.provider.write(
            {
                "state": "test",
                "is_published": True,
                "payment_method_ids": [(6, 0, cls.payment_method.ids)],
                "journal_id": cls.company_data["default_journal_bank"].id,
            }
        )

    @classmethod
    def _meter(cls, serial, tenant, port):
        return cls.env["smartpm.meter"].create(
            {
                "serial_number": serial,
                "host": "127.0.0.1",
                "port": port,
                "state": "active",
                "tenant_id": tenant.id,
                "tariff_id": cls.tariff.id,
            }
        )

    def _login(self):
        self.authenticate("tenant_a", "tenant_a-pw-123")


@tagged("post_install", "-at_install")
class TestMeterPortal(PortalCase):
    def test_own_meter_page_answers_200(self):
        self._login()
        response = self.url_open(f"/my/meters/{self.meter_a.id}")
        self.assertEqual(response.status_code, 200)
        self.assertIn("TOUR-001", response.text)

    def test_other_tenants_meter_answers_404(self):
        self._login()
        response = self.url_open(f"/my/meters/{self.meter_b.id}")
        self.assertEqual(response.status_code, 404)
        self.assertNotIn("OTHER-002", response.text)

    def test_meter_id_that_does_not_exist_answers_404_too(self):
        self._login()
        self.assertEqual(self.url_open("/my/meters/999999999").status_code, 404)

    def test_other_tenants_meter_cannot_be_paid_for(self):
        self._login()
        response = self.url_open(f"/my/meters/{self.meter_b.id}/buy?amount=10")
        self.assertEqual(response.status_code, 404)

    def test_anonymous_visitor_is_redirected_to_login(self):
        response = self.url_open(f"/my/meters/{self.meter_a.id}", allow_redirects=False)
        self.assertIn(response.status_code, (302, 303))
        self.assertIn("/web/login", response.headers["Location"])

    def test_meter_list_shows_only_own_meters(self):
        self._login()
        response = self.url_open("/my/meters")
        self.assertIn("TOUR-001", response.text)
        self.assertNotIn("OTHER-002", response.text)

    def test_portal_home_counts_the_tenants_meters(self):
        self._login()
        counters = self.make_jsonrpc_request("/my/counters", {"counters": ["meter_count"]})
        self.assertEqual(counters["meter_count"], 1)

    def _read_register(self, unit, values):
        """Register readings at the company's local midnights (days ago -> value), and the
        back office's daily consumption computed from them (as its hourly cron does)."""
        Consumption = self.env["smartpm.consumption.daily"]
        tz = local_time.company_tz(self.company)
        today = datetime.now(tz).date()
        # the tenant has held the meter for a while (consumption is shown for her days only)
        self.meter_a.assignment_ids.sudo().date_start = datetime.now() - timedelta(days=30)
        self.env["smartpm.reading"].create(
            [
                {
                    "meter_id": self.meter_a.id,
                    "obis": "1.0.1.8.0.255",
                    "value": value,
                    "unit": unit,
                    "reading_time": tz.localize(
                        datetime.combine(today - timedelta(days=days), time.min)
                    )
                    .astimezone(pytz.utc)
                    .replace(tzinfo=None),
                }
                for days, value in values
            ]
        )
        Consumption._rebuild_days(today - timedelta(days=5), today, self.company)
        return today

    def test_meter_page_shows_daily_consumption_from_readings(self):
        today = self._read_register("kWh", ((2, 100.0), (1, 107.5), (0, 111.0)))
        self._login()
        response = self.url_open(f"/my/meters/{self.meter_a.id}")
        two_days_ago = (today - timedelta(days=2)).isoformat()
        yesterday = (today - timedelta(days=1)).isoformat()
        self.assertRegex(
            response.text,
            rf'data-period="{two_days_ago}">\s*<td>[^<]*</td>\s*'
            r'<td class="text-end o_smartpm_kwh">\s*7\.500 kWh',
        )
        self.assertRegex(
            response.text,
            rf'data-period="{yesterday}">\s*<td>[^<]*</td>\s*'
            r'<td class="text-end o_smartpm_kwh">\s*3\.500 kWh',
        )
        self.assertIn("111.000 kWh", response.text)  # the register, in kWh as it was read

    def test_consumption_of_the_meters_previous_tenant_is_not_shown(self):
        today = self._read_register("kWh", ((2, 100.0), (1, 107.5), (0, 111.0)))
        two_days_ago = today - timedelta(days=2)
        row = self.env["smartpm.consumption.daily"].search(
            [("meter_id", "=", self.meter_a.id), ("day", "=", two_days_ago)]
        )
        self.assertEqual(row.kwh, 7.5)
        row.tenant_id = self.tenant_b  # the meter was someone else's that day
        self._login()
        response = self.url_open(f"/my/meters/{self.meter_a.id}")
        self.assertRegex(
            response.text,
            rf'data-period="{two_days_ago.isoformat()}">\s*<td>[^<]*</td>\s*'
            r'<td class="text-end o_smartpm_kwh">\s*0\.000 kWh',
        )
        self.assertNotIn("7.500 kWh", response.text)

    def test_register_read_in_wh_is_shown_in_kwh(self):
        today = self._read_register("Wh", ((1, 1_000_000.0), (0, 1_005_000.0)))
        self._login()
        response = self.url_open(f"/my/meters/{self.meter_a.id}")
        self.assertIn("1,005.000 kWh", response.text)  # the last reading, not 1005000 kWh
        yesterday = (today - timedelta(days=1)).isoformat()
        self.assertRegex(
            response.text,
            rf'data-period="{yesterday}">\s*<td>[^<]*</td>\s*'
            r'<td class="text-end o_smartpm_kwh">\s*5\.000 kWh',
        )
        self.assertNotIn("5000.00 kWh", response.text)
        self.assertNotIn("5,000.000 kWh", response.text)

    def test_sale_whose_reversal_waits_for_the_meter_shows_refund_pending(self):
        from ..services import engine, job_queue
        from ..services.vending import vend

        purchase = vend(self.env, self.meter_a, 10.0, "backoffice", "PORTAL-REV-1")
        engine_env = engine.as_engine(self.env["smartpm.meter.job"]).env
        self.assertIn(
            purchase.job_id.id, [j["id"] for j in job_queue.claim(engine_env, "b1", 500, 60)]
        )
        purchase.action_reverse()
        self.assertEqual(purchase.state, "pending_check")
        self._login()
        response = self.url_open(f"/my/meters/{self.meter_a.id}")
        self.assertEqual(response.status_code, 200)
        row = response.text.split(f'data-reference="{purchase.name}"')[1].split("</tr>")[0]
        self.assertIn("Refund pending", row)
        self.assertNotIn("Reversed", row)

    def test_low_credit_notice_is_shown(self):
        self.meter_a.sudo().write({"credit_kwh": 1.0, "online_state": "online"})
        self._login()
        response = self.url_open(f"/my/meters/{self.meter_a.id}")
        self.assertIn("Low credit", response.text)

    def test_amount_out_of_range_is_refused_before_payment(self):
        self._login()
        response = self.url_open(
            f"/my/meters/{self.meter_a.id}/buy?amount=900", allow_redirects=False
        )
        self.assertIn(response.status_code, (302, 303))
        self.assertIn("error=", response.headers["Location"])
        self.assertFalse(
            self.env["payment.transaction"].search([("smartpm_meter_id", "=", self.meter_a.id)])
        )

    def test_bad_amounts_are_refused_on_the_buy_page_and_create_nothing(self):
        self._login()
        Tx = self.env["payment.transaction"]
        before = (Tx.search_count([]), self.env["smartpm.credit.purchase"].search_count([]))
        for amount in ("inf", "-inf", "nan", "1e400", "1" + "0" * 400, "-0", "-5", "abc", ""):
            with self.subTest(amount=amount[:12]):
                response = self.url_open(
                    f"/my/meters/{self.meter_a.id}/buy?amount={amount}", allow_redirects=False
                )
                self.assertIn(response.status_code, (302, 303))
                self.assertIn("error=", response.headers["Location"])
                self.assertNotIn("Traceback", response.text)
        after = (Tx.search_count([]), self.env["smartpm.credit.purchase"].search_count([]))
        self.assertEqual(after, before)

    def test_buy_page_offers_the_demo_provider(self):
        self._login()
        response = self.url_open(f"/my/meters/{self.meter_a.id}/buy?amount=12")
        self.assertEqual(response.status_code, 200)
        self.assertIn("o_payment_form", response.text)
        self.assertIn("48.00 kWh", response.text)

    def test_buy_page_writes_the_energy_in_the_tenants_language(self):
        self.env["res.lang"]._activate_lang("fr_FR")
        self.portal_user.lang = "fr_FR"
        self._login()
        response = self.url_open(f"/my/meters/{self.meter_a.id}/buy?amount=12")
        self.assertEqual(response.status_code, 200)
        self.assertIn("o_payment_form", response.text)
        self.assertIn("48,00 kWh", response.text)  # 12 at 0.25, with the French comma
        self.assertNotIn("48.00 kWh", response.text)


@tagged("post_install", "-at_install")
class TestPortalTransactionRoute(PortalCase):
    def _tx_params(self, amount):
        return {
            "provider_id": self.provider.id,
            "payment_method_id": self.payment_method.id,
            "token_id": None,
            "amount": amount,
            "flow": "direct",
            "tokenization_requested": False,
            "landing_route": "/somewhere/else",
            "is_validation": False,
        }

    def _transactions(self):
        return self.env["payment.transaction"].search([("smartpm_meter_id", "!=", False)])

    def test_transaction_names_the_meter_and_the_tenant(self):
        self._login()
        self.make_jsonrpc_request(
            f"/my/meters/{self.meter_a.id}/transaction", self._tx_params(12.0)
        )
        tx = self._transactions()
        self.assertEqual(len(tx), 1)
        self.assertEqual(
            (tx.smartpm_meter_id, tx.partner_id, tx.amount), (self.meter_a, self.tenant_a, 12.0)
        )
        self.assertEqual(tx.landing_route, f"/my/meters/{self.meter_a.id}")

    def test_transaction_reference_is_the_purchase_number(self):
        self._login()
        self.make_jsonrpc_request(
            f"/my/meters/{self.meter_a.id}/transaction", self._tx_params(12.0)
        )
        tx = self._transactions()
        self.assertRegex(tx.reference, r"^CP\d{6}$")
        tx._set_done()
        tx._post_process()
        purchase = tx.smartpm_purchase_id
        self.assertEqual((purchase.name, purchase.external_ref), (tx.reference, tx.reference))
        self.assertEqual(purchase.invoice_id.payment_reference, tx.reference)

    def test_tampered_amount_out_of_range_creates_no_transaction(self):
        self._login()
        with self.assertRaises(JsonRpcException):
            self.make_jsonrpc_request(
                f"/my/meters/{self.meter_a.id}/transaction", self._tx_params(9999.0)
            )
        self.assertFalse(self._transactions())

    def test_bad_amounts_create_no_transaction(self):
        self._login()
        for amount in (10**400, -(10**400), "inf", "nan", "1e400", -0.0, [], {}):
            with self.subTest(amount=str(amount)[:12]), self.assertRaises(JsonRpcException):
                self.make_jsonrpc_request(
                    f"/my/meters/{self.meter_a.id}/transaction", self._tx_params(amount)
                )
        self.assertFalse(self._transactions())

    def test_transaction_for_another_tenants_meter_is_refused(self):
        self._login()
        with self.assertRaises(JsonRpcException) as caught:
            self.make_jsonrpc_request(
                f"/my/meters/{self.meter_b.id}/transaction", self._tx_params(12.0)
            )
        self.assertIn(
            "NotFound", caught.exception.args[0] if caught.exception.args else str(caught.exception)
        )
        self.assertFalse(self._transactions())


@tagged("post_install", "-at_install")
class TestPortalPayment(PortalCase):
    def _done_transaction(self, amount=12.0, reference="CREDIT-TOUR-001"):
        tx = (
            self.env["payment.transaction"]
            .sudo()
            .create(
                {
                    "provider_id": self.provider.id,
                    "payment_method_id": self.payment_method.id,
                    "amount": amount,
                    "currency_id": self.company.currency_id.id,
                    "partner_id": self.tenant_a.id,
                    "reference": reference,
                    "operation": "online_direct",
                    "smartpm_meter_id": self.meter_a.id,
                }
            )
        )
        tx._set_done()
        return tx

    def _portal_purchases(self):
        return self.env["smartpm.credit.purchase"].search(
            [("meter_id", "=", self.meter_a.id), ("channel", "=", "portal")]
        )

    def test_done_transaction_sells_credit_once(self):
        tx = self._done_transaction()
        tx._post_process()
        tx._post_process()
        purchase = self._portal_purchases()
        self.assertEqual(len(purchase), 1)
        self.assertEqual(
            (purchase.external_ref, purchase.amount, purchase.kwh), (tx.reference, 12.0, 48.0)
        )
        self.assertEqual(purchase.state, "queued")
        self.assertEqual(tx.smartpm_purchase_id, purchase)

    def test_done_transaction_pays_the_tenants_invoice_through_the_provider_journal(self):
        tx = self._done_transaction()
        tx._post_process()
        invoice = self._portal_purchases().invoice_id
        self.assertEqual(invoice.partner_id, self.tenant_a)
        self.assertEqual(invoice.state, "posted")
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        self.assertEqual(tx.payment_id.journal_id, self.provider.journal_id)
        assert_payment_document(self, self._portal_purchases(), self.provider.journal_id)

    def test_pending_transaction_sells_nothing(self):
        tx = (
            self.env["payment.transaction"]
            .sudo()
            .create(
                {
                    "provider_id": self.provider.id,
                    "payment_method_id": self.payment_method.id,
                    "amount": 12.0,
                    "currency_id": self.company.currency_id.id,
                    "partner_id": self.tenant_a.id,
                    "reference": "CREDIT-PENDING",
                    "smartpm_meter_id": self.meter_a.id,
                }
            )
        )
        tx._set_pending()
        tx._post_process()
        self.assertFalse(self._portal_purchases())

    def test_payment_for_a_meter_taken_out_of_service_leaves_an_activity(self):
        tx = self._done_transaction()
        self.meter_a.state = "decommissioned"
        tx._post_process()
        self.assertFalse(self._portal_purchases())
        self.assertTrue(tx.payment_id, "the money is kept on the tenant's account")
        self.assertTrue(self.meter_a.activity_ids)

    def test_tour_tenant_buys_credit_and_watches_it_arrive(self):
        self.start_tour("/my/meters", "smartpm_portal_buy_credit", login="tenant_a")
        purchase = self._portal_purchases()
        self.assertEqual(len(purchase), 1)
        self.assertEqual((purchase.amount, purchase.kwh), (12.0, 48.0))
        self.assertIn(purchase.invoice_id.payment_state, ("paid", "in_payment"))
        # the bridge delivers the credit to the meter
        bridge = new_test_user(self.env, "bridge_t", groups="smartpm_prepay.group_bridge_api")
        Job = self.env["smartpm.meter.job"].with_user(bridge)
        self.assertIn(purchase.job_id.id, [j["id"] for j in Job.claim("b1", 100, 60)])
        Job.complete(
            purchase.job_id.id,
            "b1",
            {
                "transfer_number": purchase.transfer_number,
                "already_applied": False,
                "credit_kwh": 48.0,
                "relay": "connected",
            },
        )
        self.assertEqual(purchase.state, "delivered")
        self.env.flush_all()
        self.start_tour(
            f"/my/meters/{self.meter_a.id}", "smartpm_portal_credit_delivered", login="tenant_a"
        )


@tagged("post_install", "-at_install")
class TestPortalPhone(PortalCase):
    browser_size = "375x812"
    touch_enabled = True

    def test_tour_buying_credit_works_on_a_phone_sized_screen(self):
        self.start_tour("/my/meters", "smartpm_portal_buy_credit", login="tenant_a")
        purchases = self.env["smartpm.credit.purchase"].search([("channel", "=", "portal")])
        self.assertEqual(purchases.meter_id, self.meter_a)
