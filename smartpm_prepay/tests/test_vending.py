from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged

from ..services import pricing
from ..services.vending import VendingError, vend
from .common import SmartpmCase


@tagged("post_install", "-at_install")
class TestPricing(SmartpmCase):
    """Tariff arithmetic, without taxes (taxes: test_vending_accounting)."""

    def test_flat_price_converts_money_to_kwh(self):
        kwh, parts = pricing.money_to_kwh(100.0, [(0.0, 0.25)])
        self.assertEqual(kwh, 400.0)
        self.assertEqual(len(parts), 1)

    def test_kwh_are_rounded_down(self):
        kwh, _parts = pricing.money_to_kwh(10.0, [(0.0, 0.3)], 0.0, 0.01)
        self.assertEqual(kwh, 33.33)

    def test_purchase_crossing_a_tier_pays_each_part_at_its_price(self):
        bands = [(0.0, 0.10), (100.0, 0.20)]
        kwh, parts = pricing.money_to_kwh(10.0, bands, month_kwh=80.0)
        # 20 kWh left in the first band cost 2.00; 8.00 buys 40 kWh at 0.20
        self.assertEqual(kwh, 60.0)
        self.assertEqual(
            [(p["kwh"], p["price_per_kwh"]) for p in parts], [(20.0, 0.1), (40.0, 0.2)]
        )
        self.assertAlmostEqual(sum(p["amount"] for p in parts), 10.0)

    def test_kwh_already_bought_in_the_month_sets_the_tier(self):
        bands = [(0.0, 0.10), (100.0, 0.20), (300.0, 0.40)]
        self.assertEqual(pricing.money_to_kwh(10.0, bands, 0.0)[0], 100.0)
        self.assertEqual(pricing.money_to_kwh(10.0, bands, 150.0)[0], 50.0)
        self.assertEqual(pricing.money_to_kwh(10.0, bands, 500.0)[0], 25.0)

    def test_kwh_to_money_is_the_inverse(self):
        bands = [(0.0, 0.10), (100.0, 0.20)]
        self.assertAlmostEqual(pricing.kwh_to_money(60.0, bands, 80.0), 10.0)

    def test_tariff_tiers_and_currency_rounding(self):
        tariff = self.env["smartpm.tariff"].create(
            {
                "name": "Block",
                "price_per_kwh": 0.1234,
                "tier_ids": [(0, 0, {"from_kwh": 50.0, "price_per_kwh": 0.2})],
            }
        )
        quote = tariff._quote_amount(10.004, month_kwh=0.0)
        # the amount is rounded to the currency; 50 kWh cost 6.17, 3.83 buys 19.15 kWh
        self.assertEqual(quote["amount"], 10.0)
        self.assertEqual(quote["kwh"], 69.15)
        self.assertEqual(len(quote["tier_breakdown"]), 2)
        self.assertEqual(quote["price_per_kwh"], round(10.0 / 69.15, 4))
        amount = tariff._amount_for_kwh(69.15)
        self.assertEqual(amount, 10.0)
        self.assertGreaterEqual(tariff._quote_amount(amount)["kwh"], 69.15)


class VendingCase(SmartpmCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company = cls.env.company
        cls.company.write({"smartpm_min_amount": 1.0, "smartpm_max_amount": 500.0})
        cls.tariff = cls.env["smartpm.tariff"].create(
            {"name": "Home", "price_per_kwh": 0.25, "low_credit_kwh": 5.0, "trip_kwh": 0.0}
        )
        cls.tenant = cls._tenant("Ama", email="ama@example.com")
        cls.meter = cls._meter(
            "SELL-1", tenant_id=cls.tenant.id, state="active", tariff_id=cls.tariff.id
        )
        cls.Purchase = cls.env["smartpm.credit.purchase"]
        cls.bridge_user = new_test_user(
            cls.env, "t_bridge_v", groups="base.group_user,smartpm_prepay.group_bridge_api"
        )
        cls.operator = new_test_user(cls.env, "t_op_v", groups="smartpm_prepay.group_operator")
        cls.cashier = new_test_user(cls.env, "t_cash_v", groups="smartpm_prepay.group_cashier")
        cls.bank = new_test_user(
            cls.env, "t_bank_v", groups="base.group_user,smartpm_prepay.group_bank_api"
        )
        cls._clear_job_queue()

    def setUp(self):
        super().setUp()
        self.Job = self.env["smartpm.meter.job"].with_user(self.bridge_user)

    def _vend(self, amount=10.0, ref="R1", channel="backoffice", meter=None):
        return vend(self.env, meter or self.meter, amount, channel, ref)

    def _claim(self, job):
        claimed = [j["id"] for j in self.Job.claim("b1", 100, 60)]
        self.assertIn(job.id, claimed)

    def _deliver(self, purchase, credit_kwh=40.0, relay="connected", already_applied=False):
        """The bridge claims the purchase's credit job and reports the meter's answer."""
        self._claim(purchase.job_id)
        result = {
            "transfer_number": purchase.transfer_number,
            "already_applied": already_applied,
            "credit_kwh": credit_kwh,
            "relay": relay,
        }
        self.Job.complete(purchase.job_id.id, "b1", result)


@tagged("post_install", "-at_install")
class TestVend(VendingCase):
    def test_vend_records_the_sale_and_queues_credit_at_high_priority(self):
        purchase = self._vend(10.0)
        self.assertEqual(purchase.state, "queued")
        self.assertEqual(purchase.kwh, 40.0)
        self.assertEqual(purchase.price_per_kwh, 0.25)
        self.assertEqual(purchase.tenant_id, self.tenant)
        self.assertEqual(purchase.transfer_number, 1)
        self.assertTrue(purchase.name.startswith("CP"))
        job = purchase.job_id
        self.assertEqual(job.job_type, "add_credit")
        self.assertEqual(job.payload, {"token": purchase.token, "transfer_number": 1, "kwh": 40.0})
        self.assertEqual(job.priority, 10)
        self.assertEqual(job.idempotency_key, f"purchase-{purchase.id}")

    def test_transfer_numbers_follow_each_other_per_meter(self):
        first, second = self._vend(ref="A"), self._vend(ref="B")
        self.assertEqual((first.transfer_number, second.transfer_number), (1, 2))
        self.assertEqual(self.meter.last_transfer_number, 2)

    def test_receipt_of_a_sale(self):
        receipt = vend(
            self.env(user=self.operator), self.meter, 12.5, "backoffice", "X9"
        )._receipt()
        self.assertEqual(receipt["meter"], "SELL-1")
        self.assertEqual(receipt["tenant"], "Ama")
        self.assertEqual(receipt["tenant_number"], self.tenant.tenant_number)
        self.assertEqual(receipt["amount"], 12.5)
        self.assertEqual(receipt["kwh"], 50.0)
        self.assertEqual(receipt["state"], "queued")
        self.assertEqual(receipt["transfer_number"], 1)
        self.assertEqual(receipt["currency"], self.company.currency_id.name)
        purchase = self.Purchase.browse(receipt["purchase_id"])
        self.assertEqual(purchase.name, receipt["reference"])

    def test_same_reference_returns_the_first_purchase_and_creates_nothing(self):
        first = self._vend(10.0, "SAME")
        again = self._vend(10.0, "SAME")
        self.assertEqual(again, first)
        self.assertEqual(self.Purchase.search_count([("meter_id", "=", self.meter.id)]), 1)
        self.assertEqual(len(self.meter.job_ids), 1)

    def test_same_reference_with_another_amount_is_an_error(self):
        self._vend(10.0, "DUP")
        with self.assertRaises(VendingError) as err:
            self._vend(11.0, "DUP")
        self.assertEqual(err.exception.code, "duplicate_reference")
        self.assertEqual(self.Purchase.search_count([("meter_id", "=", self.meter.id)]), 1)

    def test_same_reference_on_another_meter_is_an_error(self):
        other = self._meter(
            "SELL-2", tenant_id=self.tenant.id, state="active", tariff_id=self.tariff.id
        )
        self._vend(10.0, "DUP")
        with self.assertRaises(VendingError) as err:
            self._vend(10.0, "DUP", meter=other)
        self.assertEqual(err.exception.code, "duplicate_reference")
        self.assertFalse(other.purchase_ids)

    def test_same_reference_on_another_channel_is_another_sale(self):
        first = self._vend(10.0, "REF", channel="backoffice")
        second = self._vend(10.0, "REF", channel="pos")
        self.assertNotEqual(first, second)

    def test_unknown_meter_is_refused(self):
        for meter_id in (999999999, "NOPE-1", None):
            with self.assertRaises(VendingError) as err:
                self.Purchase.quote(meter_id, 10.0)
            self.assertEqual(err.exception.code, "unknown_meter")
        with self.assertRaises(VendingError) as err:
            vend(self.env, self.Purchase.meter_id, 10.0, "backoffice", "U1")
        self.assertEqual(err.exception.code, "unknown_meter")

    def test_meter_found_by_serial_number(self):
        self.assertEqual(self.Purchase._get_meter("sell-1"), self.meter)

    def test_meter_not_in_service_or_without_tenant_is_not_sellable(self):
        draft = self._meter("SELL-D", tenant_id=self.tenant.id, tariff_id=self.tariff.id)
        free = self._meter("SELL-F", state="active", tariff_id=self.tariff.id)
        no_tariff = self._meter("SELL-T", tenant_id=self.tenant.id, state="active")
        for meter in (draft, free, no_tariff):
            with self.assertRaises(VendingError) as err:
                self._vend(meter=meter)
            self.assertEqual(err.exception.code, "meter_not_sellable")
        self.assertFalse(self.Purchase.search([("meter_id", "in", (draft | free | no_tariff).ids)]))

    def test_tenant_default_tariff_applies_to_meters_without_one(self):
        cheap = self.env["smartpm.tariff"].create({"name": "Cheap", "price_per_kwh": 0.1})
        tenant = self._tenant("Kofi", smartpm_tariff_id=cheap.id)
        meter = self._meter("SELL-K", tenant_id=tenant.id, state="active")
        self.assertEqual(self._vend(10.0, meter=meter).kwh, 100.0)

    def test_amount_outside_the_limits_is_refused(self):
        for amount in (0.5, 500.01, 0, -5):
            with self.assertRaises(VendingError) as err:
                self._vend(amount, f"L{amount}")
            self.assertEqual(err.exception.code, "amount_out_of_range")
        self.tariff.max_amount = 1000.0
        self.assertEqual(self._vend(800.0, "BIG").state, "queued")

    def test_sale_limits_come_from_the_settings(self):
        self.env["res.config.settings"].create(
            {"smartpm_min_amount": 20.0, "smartpm_max_amount": 50.0}
        ).execute()
        self.assertEqual(self.tariff._get_amount_limits(), (20.0, 50.0))
        with self.assertRaises(VendingError) as err:
            self._vend(10.0, "SET1")
        self.assertEqual(err.exception.code, "amount_out_of_range")
        self.assertEqual(self._vend(20.0, "SET2").state, "queued")

    def test_malformed_requests_are_refused(self):
        cases = [
            ("10", "backoffice", "M1"),
            (10.0, "telepathy", "M2"),
            (10.0, "backoffice", ""),
            (10.001, "backoffice", "M3"),
            (True, "backoffice", "M4"),
        ]
        for amount, channel, ref in cases:
            with self.assertRaises(VendingError) as err:
                vend(self.env, self.meter, amount, channel, ref)
            self.assertEqual(err.exception.code, "invalid_request", (amount, channel, ref))
        self.assertFalse(self.meter.purchase_ids)

    def test_decimal_amounts_from_soap_are_accepted(self):
        from decimal import Decimal

        self.assertEqual(self._vend(Decimal("12.50"), "DEC").amount, 12.5)

    def test_other_currency_is_refused(self):
        other = (
            self.env["res.currency"]
            .with_context(active_test=False)
            .search([("id", "!=", self.tariff.currency_id.id)], limit=1)
        )
        with self.assertRaises(VendingError) as err:
            vend(self.env, self.meter, 10.0, "backoffice", "C1", currency=other)
        self.assertEqual(err.exception.code, "currency_mismatch")
        purchase = vend(
            self.env, self.meter, 10.0, "backoffice", "C2", currency=self.tariff.currency_id.name
        )
        self.assertEqual(purchase.currency_id, self.tariff.currency_id)

    def test_second_purchase_of_the_month_continues_in_the_tiers(self):
        self.env["smartpm.tariff.tier"].create(
            {"tariff_id": self.tariff.id, "from_kwh": 50.0, "price_per_kwh": 0.5}
        )
        first = self._vend(10.0, "T1")  # 40 kWh at 0.25
        second = self._vend(10.0, "T2")  # 10 kWh at 0.25, then 7.50 buys 15 kWh at 0.50
        self.assertEqual(first.kwh, 40.0)
        self.assertEqual(second.month_kwh_before, 40.0)
        self.assertEqual(second.kwh, 25.0)
        self.assertEqual([p["price_per_kwh"] for p in second.tier_breakdown], [0.25, 0.5])
        self.assertIn("@ 0.5000", second.tier_summary)

    def test_channels_are_restricted_by_group(self):
        cashier = self.env(user=self.cashier)
        self.assertEqual(vend(cashier, self.meter, 10.0, "pos", "P1").state, "queued")
        with self.assertRaises(AccessError):
            vend(cashier, self.meter, 10.0, "backoffice", "P2")
        bank = self.env(user=self.bank)
        with self.assertRaises(AccessError):
            vend(bank, self.meter, 10.0, "portal", "B2")
        self.assertEqual(self.Purchase.search([("external_ref", "like", "B_")]).ids, [])

    def test_quote_tells_what_an_amount_buys_without_selling(self):
        quote = self.Purchase.with_user(self.cashier).quote(self.meter.id, 10.0)
        self.assertEqual(quote["kwh"], 40.0)
        self.assertEqual(quote["currency"], self.company.currency_id.name)
        self.assertFalse(self.meter.purchase_ids)
        with self.assertRaises(VendingError):
            self.Purchase.quote(self.meter.id, "ten")

    def test_quote_kwh_gives_the_amount_to_pay(self):
        self.env["smartpm.tariff.tier"].create(
            {"tariff_id": self.tariff.id, "from_kwh": 50.0, "price_per_kwh": 0.5}
        )
        answer = self.Purchase.with_user(self.cashier).quote_kwh(self.meter.id, 60)
        self.assertEqual(answer["amount"], 17.5)  # 50 x 0.25 + 10 x 0.50
        with self.assertRaises(VendingError):
            self.Purchase.quote_kwh(self.meter.id, -1)

    def test_portal_tenant_reads_only_own_purchases(self):
        portal = new_test_user(self.env, "t_portal_v", groups="base.group_portal")
        portal.partner_id.is_tenant = True
        own_meter = self._meter(
            "SELL-P", tenant_id=portal.partner_id.id, state="active", tariff_id=self.tariff.id
        )
        own = self._vend(10.0, "P1", meter=own_meter)
        self._vend(10.0, "P2")
        visible = self.Purchase.with_user(portal).search([])
        self.assertEqual(visible, own)

    def test_meter_and_tenant_list_their_own_purchases(self):
        purchase = self._vend(10.0, "LIST1")
        for record in (self.meter, self.tenant):
            action = record.action_view_purchases()
            self.assertEqual(action["res_model"], "smartpm.credit.purchase")
            self.assertEqual(self.Purchase.search(action["domain"]), purchase)

    def test_channels_find_sellable_meters_by_serial_tenant_number_or_name(self):
        Purchase = self.Purchase.with_user(self.cashier)
        self._meter("SELL-DRAFT", tenant_id=self.tenant.id)
        by_serial = Purchase.search_sellable_meters("sell-")
        self.assertEqual([m["meter"] for m in by_serial], ["SELL-1"])
        self.assertEqual(by_serial[0]["price_per_kwh"], 0.25)
        self.assertEqual(by_serial[0]["max_amount"], 500.0)
        by_number = Purchase.search_sellable_meters(self.tenant.tenant_number)
        self.assertEqual(by_number[0]["tenant"], "Ama")
        self.assertEqual(Purchase.search_sellable_meters("ama")[0]["meter_id"], self.meter.id)
        self.assertEqual(Purchase.search_sellable_meters("x"), [])

    def test_sales_views_open_for_cashiers_and_operators(self):
        for user in (self.cashier, self.operator):
            for model, types in (
                ("smartpm.credit.purchase", ("list", "form", "search")),
                ("smartpm.meter", ("form",)),
                ("smartpm.tariff", ("form",)),
            ):
                views = self.env[model].with_user(user).get_views([(False, t) for t in types])
                self.assertEqual(set(views["views"]), set(types))
        form = self.env.ref("smartpm_prepay.view_tenant_form")
        views = self.env["res.partner"].with_user(self.operator).get_views([(form.id, "form")])
        self.assertIn("purchase_ids", views["views"]["form"]["arch"])
        wizard = self.env["smartpm.sell.credit.wizard"].with_user(self.operator)
        self.assertIn("journal_id", wizard.get_views([(False, "form")])["views"]["form"]["arch"])

    def test_purchases_are_not_created_directly(self):
        with self.assertRaises(UserError):
            self.Purchase.create(
                {
                    "meter_id": self.meter.id,
                    "tenant_id": self.tenant.id,
                    "amount": 5.0,
                    "currency_id": self.company.currency_id.id,
                    "channel": "backoffice",
                    "external_ref": "D1",
                }
            )


@tagged("post_install", "-at_install")
class TestDelivery(VendingCase):
    def test_completed_job_delivers_the_purchase(self):
        purchase = self._vend(10.0)
        self._deliver(purchase, credit_kwh=52.5)
        self.assertEqual(purchase.state, "delivered")
        self.assertTrue(purchase.date_delivered)
        self.assertEqual(self.meter.credit_kwh, 52.5)

    def test_already_applied_transfer_counts_as_delivered(self):
        purchase = self._vend(10.0)
        self._deliver(purchase, already_applied=True)
        self.assertEqual(purchase.state, "delivered")

    def test_retryable_failure_keeps_the_purchase_queued(self):
        purchase = self._vend(10.0)
        self._claim(purchase.job_id)
        self.Job.fail(purchase.job_id.id, "b1", "timeout", True)
        self.assertEqual(purchase.state, "queued")
        self.assertFalse(purchase.activity_ids)

    def test_final_failure_alerts_operators_and_retry_delivers(self):
        purchase = self._vend(10.0)
        self._claim(purchase.job_id)
        self.Job.fail(purchase.job_id.id, "b1", "meter unreachable", False)
        self.assertEqual(purchase.state, "failed")
        self.assertEqual(len(purchase.activity_ids), 1)
        self.assertIn("meter unreachable", str(purchase.activity_ids.note))
        purchase.with_user(self.operator).action_retry_delivery()
        self.assertEqual(purchase.state, "queued")
        self.assertEqual(purchase.job_id.state, "pending")
        self.assertFalse(purchase.activity_ids)
        self._deliver(purchase)
        self.assertEqual(purchase.state, "delivered")

    def test_delivered_credit_with_relay_still_open_queues_a_reconnect(self):
        purchase = self._vend(10.0)
        self._deliver(purchase, relay="disconnected")
        reconnect = purchase.reconnect_job_id
        self.assertEqual(reconnect.job_type, "reconnect")
        self.assertEqual(reconnect.state, "pending")
        self.assertEqual(self.meter.relay_state, "disconnected")
        self._claim(reconnect)
        self.Job.complete(reconnect.id, "b1", {"relay": "connected", "control_state": 1})
        self.assertEqual(self.meter.relay_state, "connected")
        self.env.cr.precommit.run()  # tracking messages are written at commit
        self.assertIn(
            "Connected", self.meter.message_ids[0].tracking_value_ids.mapped("new_value_char")
        )

    def test_delivered_credit_with_relay_closed_needs_no_reconnect(self):
        purchase = self._vend(10.0)
        self._deliver(purchase)
        self.assertFalse(purchase.reconnect_job_id)

    def test_undelivered_purchase_is_reversed_and_its_job_cancelled(self):
        purchase = self._vend(10.0)
        purchase.with_user(self.operator).action_reverse()
        self.assertEqual(purchase.state, "reversed")
        self.assertEqual(purchase.job_id.state, "cancelled")

    def test_purchase_being_delivered_is_not_reversed_before_the_meter_says(self):
        purchase = self._vend(10.0)
        self._claim(purchase.job_id)
        purchase.with_user(self.operator).action_reverse()  # more in test_reversal.py
        self.assertEqual(purchase.state, "pending_check")
        self.assertEqual(purchase.job_id.state, "claimed")

    def test_delivered_purchase_cannot_be_reversed(self):
        purchase = self._vend(10.0)
        self._claim(purchase.job_id)
        self.Job.complete(purchase.job_id.id, "b1", {"credit_kwh": 40.0, "relay": "connected"})
        with self.assertRaisesRegex(UserError, "never reversed"):
            purchase.with_user(self.operator).action_reverse()
        self.assertEqual(purchase.state, "delivered")

    def test_job_of_a_reversed_purchase_cannot_be_retried(self):
        purchase = self._vend(10.0)
        purchase.action_reverse()
        with self.assertRaisesRegex(UserError, "reversed or delivered"):
            purchase.job_id.with_user(self.operator).action_retry()
        self.assertEqual(purchase.job_id.state, "cancelled")

    def test_credit_job_cancelled_from_the_job_list_fails_the_purchase(self):
        purchase = self._vend(10.0)
        purchase.job_id.with_user(self.operator).action_cancel()
        self.assertEqual(purchase.state, "failed")
        self.assertEqual(len(purchase.activity_ids), 1)

    def test_cashier_cannot_reverse(self):
        purchase = self._vend(10.0)
        with self.assertRaises(AccessError):
            purchase.with_user(self.cashier).action_reverse()
        self.assertEqual(purchase.state, "queued")

    def test_reversed_kwh_do_not_count_in_the_month(self):
        self.env["smartpm.tariff.tier"].create(
            {"tariff_id": self.tariff.id, "from_kwh": 50.0, "price_per_kwh": 0.5}
        )
        self._vend(10.0, "T1").action_reverse()
        self.assertEqual(self._vend(10.0, "T2").kwh, 40.0)


@tagged("post_install", "-at_install")
class TestVendConcurrency(SmartpmCase):
    """Two transactions selling with the same reference: one purchase only."""

    def _cleanup(self, meter_id, tariff_id, tenant_id):
        with self.registry.cursor() as cr:
            cr.execute("DELETE FROM smartpm_credit_purchase WHERE meter_id = %s", (meter_id,))
            cr.execute("DELETE FROM smartpm_meter_job WHERE meter_id = %s", (meter_id,))
            cr.execute("DELETE FROM smartpm_meter_assignment WHERE meter_id = %s", (meter_id,))
            cr.execute("DELETE FROM smartpm_meter WHERE id = %s", (meter_id,))
            cr.execute("DELETE FROM smartpm_tariff WHERE id = %s", (tariff_id,))
            cr.execute("DELETE FROM res_partner WHERE id = %s", (tenant_id,))

    def test_concurrent_sales_with_the_same_reference_create_one_purchase(self):
        import psycopg2.errors

        from odoo import SUPERUSER_ID, api

        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            tariff = env["smartpm.tariff"].create({"name": "Conc", "price_per_kwh": 0.5})
            tenant = env["res.partner"].create({"name": "Conc", "is_tenant": True})
            meter = env["smartpm.meter"].create(
                {
                    "serial_number": "SELL-CONC",
                    "host": "127.0.0.1",
                    "port": 4100,
                    "state": "active",
                    "tenant_id": tenant.id,
                    "tariff_id": tariff.id,
                }
            )
            ids = (meter.id, tariff.id, tenant.id)
        try:
            with self.registry.cursor() as cr1, self.registry.cursor() as cr2:
                env1 = api.Environment(cr1, SUPERUSER_ID, {})
                env2 = api.Environment(cr2, SUPERUSER_ID, {})
                first = vend(env1, env1["smartpm.meter"].browse(ids[0]), 10.0, "bank_soap", "TX-1")
                cr2.execute("SET LOCAL lock_timeout = '500ms'")
                # the second sale waits for the first one's meter lock instead of selling again
                with self.assertRaises(psycopg2.errors.LockNotAvailable):
                    vend(env2, env2["smartpm.meter"].browse(ids[0]), 10.0, "bank_soap", "TX-1")
                cr2.rollback()
                cr1.commit()
                # Odoo retries the request: the retry finds the first sale
                again = vend(env2, env2["smartpm.meter"].browse(ids[0]), 10.0, "bank_soap", "TX-1")
                self.assertEqual(again.id, first.id)
                cr2.execute(
                    "SELECT count(*) FROM smartpm_credit_purchase WHERE external_ref = 'TX-1'"
                )
                self.assertEqual(cr2.fetchone()[0], 1)
                cr2.rollback()
        finally:
            self._cleanup(*ids)
