"""Point of Sale: credit lines become purchases when the paid order reaches the server."""

import copy
import uuid

from odoo.addons.point_of_sale.tests.common import TestPoSCommon
from odoo.exceptions import UserError
from odoo.tests import tagged


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
            serials = [m["serial_number"] for m in Meter.pos_search_meters(query)]
            self.assertIn("POS-OK", serials, query)

    def test_search_shows_why_a_meter_cannot_be_sold(self):
        found = {m["serial_number"]: m for m in self.env["smartpm.meter"].pos_search_meters("POS")}
        self.assertFalse(found["POS-OK"]["refusal"])
        self.assertIn("not in service", found["POS-DRAFT"]["refusal"])
        self.assertEqual(found["POS-OK"]["tenant_name"], "Pos Tenant")

    def test_quote_previews_kwh(self):
        quote = self.env["smartpm.meter"].pos_quote_credit(self.meter.id, 10.0, self.config.id)
        self.assertFalse(quote["refusal"])
        self.assertAlmostEqual(quote["kwh"], 20.0)

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
        income = self.credit.categ_id.property_account_income_categ_id
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
        income = self.credit.categ_id.property_account_income_categ_id
        tax_account = tax.invoice_repartition_line_ids.account_id
        lines = session.move_id.line_ids
        self.assertEqual(lines.filtered(lambda ml: ml.account_id == income).credit, 10.0)
        self.assertEqual(lines.filtered(lambda ml: ml.account_id == tax_account).credit, 1.0)
        self.assertEqual(sum(lines.mapped("debit")), 11.0)
        self.assertAlmostEqual(self._purchases().amount_tax, 1.0)
