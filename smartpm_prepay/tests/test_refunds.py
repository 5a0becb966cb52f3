"""Refunds in every channel (issue 16 §2): a reversal gives the money back where it came in."""

import copy
import uuid

from odoo.exceptions import UserError
from odoo.tests import tagged

from ..services import engine, refunds
from .common import assert_refunded_books
from .test_portal import PortalCase
from .test_pos import SmartpmPosCase


@tagged("post_install", "-at_install")
class TestPosRefund(SmartpmPosCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.user.groups_id += cls.env.ref("smartpm_prepay.group_operator")

    def _sell(self, amount=10.0):
        order = self._sync(self._order_data([(self.meter, amount)]))
        return order, order.lines.smartpm_purchase_ids

    def _refund_data(self, order):
        """What the POS ticket screen sends for Refund of the whole credit line."""
        sold = order.lines
        data = copy.deepcopy(self._order_data([(self.meter, 1.0)]))
        vals = data["lines"][0][2]
        vals.update(
            uuid=str(uuid.uuid4()),
            qty=-1,
            price_unit=sold.price_unit,
            price_subtotal=-sold.price_subtotal,
            price_subtotal_incl=-sold.price_subtotal_incl,
            refunded_orderline_id=sold.id,
        )
        vals.pop("smartpm_meter_id")  # the ticket screen copies no meter to the refund line
        total = -sold.price_subtotal_incl
        data["payment_ids"][0][2]["amount"] = total
        data.update(amount_paid=total, amount_total=total, amount_tax=0.0, uuid=str(uuid.uuid4()))
        return data

    def test_register_refund_of_undelivered_credit_reverses_the_purchase(self):
        order, purchase = self._sell()
        job = purchase.job_id
        refund = self._sync(self._refund_data(order))
        self.assertEqual(refund.state, "paid")
        self.assertEqual(refund.lines.refunded_orderline_id, order.lines)
        self.assertEqual(refund.payment_ids.mapped("amount"), [-10.0])  # the cash out
        self.assertTrue(refund.payment_ids.payment_method_id.is_cash_count)
        self.assertEqual(purchase.state, "reversed")
        self.assertEqual(job.state, "cancelled")
        self.assertIn(refund.name, purchase.message_ids[0].body)
        # synced again (offline POS): nothing more
        self._sync(self._refund_data(order) | {"uuid": refund.uuid})
        self.assertEqual(len(order.lines.refund_orderline_ids), 1)

    def test_register_refund_of_delivered_credit_is_refused(self):
        order, purchase = self._sell()
        engine.as_engine(purchase).state = "delivered"
        data = self._refund_data(order)
        with (
            self.assertRaisesRegex(UserError, "on meter POS-OK \\(delivered\\)"),
            self.env.cr.savepoint(),
        ):
            self._sync(data)
        self.assertFalse(self.env["pos.order"].search([("uuid", "=", data["uuid"])]))
        self.assertEqual(purchase.state, "delivered")
        self.assertFalse(order.lines.refund_orderline_ids)

    def test_register_refund_of_an_attempted_delivery_is_refused(self):
        order, purchase = self._sell()
        engine.as_engine(purchase).delivery_attempted = True
        with self.assertRaisesRegex(UserError, "Reverse the purchase in the back office"):
            self._sync(self._refund_data(order))
        self.assertEqual(purchase.state, "queued")
        self.assertEqual(purchase.job_id.state, "pending")

    def test_partial_register_refund_is_refused(self):
        order, purchase = self._sell()
        data = self._refund_data(order)
        data["lines"][0][2].update(price_unit=4.0, price_subtotal=-4.0, price_subtotal_incl=-4.0)
        data["payment_ids"][0][2]["amount"] = -4.0
        data.update(amount_paid=-4.0, amount_total=-4.0)
        with self.assertRaisesRegex(UserError, "refunded whole"):
            self._sync(data)
        self.assertEqual(purchase.state, "queued")

    def test_back_office_reversal_creates_the_pos_refund_order(self):
        order, purchase = self._sell()
        purchase.action_reverse()
        self.assertEqual(purchase.state, "reversed")
        refund = order.lines.refund_orderline_ids.order_id
        self.assertEqual(len(refund), 1)
        self.assertEqual(refund.state, "paid")
        self.assertEqual(refund.session_id, self.pos_session)
        self.assertAlmostEqual(refund.amount_total, -10.0)
        self.assertEqual(refund.payment_ids.payment_method_id, order.payment_ids.payment_method_id)
        self.assertEqual(refund.payment_ids.mapped("amount"), [-10.0])
        self.assertIn(refund.name, purchase.message_ids[0].body)
        self.assertIn(purchase.name, refund.message_ids[0].body)
        # and the register may not refund it a second time
        with self.assertRaisesRegex(UserError, "already refunded"):
            self._sync(self._refund_data(order))

    def test_back_office_reversal_without_open_session_names_the_register(self):
        order, purchase = self._sell()
        self.pos_session.sudo().write({"state": "closed"})
        self.config.invalidate_recordset()
        with self.assertRaisesRegex(UserError, "open a session of"):
            purchase.action_reverse()
        self.assertEqual(purchase.state, "queued")
        self.assertEqual(purchase.job_id.state, "pending")

    def test_reversal_after_a_meter_check_leaves_the_refund_to_the_register(self):
        order, purchase = self._sell()
        engine.as_engine(purchase).delivery_attempted = True
        purchase.action_reverse()
        self.assertEqual(purchase.state, "pending_check")
        purchase._on_token_checked(
            {"transfer_number": purchase.transfer_number, "applied": False, "cancelled": True}
        )
        self.assertEqual(purchase.state, "reversed")
        self.assertFalse(order.lines.refund_orderline_ids)
        self.assertIn("at the register", purchase.activity_ids.summary)
        # the cashier refunds it from the ticket screen
        refund = self._sync(self._refund_data(order))
        self.assertEqual(refund.state, "paid")
        self.assertEqual(refund.payment_ids.mapped("amount"), [-10.0])

    def test_back_office_refund_of_a_sale_that_recovered_debt_pays_the_whole_line(self):
        debt = _confirmed_debt(self.tenant, self.company, 6.0, 4.0)
        order, purchase = self._sell(10.0)
        self.assertEqual((purchase.debt_recovered, purchase.credit_amount), (4.0, 6.0))
        purchase.action_reverse()
        self.assertEqual(debt.balance, 6.0)  # owed again
        refund = order.lines.refund_orderline_ids.order_id
        self.assertEqual(refund.payment_ids.mapped("amount"), [-10.0])
        self.assertEqual(refunds.refund_amount(purchase), 10.0)
        # the settlement entry and its reversal matched: the receivable is the debt
        self.assertTrue(purchase.recovery_ids.move_id.reversal_move_ids)
        assert_refunded_books(self, purchase, debt)


def _confirmed_debt(tenant, company, amount, fixed):
    """A confirmed debt of ``tenant`` of which every purchase recovers ``fixed``."""
    debt = (
        tenant.env["smartpm.tenant.debt"]
        .sudo()
        .create(
            {
                "tenant_id": tenant.id,
                "company_id": company.id,
                "description": "Arrears",
                "amount": amount,
                "recovery_rule": "fixed",
                "recovery_fixed": fixed,
            }
        )
    )
    debt.action_confirm()
    return debt


@tagged("post_install", "-at_install")
class TestPortalRefund(PortalCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.user.groups_id += cls.env.ref("smartpm_prepay.group_operator")

    def _sold(self, provider=None):
        tx = (
            self.env["payment.transaction"]
            .sudo()
            .create(
                {
                    "provider_id": (provider or self.provider).id,
                    "payment_method_id": self.payment_method.id,
                    "amount": 12.0,
                    "currency_id": self.company.currency_id.id,
                    "partner_id": self.tenant_a.id,
                    "reference": f"CREDIT-REFUND-{uuid.uuid4().hex[:8]}",
                    "operation": "online_direct",
                    "smartpm_meter_id": self.meter_a.id,
                }
            )
        )
        tx._set_done()
        tx._post_process()
        return tx, tx.smartpm_purchase_id

    def test_portal_reversal_refunds_through_the_demo_provider(self):
        tx, purchase = self._sold()
        purchase.action_reverse()
        self.assertEqual(purchase.state, "reversed")
        refund_tx = tx.child_transaction_ids
        self.assertEqual(refund_tx.operation, "refund")
        self.assertEqual(refund_tx.state, "done")
        self.assertEqual(refund_tx.amount, -12.0)
        self.assertEqual(refund_tx.payment_id.payment_type, "outbound")
        self.assertIn(purchase.credit_note_id.payment_state, ("paid", "in_payment"))
        self.assertIn(refund_tx.reference, purchase.message_ids[0].body)
        self.assertFalse(purchase.activity_ids)

    def test_portal_refund_of_a_sale_that_recovered_debt_matches_the_books(self):
        """12.00 paid = 9.00 credit + 3.00 debt: the provider refunds 12.00, matched with the
        9.00 credit note and the 3.00 of the payment the debt's invoice no longer takes."""
        debt = _confirmed_debt(self.tenant_a, self.company, 10.0, 3.0)
        tx, purchase = self._sold()
        self.assertEqual((purchase.debt_recovered, debt.balance), (3.0, 7.0))
        purchase.action_reverse()
        self.assertEqual(debt.balance, 10.0)
        refund_tx = tx.child_transaction_ids
        self.assertEqual(refund_tx.amount, -12.0)
        self.assertEqual(purchase.credit_note_id.amount_total, 9.0)
        assert_refunded_books(self, purchase, debt, refund_tx.payment_id.move_id)

    def test_provider_without_refunds_leaves_the_credit_note_and_an_activity(self):
        tx, purchase = self._sold()
        tx.provider_id.code = "none"  # no refund support (a wire transfer, a cash desk)
        self.assertEqual(tx.provider_id.support_refund, "none")
        purchase.action_reverse()
        self.assertEqual(purchase.state, "reversed")
        self.assertFalse(tx.child_transaction_ids)
        self.assertEqual(purchase.credit_note_id.state, "posted")
        self.assertEqual(purchase.credit_note_id.payment_state, "not_paid")
        self.assertIn("by hand", purchase.activity_ids.summary)
