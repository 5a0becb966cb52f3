"""Point of Sale: credit lines become purchases when the paid order reaches the server."""

import copy
import uuid
from datetime import timedelta

from odoo import fields
from odoo.addons.point_of_sale.tests.common import TestPoSCommon
from odoo.exceptions import UserError, ValidationError
from odoo.tests import new_test_user, tagged
from odoo.tools.misc import format_amount

from .common import assert_payment_document


class SmartpmPosCase(TestPoSCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.user.groups_id += cls.env.ref("smartpm_prepay.group_cashier")
        cls.credit = cls.env.ref("smartpm_prepay.product_electricity_credit")
        cls.credit.write({"taxes_id": [(5, 0, 0)], "categ_id": cls.categ_basic.id})
        cls.tariff = cls.env["smartpm.tariff"].sudo().create({"name": "Flat", "price_per_kwh": 0.5})
        su = cls.env(su=True)  # the grid is the manager's; the test user is a cashier
        site = su["smartpm.site"].create({"name": "POS Court", "code": "PC"})
        line = su["smartpm.line"].create({"name": "Line POS", "site_id": site.id})
        cls.transformer = su["smartpm.transformer"].create({"name": "TR-POS", "line_id": line.id})
        cls.tenant = cls.env["res.partner"].sudo().create({"name": "Pos Tenant", "is_tenant": True})
        cls.meter = cls._meter("POS-OK", state="active", tenant_id=cls.tenant.id)
        cls.draft_meter = cls._meter("POS-DRAFT", tenant_id=cls.tenant.id)

    @classmethod
    def _meter(cls, serial, **vals):
        return cls.env(su=True)["smartpm.meter"].create(
            {
                "serial_number": serial,
                "host": "127.0.0.1",
                "port": 4100,
                "transformer_id": cls.transformer.id,
                "tariff_id": cls.tariff.id,
                **vals,
            }
        )

    def setUp(self):
        super().setUp()
        self.config = self.basic_config
        self.open_new_session()

    def _order_data(self, lines, order_uuid=None, taxes=None):
        """UI order data; ``lines`` = [(meter, amount)], ``taxes`` included in the amount."""
        data = self.create_ui_order_data(
            [
                {
                    "product": self.credit,
                    "quantity": 1,
                    "uuid": str(uuid.uuid4()),
                    "smartpm_meter_id": meter.id,
                    "smartpm_kwh": 999.0,  # what the client claims: never used
                }
                for meter, _amount in lines
            ],
            uuid=order_uuid or str(uuid.uuid4()),
        )
        total = 0.0
        for command, (_meter, amount) in zip(data["lines"], lines, strict=True):
            untaxed = amount
            if taxes:
                untaxed = taxes.compute_all(amount, self.currency)["total_excluded"]
            command[2].update(
                price_unit=amount,
                price_subtotal=untaxed,
                price_subtotal_incl=amount,
                tax_ids=[(6, 0, taxes.ids if taxes else [])],
            )
            total += amount
        data["payment_ids"][0][2]["amount"] = total
        untaxed_total = sum(c[2]["price_subtotal"] for c in data["lines"])
        data.update(amount_paid=total, amount_total=total, amount_tax=total - untaxed_total)
        return data

    def _sync(self, *orders):
        result = self.env["pos.order"].sync_from_ui(list(orders))
        return self.env["pos.order"].browse([o["id"] for o in result["pos.order"]])

    def _purchases(self, meter=None):
        return self.env["smartpm.credit.purchase"].search(
            [("meter_id", "=", (meter or self.meter).id)]
        )


@tagged("post_install", "-at_install")
class TestPosOrderPath(SmartpmPosCase):
    def test_paid_order_line_becomes_purchase(self):
        order = self._sync(self._order_data([(self.meter, 10.0)]))
        purchase = self._purchases()
        self.assertEqual(order.state, "paid")
        self.assertEqual(len(purchase), 1)
        self.assertEqual(purchase.channel, "pos")
        self.assertEqual(purchase.amount, 10.0)
        self.assertEqual(purchase.pos_order_line_id, order.lines)
        assert_payment_document(self, purchase)
        self.assertEqual(purchase.external_ref, order.lines._smartpm_external_ref())
        self.assertTrue(purchase.external_ref.startswith(order.uuid + ":"))

    def test_server_computes_the_kwh(self):
        self._sync(self._order_data([(self.meter, 10.0)]))
        self.assertAlmostEqual(self._purchases().kwh, 20.0)  # 10.00 at 0.50, not 999

    def test_purchase_queues_the_credit_job(self):
        self._sync(self._order_data([(self.meter, 10.0)]))
        purchase = self._purchases()
        self.assertEqual(purchase.job_id.job_type, "add_credit")
        self.assertEqual(purchase.job_id.meter_id, self.meter)
        self.assertEqual(purchase.state, "queued")

    def test_order_synced_twice_sells_once(self):
        data = self._order_data([(self.meter, 10.0)])
        first = self._sync(copy.deepcopy(data))
        second = self._sync(copy.deepcopy(data))
        self.assertEqual(first, second)
        self.assertEqual(self.env["pos.order"].search_count([("uuid", "=", data["uuid"])]), 1)
        self.assertEqual(len(self._purchases()), 1)

    def test_selling_the_order_again_does_not_sell_again(self):
        order = self._sync(self._order_data([(self.meter, 10.0)]))
        order._smartpm_sell_credit()
        order.action_pos_order_paid()
        self.assertEqual(len(self._purchases()), 1)

    def test_order_arriving_as_a_second_order_is_refused(self):
        # two syncs racing can make two pos.order rows of one POS order: the second is
        # refused (sells and books once)
        data = self._order_data([(self.meter, 10.0)])
        first = self._sync(copy.deepcopy(data))
        first.uuid = "seen-as-another-order"
        with self.assertRaisesRegex(UserError, "already received"):
            self._sync(copy.deepcopy(data))
        self.assertEqual(len(self._purchases()), 1)

    def test_two_lines_two_purchases(self):
        other = self._meter("POS-OK2", state="active", tenant_id=self.tenant.id)
        self._sync(self._order_data([(self.meter, 10.0), (other, 4.0)]))
        self.assertEqual(self._purchases().amount, 10.0)
        self.assertEqual(self._purchases(other).amount, 4.0)

    def test_unsellable_meter_refuses_the_order(self):
        data = self._order_data([(self.draft_meter, 10.0)])
        # the RPC's transaction is rolled back on the error: a savepoint plays that part
        with self.assertRaisesRegex(UserError, "POS-DRAFT"), self.env.cr.savepoint():
            self._sync(data)
        self.assertFalse(self.env["pos.order"].search([("uuid", "=", data["uuid"])]))
        self.assertFalse(self._purchases(self.draft_meter))

    def test_credit_line_without_meter_refuses_the_order(self):
        data = self._order_data([(self.meter, 10.0)])
        data["lines"][0][2]["smartpm_meter_id"] = False
        with self.assertRaisesRegex(UserError, "has no meter"):
            self._sync(data)

    def test_amount_below_minimum_refuses_the_order(self):
        self.env.company.sudo().smartpm_min_amount = 5.0
        with self.assertRaisesRegex(UserError, "amount must be between"):
            self._sync(self._order_data([(self.meter, 2.0)]))
        self.assertFalse(self._purchases())

    def test_meter_of_another_company_is_refused(self):
        su = self.env(su=True)
        other = su["res.company"].create({"name": "Other Grid Co"})
        tariff = su["smartpm.tariff"].create(
            {"name": "Other", "price_per_kwh": 0.5, "company_id": other.id}
        )
        meter = su["smartpm.meter"].create(
            {
                "serial_number": "POS-ELSEWHERE",
                "host": "127.0.0.1",
                "company_id": other.id,
                "tariff_id": tariff.id,
                "tenant_id": self.tenant.id,
                "state": "active",
            }
        )
        with self.assertRaisesRegex(UserError, "belongs to Other Grid Co"):
            self._sync(self._order_data([(meter, 10.0)]))

    def test_draft_order_sells_nothing(self):
        data = self._order_data([(self.meter, 10.0)])
        data["state"] = "draft"
        self._sync(data)
        self.assertFalse(self._purchases())

    def test_credit_line_without_amount_refuses_the_order(self):
        data = self._order_data([(self.meter, 0.0)])
        with self.assertRaisesRegex(UserError, "has no amount"):
            self._sync(data)

    def test_refund_of_credit_is_refused(self):
        data = self._order_data([(self.meter, -10.0)])
        data["lines"][0][2]["qty"] = -1
        with self.assertRaisesRegex(UserError, "cannot be refunded"):
            self._sync(data)

    def test_sync_answer_carries_the_purchase_reference(self):
        result = self.env["pos.order"].sync_from_ui([self._order_data([(self.meter, 10.0)])])
        line = result["pos.order.line"][0]
        self.assertEqual(line["smartpm_purchase_ref"], self._purchases().name)
        self.assertAlmostEqual(line["smartpm_purchase_kwh"], 20.0)
        self.assertEqual(line["smartpm_meter_id"], self.meter.id)

    def test_order_paid_in_the_back_office_sells_credit(self):
        data = self._order_data([(self.meter, 10.0)])
        data.update(state="draft", payment_ids=[], amount_paid=0.0)
        order = self._sync(data)
        self.make_payment(order, self.cash_pm1, 10.0)
        self.assertEqual(order.state, "paid")
        self.assertEqual(self._purchases().pos_order_line_id, order.lines)

    def test_line_without_the_tariff_taxes_is_refused(self):
        self.tariff.sudo().tax_ids = self.taxes["tax10"]
        with self.assertRaisesRegex(UserError, "tariff's taxes"):
            self._sync(self._order_data([(self.meter, 10.0)]))

    def test_receipt_screen_follows_the_delivery(self):
        order = self._sync(self._order_data([(self.meter, 10.0)]))
        [status] = self.env["pos.order"].smartpm_credit_status(order.id)
        self.assertEqual((status["meter"], status["state"]), ("POS-OK", "queued"))
        jobs = self.env(su=True)["smartpm.meter.job"]  # the bridge's side of the protocol
        job = self._purchases().job_id
        self.assertIn(job.id, [j["id"] for j in jobs.claim("b1", 100, 60)])
        jobs.complete(
            job.id,
            "b1",
            {
                "transfer_number": 1,
                "already_applied": False,
                "credit_kwh": 25.0,
                "relay": "connected",
            },
        )
        [status] = self.env["pos.order"].smartpm_credit_status(order.id)
        self.assertEqual(status["state"], "delivered")
        self.assertEqual(status["credit_kwh"], 25.0)


@tagged("post_install", "-at_install")
class TestPosMeterLookup(SmartpmPosCase):
    def test_search_by_meter_tenant_name_and_number(self):
        Meter = self.env["smartpm.meter"]
        for query in ("pos-ok", "pos tenant", self.tenant.tenant_number):
            serials = [m["serial_number"] for m in Meter.pos_search_meters(query)["meters"]]
            self.assertIn("POS-OK", serials, query)

    def test_search_shows_why_a_meter_cannot_be_sold(self):
        found = {
            m["serial_number"]: m
            for m in self.env["smartpm.meter"].pos_search_meters("POS")["meters"]
        }
        self.assertFalse(found["POS-OK"]["refusal"])
        self.assertIn("not in service", found["POS-DRAFT"]["refusal"])
        self.assertEqual(found["POS-OK"]["tenant_name"], "Pos Tenant")

    def test_quote_previews_kwh(self):
        quote = self.env["smartpm.meter"].pos_quote_credit(self.meter.id, 10.0, self.config.id)
        self.assertFalse(quote["refusal"])
        self.assertAlmostEqual(quote["kwh"], 20.0)

    def test_quoted_price_is_the_one_the_portal_shows(self):
        # taxes included in the price, as the tenant pays it, on every screen
        self.tariff.sudo().tax_ids = self.taxes["tax10"]
        quote = self.env["smartpm.meter"].pos_quote_credit(self.meter.id, 11.0, self.config.id)
        self.assertAlmostEqual(quote["kwh"], 20.0)
        self.assertEqual(quote["price_info"], "$\N{NO-BREAK SPACE}0.55 per kWh")
        self.assertIn(quote["price_info"], self.tariff._price_description())

    def test_quote_refuses_an_amount_out_of_range(self):
        self.env.company.sudo().smartpm_min_amount = 5.0
        quote = self.env["smartpm.meter"].pos_quote_credit(self.meter.id, 2.0, self.config.id)
        self.assertIn("between", quote["refusal"])
        self.assertEqual(quote["kwh"], 0.0)

    def test_quote_refuses_unsellable_meter(self):
        quote = self.env["smartpm.meter"].pos_quote_credit(
            self.draft_meter.id, 10.0, self.config.id
        )
        self.assertIn("not in service", quote["refusal"])

    def test_session_loads_only_meters_of_its_open_orders(self):
        self._meter("POS-OTHER", state="active", tenant_id=self.tenant.id)
        data = self._order_data([(self.meter, 10.0)])
        data["state"] = "draft"
        self._sync(data)
        loaded = self.pos_session.load_data([])["smartpm.meter"]["data"]
        self.assertEqual([m["serial_number"] for m in loaded], ["POS-OK"])
        self.assertEqual(loaded[0]["tenant_name"], "Pos Tenant")


@tagged("post_install", "-at_install")
class TestPosSessionAccounting(SmartpmPosCase):
    def test_closing_the_session_books_the_credit_sales(self):
        self._sync(
            self._order_data([(self.meter, 10.0)]),
            self._order_data([(self.meter, 5.0)]),
        )
        session = self.pos_session
        session.post_closing_cash_details(15.0)
        session.close_session_from_ui()
        self.assertEqual(session.state, "closed")
        income = self.company.smartpm_prepayment_account_id  # owed energy, not revenue
        self.assertRecordValues(
            session.move_id.line_ids.sorted("credit"),
            [
                {
                    "account_id": self.cash_pm1.receivable_account_id.id,
                    "debit": 15.0,
                    "credit": 0.0,
                },
                {"account_id": income.id, "debit": 0.0, "credit": 15.0},
            ],
        )
        self.assertEqual(session.move_id.state, "posted")
        cash_move = session.statement_line_ids.move_id
        self.assertEqual(sum(cash_move.line_ids.mapped("debit")), 15.0)
        self.assertEqual(len(self._purchases()), 2)

    def test_closing_books_the_tariff_taxes(self):
        tax = self.taxes["tax10"]  # 10 %, included in the price
        self.tariff.sudo().tax_ids = tax
        self._sync(self._order_data([(self.meter, 11.0)], taxes=tax))
        session = self.pos_session
        session.post_closing_cash_details(11.0)
        session.close_session_from_ui()
        income = self.company.smartpm_prepayment_account_id  # owed energy, not revenue
        tax_account = tax.invoice_repartition_line_ids.account_id
        lines = session.move_id.line_ids
        self.assertEqual(lines.filtered(lambda ml: ml.account_id == income).credit, 10.0)
        self.assertEqual(lines.filtered(lambda ml: ml.account_id == tax_account).credit, 1.0)
        self.assertEqual(sum(lines.mapped("debit")), 11.0)
        self.assertAlmostEqual(self._purchases().amount_tax, 1.0)


@tagged("post_install", "-at_install")
class TestPosCreditPopupRpc(SmartpmPosCase):
    """What the credit popup asks the server, and what a cashier calling it directly gets."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tenant.write({"phone": "+1 (555) 010-2233", "mobile": False})
        cls.cashier = new_test_user(
            cls.env,
            "t_pos_cashier",
            groups="base.group_user,point_of_sale.group_pos_user,smartpm_prepay.group_cashier",
        )

    def _quote(self, amount, meter=None, user=None):
        Meter = self.env["smartpm.meter"].with_user(user or self.cashier)
        return Meter.pos_quote_credit((meter or self.meter).id, amount, self.config.id)

    def _search(self, query, limit=None, user=None):
        Meter = self.env["smartpm.meter"].with_user(user or self.cashier)
        return Meter.pos_search_meters(query, *([limit] if limit is not None else []))

    def _nothing_sold(self):
        self.assertFalse(self._purchases())
        self.assertEqual(self.meter.last_transfer_number, 0)

    # ---------------------------------------------------------------- search
    def test_search_finds_the_tenant_by_phone_whatever_its_format(self):
        for query in ("555 010 2233", "5550102233", "+1 555-010-2233", "0102233"):
            serials = [m["serial_number"] for m in self._search(query)["meters"]]
            self.assertIn("POS-OK", serials, query)
            self.assertIn("POS-DRAFT", serials, query)
        found = {m["serial_number"]: m for m in self._search("0102233")["meters"]}
        self.assertEqual(found["POS-OK"]["tenant_phone"], "+1 (555) 010-2233")

    def test_search_by_a_phone_nobody_has_finds_nothing(self):
        self.assertEqual(self._search("9999 8888")["meters"], [])

    def test_short_digit_runs_are_not_phone_searches(self):
        # "0-2" would match half the phone book: fewer than 4 digits are no phone search
        # (and match no meter number, tenant name or tenant number here)
        self.assertEqual(self._search("0-2")["meters"], [])
        self.assertIn("POS-OK", [m["serial_number"] for m in self._search("0-2233")["meters"]])

    def test_search_past_the_limit_says_there_are_more(self):
        for i in range(4):
            self._meter(f"POS-MANY{i}", state="active", tenant_id=self.tenant.id)
        found = self._search("POS-MANY", limit=3)
        self.assertEqual(len(found["meters"]), 3)
        self.assertTrue(found["more"])
        self.assertEqual(found["limit"], 3)
        found = self._search("POS-MANY", limit=4)
        self.assertEqual(len(found["meters"]), 4)
        self.assertFalse(found["more"])

    def test_search_limit_is_capped_and_bad_limits_fall_back(self):
        self.assertEqual(self._search("POS", limit=10**9)["limit"], 50)
        self.assertEqual(self._search("POS", limit="many")["limit"], 20)
        self.assertEqual(self._search("POS", limit=-5)["limit"], 1)
        self.assertEqual(self._search(None), {"meters": [], "more": False, "limit": 20})

    def test_search_shows_the_last_purchase(self):
        self.assertFalse(self._search("POS-OK")["meters"][0]["last_purchase"])
        self._sync(self._order_data([(self.meter, 10.0)]))
        self._sync(self._order_data([(self.meter, 4.0)]))
        purchase = self._purchases().sorted("id")[-1]
        last = self._search("POS-OK")["meters"][0]["last_purchase"]
        self.assertEqual(last["reference"], purchase.name)
        self.assertEqual(last["amount"], 4.0)
        self.assertAlmostEqual(last["kwh"], purchase.kwh)
        self.assertAlmostEqual(last["kwh"], 8.0)
        self.assertEqual(last["date"], fields.Datetime.to_string(purchase.date))
        self.assertEqual(last["amount_text"], self._money(4.0))

    # ---------------------------------------------------------------- amounts
    def _money(self, amount):
        return format_amount(self.env, amount, self.currency)

    def test_negative_amount_is_refused_with_a_clear_message(self):
        quote = self._quote(-10)
        self.assertIn("cannot be negative", quote["refusal"])
        self.assertIn(self._money(1.0), quote["refusal"])
        self.assertEqual(quote["kwh"], 0.0)
        self._nothing_sold()

    def test_nan_and_infinite_amounts_are_refused(self):
        for amount in ("nan", "inf", "-inf", float("nan"), float("inf"), "1e400", True, None, []):
            quote = self._quote(amount)
            self.assertEqual(quote["refusal"], "The amount must be a number.", amount)
            self.assertEqual(quote["kwh"], 0.0, amount)
        self._nothing_sold()

    def test_out_of_range_amounts_are_written_in_the_currency(self):
        quote = self._quote(20000)
        self.assertIn(f"between {self._money(1.0)} and {self._money(10000.0)}", quote["refusal"])
        self.assertIn(self._money(20000.0), quote["refusal"])
        self.assertIn("$\N{NO-BREAK SPACE}10,000.00", quote["refusal"])
        self.assertEqual(quote["limits"], f"between {self._money(1.0)} and {self._money(10000.0)}")

    def test_order_with_an_infinite_or_negative_credit_line_sells_nothing(self):
        for amount in (float("inf"), -5.0):
            data = self._order_data([(self.meter, amount)])
            with self.assertRaises(UserError), self.env.cr.savepoint():
                self._sync(data)
            self.assertFalse(self.env["pos.order"].search([("uuid", "=", data["uuid"])]))
        self._nothing_sold()

    def test_quote_of_a_meter_that_does_not_exist(self):
        Meter = self.env["smartpm.meter"].with_user(self.cashier)
        for meter_id in (0, 10**9, "x", None):
            quote = Meter.pos_quote_credit(meter_id, 10.0, self.config.id)
            self.assertIn("does not exist", quote["refusal"])

    def test_quote_shows_price_tiers_and_estimated_balance(self):
        self.meter.sudo().credit_kwh = 3.5
        tariff = self.tariff.sudo()
        self.env["smartpm.tariff.tier"].sudo().create(
            {"tariff_id": tariff.id, "from_kwh": 10, "price_per_kwh": 1.0}
        )
        quote = self._quote(10.0)  # 10 kWh at 0.50 = 5.00, then 5 kWh at 1.00
        self.assertFalse(quote["refusal"])
        self.assertAlmostEqual(quote["kwh"], 15.0)
        self.assertEqual(
            quote["price_info"],
            # written as the portal writes a sale's tiers (sale_info.describe_tiers)
            f"10 kWh at {self._money(0.5)} + 5 kWh at {self._money(1.0)} "
            f"(on average $\N{NO-BREAK SPACE}0.6667 per kWh)",
        )
        self.assertAlmostEqual(quote["estimated_balance_kwh"], 3.5 + 15.0)

    def test_estimated_balance_counts_credit_sold_not_yet_on_the_meter(self):
        self.meter.sudo().credit_kwh = 2.0
        self._sync(self._order_data([(self.meter, 5.0)]))  # 10 kWh, queued
        quote = self._quote(1.0)
        self.assertAlmostEqual(quote["undelivered_kwh"], self._purchases().kwh)
        self.assertAlmostEqual(quote["undelivered_kwh"], 10.0)
        self.assertAlmostEqual(quote["estimated_balance_kwh"], 2.0 + 10.0 + 2.0)

    # ---------------------------------------------------------------- contact warnings
    def test_meter_never_seen_is_sold_with_a_warning(self):
        self.meter.sudo().last_seen = False
        quote = self._quote(10.0)
        self.assertFalse(quote["refusal"])
        self.assertIn("never answered", quote["warning"])
        self.assertIn("POS-OK", quote["warning"])

    def test_meter_silent_for_a_day_is_sold_with_a_warning(self):
        self.meter.sudo().last_seen = fields.Datetime.now() - timedelta(days=1, minutes=5)
        warning = self._search("POS-OK")["meters"][0]["warning"]
        self.assertIn("has not answered since", warning)
        self.assertFalse(self._quote(10.0)["refusal"])

    def test_meter_seen_recently_has_no_warning(self):
        self.meter.sudo().last_seen = fields.Datetime.now() - timedelta(hours=23)
        self.assertFalse(self._quote(10.0)["warning"])

    # ---------------------------------------------------------------- the order
    def test_tenant_becomes_the_customer_of_the_order(self):
        order = self._sync(self._order_data([(self.meter, 10.0)]))
        self.assertEqual(order.partner_id, self.tenant)

    def test_customer_chosen_by_the_cashier_is_kept(self):
        other = self.env["res.partner"].create({"name": "Someone Else"})
        data = self._order_data([(self.meter, 10.0)])
        data["partner_id"] = other.id
        self.assertEqual(self._sync(data).partner_id, other)

    def test_line_keeps_the_estimated_balance_and_price_of_its_purchase(self):
        self.meter.sudo().credit_kwh = 1.25
        order = self._sync(self._order_data([(self.meter, 10.0)]))
        purchase = self._purchases()
        self.assertAlmostEqual(order.lines.smartpm_balance_kwh, 1.25 + purchase.kwh)
        self.assertEqual(order.lines.smartpm_price_info, f"{self._money(0.5)} per kWh")
        self.assertAlmostEqual(purchase.price_per_kwh, 0.5)

    # ---------------------------------------------------------------- the register
    def _limit_categories(self, categ):
        # as the demo's shops are (their session is open here: the test sets it up so)
        self.config.with_context(bypass_categories_forbidden_change=True).write(
            {"limit_categories": True, "iface_available_categ_ids": categ.ids}
        )

    def test_register_limited_to_categories_still_sells_credit(self):
        categ = self.env["pos.category"].create({"name": "Snacks only"})
        self._limit_categories(categ)
        self.assertFalse(self.credit.pos_categ_ids)
        products = self.pos_session.load_data([])["product.product"]["data"]
        self.assertIn(self.credit.id, [p["id"] for p in products])

    def test_new_register_sells_credit(self):
        categ = self.env["pos.category"].create({"name": "Drinks only"})
        config = self.env["pos.config"].create(
            {"name": "New kiosk", "limit_categories": True, "iface_available_categ_ids": categ.ids}
        )
        domain = config._get_available_product_domain()
        self.assertIn(self.credit, self.env["product.product"].search(domain))

    def test_archived_credit_product_is_not_loaded(self):
        categ = self.env["pos.category"].create({"name": "Snacks only"})
        self._limit_categories(categ)
        self.credit.active = False
        domain = self.config._get_available_product_domain()
        self.assertNotIn(self.credit, self.env["product.product"].search(domain))

    def test_session_loads_the_quick_amounts_of_the_company(self):
        self.env.company.sudo().smartpm_quick_amounts = "2, 5.50; 25"
        session = self.pos_session.load_data([])["pos.session"]["data"][0]
        self.assertEqual(session["_smartpm_quick_amounts"], [2.0, 5.5, 25.0])
        self.assertTrue(session["_smartpm_can_sell"])

    def test_quick_amounts_must_be_positive_amounts(self):
        company = self.env.company.sudo()
        for text in ("5, ten", "5, -1", "0", "inf", "1.234", "1 2 3 4 5 6 7 8 9"):
            with self.assertRaisesRegex(ValidationError, company.name), self.env.cr.savepoint():
                company.smartpm_quick_amounts = text
        company.smartpm_quick_amounts = ""
        self.assertEqual(company._smartpm_get_quick_amounts(), [])

    def test_closing_shows_the_credit_sold_in_the_session(self):
        self._sync(
            self._order_data([(self.meter, 10.0)]),
            self._order_data([(self.meter, 4.0)]),
        )
        data = self.pos_session.with_user(self.cashier).get_closing_control_data()
        credit = data["smartpm_credit"]
        purchases = self._purchases()
        self.assertEqual(credit["count"], len(purchases))
        self.assertEqual(credit["count"], 2)
        self.assertEqual(credit["amount"], sum(purchases.mapped("amount")))
        self.assertEqual(credit["amount"], 14.0)
        self.assertAlmostEqual(credit["kwh"], sum(purchases.mapped("kwh")))
        self.assertAlmostEqual(credit["kwh"], 28.0)
        self.assertEqual(credit["amount_text"], self._money(14.0))
