"""Issue 17: a tenant moves out with emergency credit in use or negative credit (a friendly
period), on kWh and money-mode meters. Emergency credit is not paid for: the refund is the
paid credit left (the meter's credit less the emergency credit in use); a shortfall and a
negative credit become the tenant's debt (a smartpm tenant debt: the receivable, not the
liability); the meter is brought to zero for the next tenant (a token repaying the emergency
credit and lifting the negative credit, and the clear of its credit)."""

from datetime import date, datetime

from odoo import fields
from odoo.exceptions import UserError
from odoo.tests import new_test_user, tagged

from ..services import credit_token, engine, prepayment, statement, tou, vending
from ..services import emergency as emergency_service
from ..services import settlement as settlement_service
from .test_move_out import MoneyMoveOutCase, MoveOutCase


class EmergencyMoveOutMixin:
    """The fake bridge's read also reports the emergency credit in use (as the real bridge
    does when it reads the credit), and the meter's answer to a credit token repays it
    first (docs/meter-contract.md "Emergency credit")."""

    emergency = 0.0

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # the meters' tariffs give emergency credit (what the meter reports is bounded by
        # it); the settings' pushes are not these tests' jobs
        cls.tariff.emergency_credit_kwh = 10.0
        if hasattr(cls, "tou"):
            cls.tou.emergency_credit_money = 2.0
        engine.as_engine(
            cls.env["smartpm.meter.job"].search([("state", "in", ("pending", "claimed"))])
        ).write({"state": "cancelled"})

    def _unit(self):
        return "money" if self.meter.credit_mode == "money" else "kwh"

    def _answer(self, job, credit_kwh, energy_kwh):
        unit = self._unit()
        if job.job_type == "add_credit" and job.meter_id.credit_mode == self.meter.credit_mode:
            credit = job.meter_id[f"credit_{unit}"]
            if unit == "money":  # what the token carries, in milli-units
                brought = credit_token.parse_money(bytes.fromhex(job.payload["token"]))[1] / 1000
            else:
                brought = job.payload["kwh"]
            repaid = min(self.emergency, brought) if job.meter_id == self.meter else 0.0
            return {
                "charge_total": 0.0,
                f"credit_{unit}": round(credit + brought - repaid, 3),
                f"emergency_repaid_{unit}": repaid,
                f"emergency_in_use_{unit}": round(self.emergency - repaid, 3),
                "transfer_number": job.payload["transfer_number"],
            }
        result = super()._answer(job, credit_kwh, energy_kwh)
        if job.job_type == "read":
            result[f"emergency_in_use_{unit}"] = self.emergency
        return result

    def _receivable(self, partner):
        account = partner.with_company(self.company).property_account_receivable_id
        return self._balance(account, partner)


@tagged("post_install", "-at_install")
class TestMoveOutEmergencyKwh(EmergencyMoveOutMixin, MoveOutCase):
    def test_emergency_credit_in_use_is_not_refunded_and_the_meter_ends_at_zero(self):
        self._two_purchases()  # 80 kWh at 0.25, then 100 kWh at 0.30
        self.emergency = 10.0
        self._set_credit(self.meter, 130.0)  # 120 paid kWh left + 10 kWh of emergency credit
        move_out = self._move_out("refund", next_tenant_id=self.next_tenant)
        self._run_jobs()
        self.assertEqual(move_out.state, "done", move_out.blocked_reason)
        self.assertAlmostEqual(move_out.final_credit_kwh, 130.0)
        self.assertAlmostEqual(move_out.final_emergency_kwh, 10.0)
        done = move_out.settlement_id
        # refunded: the paid 120 kWh only (100 at 0.30, 20 at 0.25), as without emergency
        self.assertAlmostEqual(done.kwh, 120.0)
        self.assertEqual((done.amount, done.credit_note_id.amount_total), (35.0, 35.0))
        self.assertEqual((done.emergency_credit, done.negative_credit, done.shortfall), (10, 0, 0))
        self.assertFalse(done.debt_id)
        # the meter: the emergency credit repaid by a token, then all its credit cleared
        zero, clear = move_out.zero_job_id, move_out.clear_job_id
        self.assertEqual(
            (zero.job_type, zero.state, zero.payload["kwh"]), ("add_credit", "done", 10)
        )
        self.assertEqual((clear.state, clear.payload["wh"]), ("done", 130000))
        self.assertNotEqual(zero.payload["transfer_number"], clear.payload["transfer_number"])
        self.assertAlmostEqual(self.meter.credit_kwh, 0.0)
        self.assertAlmostEqual(self.meter.emergency_in_use_kwh, 0.0)
        self.assertAlmostEqual(self._balance(self.liability, self.tenant), 0.0)
        self.assertAlmostEqual(self._receivable(self.tenant), 0.0)

    def test_emergency_beyond_the_paid_credit_becomes_the_tenants_debt(self):
        self._sell(self.meter, 20.0, "EM-1")  # 80 kWh at 0.25
        self.emergency = 10.0
        self._set_credit(self.meter, 4.0)  # 86 kWh consumed: 6 of them not paid for
        move_out = self._move_out("refund", next_tenant_id=self.next_tenant)
        self._run_jobs()
        self.assertEqual(move_out.state, "done", move_out.blocked_reason)
        done = move_out.settlement_id
        self.assertEqual((done.kwh, done.amount, done.amount_total), (0.0, 0.0, 0.0))
        self.assertFalse(done.credit_note_id)
        self.assertEqual((done.emergency_credit, done.shortfall), (10.0, 6.0))
        # the shortfall at the tariff's price: 6 kWh x 0.25 = 1.50, a confirmed tenant debt
        debt = done.debt_id
        self.assertEqual((debt.tenant_id, debt.state, debt.amount), (self.tenant, "active", 1.5))
        self.assertEqual(debt.invoice_id.state, "posted")
        self.assertIn(self.meter.serial_number, debt.description)
        self.assertEqual(done.debt_amount, 1.5)
        # books: the sale's 20.00 all consumed (recognised), the 1.50 on the tenant's
        # receivable against energy sales; the liability is not touched by the debt
        self.assertAlmostEqual(self._balance(self.liability, self.tenant), 0.0)
        self.assertAlmostEqual(self._receivable(self.tenant), 1.5)
        self.assertAlmostEqual(self._balance(self.energy), -21.5)
        lines = debt.invoice_id.line_ids
        receivable = lines.filtered(lambda ln: ln.account_id.account_type == "asset_receivable")
        self.assertEqual((receivable.debit, receivable.partner_id), (1.5, self.tenant))
        self.assertEqual(lines.filtered(lambda ln: ln.credit).account_id, self.energy)
        self.assertFalse(lines.filtered(lambda ln: ln.account_id == self.liability))
        # the meter: 10 kWh token (repays the emergency credit), 4 kWh cleared: at zero
        self.assertEqual(move_out.zero_job_id.payload["kwh"], 10.0)
        self.assertEqual(move_out.clear_job_id.payload["wh"], 4000)
        self.assertAlmostEqual(self.meter.credit_kwh, 0.0)
        self.assertEqual(self.meter.tenant_id, self.next_tenant)
        # the statement says it
        today = fields.Date.context_today(self.env.user)
        st = statement.tenant_statement(self.env, self.tenant, date(2026, 2, 1), today)
        [line] = [x for x in st["meters"][0]["lines"] if x["kind"] == "settlement"]
        self.assertIn("emergency credit in use 10.0 kWh", line["label"])
        self.assertIn("6.0 kWh consumed without payment", line["label"])

    def test_negative_credit_becomes_debt_and_the_meter_is_lifted_to_zero(self):
        self._sell(self.meter, 20.0, "NEG-1")  # 80 kWh at 0.25
        self._set_credit(self.meter, -3.0)  # a friendly period: 3 kWh below zero
        move_out = self._move_out("refund", next_tenant_id=self.next_tenant)
        self._run_jobs()
        self.assertEqual(move_out.state, "done", move_out.blocked_reason)
        self.assertAlmostEqual(move_out.final_credit_kwh, -3.0)
        done = move_out.settlement_id
        self.assertEqual((done.negative_credit, done.shortfall, done.amount), (3.0, 3.0, 0.0))
        self.assertEqual((done.debt_id.amount, done.debt_id.state), (0.75, "active"))
        self.assertAlmostEqual(self._receivable(self.tenant), 0.75)
        self.assertAlmostEqual(self._balance(self.energy), -20.75)
        # nothing to clear; a 3 kWh token brings the meter from -3 to 0
        self.assertFalse(move_out.clear_job_id)
        self.assertEqual(move_out.zero_job_id.payload["kwh"], 3.0)
        self.assertAlmostEqual(self.meter.credit_kwh, 0.0)
        # the next tenant starts at zero and buys at the first tier
        self.assertEqual(vending.month_kwh(self.env, self.meter), 0.0)

    def test_the_debt_is_recovered_from_the_tenants_next_purchase(self):
        self._sell(self.meter, 20.0, "REC-1")
        self._set_credit(self.meter, -4.0)  # 1.00 owed
        move_out = self._move_out("refund", next_tenant_id=self.next_tenant)
        self._run_jobs()
        debt = move_out.settlement_id.debt_id
        later = self._sell(self.meter, 10.0, "REC-2")
        self.assertEqual((later.tenant_id, later.debt_recovered), (self.next_tenant, 0.0))
        self.assertEqual(debt.balance, 1.0)  # the next tenant pays none of it
        engine.as_engine(self.meter_b).tenant_id = self.tenant  # the tenant's new meter
        purchase = self._sell(self.meter_b, 10.0, "REC-3")  # 20% of 10.00, at most 1.00
        self.assertEqual((purchase.debt_recovered, debt.balance, debt.state), (1.0, 0.0, "paid"))

    def test_zeroing_runs_once_whatever_repeats_and_a_failed_token_is_retried_the_same(self):
        self._sell(self.meter, 20.0, "ONCE-1")
        self.emergency = 5.0
        self._set_credit(self.meter, 2.0)
        move_out = self._move_out("refund", next_tenant_id=self.next_tenant)
        self._run_jobs(fail_types=("add_credit",))
        self.assertEqual((move_out.state, move_out.blocked_step), ("blocked", "clearing"))
        zero = move_out.zero_job_id
        token, number = zero.payload["token"], zero.payload["transfer_number"]
        # asked again (a double click, a re-run of the step): the same job, no new token
        last = self.meter.last_transfer_number
        self.assertEqual(settlement_service.queue_zero(move_out), zero)
        self.assertEqual(self.meter.last_transfer_number, last)
        debt = move_out.settlement_id.debt_id
        move_out.with_user(self.manager).action_retry()
        self._run_jobs()
        self.assertEqual(move_out.state, "done", move_out.blocked_reason)
        self.assertEqual(
            (zero.state, zero.payload["token"], zero.payload["transfer_number"]),
            ("done", token, number),
        )
        self.assertEqual(
            self.env["smartpm.meter.job"].search_count(
                [
                    ("meter_id", "=", self.meter.id),
                    ("job_type", "=", "add_credit"),
                    ("idempotency_key", "like", "move-out-%"),
                ]
            ),
            1,
        )
        self.assertEqual(
            self.env["smartpm.tenant.debt"].search([("tenant_id", "=", self.tenant.id)]), debt
        )
        self.assertAlmostEqual(self.meter.credit_kwh, 0.0)

    def test_a_cancelled_zeroing_job_blocks_the_move_out_and_its_retry_finishes_it(self):
        self._sell(self.meter, 20.0, "CZ-1")
        self.emergency = 5.0
        self._set_credit(self.meter, 2.0)  # 3 kWh consumed without payment
        move_out = self._move_out("refund", next_tenant_id=self.next_tenant)
        # the bridge reads, nothing else: the zeroing token waits
        self._run_jobs(fail_types=("add_credit", "clear_credit"))
        move_out.with_user(self.manager).action_retry()
        zero = move_out.zero_job_id
        self.assertEqual((move_out.state, zero.state), ("clearing", "pending"))
        debt = move_out.settlement_id.debt_id
        token, number = zero.payload["token"], zero.payload["transfer_number"]
        last = self.meter.last_transfer_number
        # an operator cancels it from the job list: the move-out says so and asks the owner
        zero.with_user(self.manager).action_cancel()
        self.assertEqual(zero.state, "cancelled")
        self.assertEqual((move_out.state, move_out.blocked_step), ("blocked", "clearing"))
        self.assertIn(zero.display_name, move_out.blocked_reason)
        self.assertIn(self.meter.serial_number, move_out.blocked_reason)
        self.assertIn("5.0 kWh", move_out.blocked_reason)
        [activity] = move_out.activity_ids
        self.assertEqual(activity.user_id, self.manager)
        self.assertIn("cancelled", activity.note)
        self.assertEqual(move_out.zero_job_state, "cancelled")
        # nothing else moved: the tenant still on the meter, the debt and the credit as they were
        self.assertEqual(self.meter.tenant_id, self.tenant)
        self.assertEqual(
            self.env["smartpm.tenant.debt"].search([("tenant_id", "=", self.tenant.id)]), debt
        )
        self.assertEqual(self.meter.last_transfer_number, last)
        # the retry sends the same token again and the move-out finishes
        move_out.with_user(self.manager).action_retry()
        self.assertFalse(move_out.activity_ids)
        self._run_jobs()
        self.assertEqual(move_out.state, "done", move_out.blocked_reason)
        self.assertEqual(
            (zero.state, zero.payload["token"], zero.payload["transfer_number"]),
            ("done", token, number),
        )
        self.assertEqual(self.meter.last_transfer_number, last)
        self.assertAlmostEqual(self.meter.credit_kwh, 0.0)
        self.assertEqual((debt.amount, self.meter.tenant_id), (0.75, self.next_tenant))

    def test_a_cancelled_reading_job_blocks_the_move_out_at_the_reading(self):
        self._sell(self.meter, 20.0, "CR-1")
        move_out = self._move_out("refund", next_tenant_id=self.next_tenant)
        disconnect = move_out.disconnect_job_id
        disconnect.with_user(self.manager).action_cancel()
        self.assertEqual((move_out.state, move_out.blocked_step), ("blocked", "reading"))
        self.assertIn(disconnect.display_name, move_out.blocked_reason)
        self.assertTrue(move_out.activity_ids)
        self.assertFalse(move_out.settlement_id)
        move_out.with_user(self.manager).action_retry()
        self.assertNotEqual(move_out.disconnect_job_id, disconnect)
        self._run_jobs()
        self.assertEqual(move_out.state, "done", move_out.blocked_reason)

    def _kwh_charge_beyond_the_credit(self):
        """The tenant's 0.50 sale (2 kWh), then a 1.00 standing charge (4 kWh at 0.25):
        2 kWh below zero, owed by the tenant on this meter."""
        from ..services import standing_charge

        self.company.smartpm_min_amount = 0.1
        sale = self._sell(self.meter, 0.5, "KOW-1")
        self._set_credit(self.meter, 2.0)
        self.tariff.write({"standing_charge_amount": 1.0, "standing_charge_collection": "odoo"})
        [charge] = standing_charge.collect_due(self.env, self.company)["queued"].filtered(
            lambda c: c.meter_id == self.meter
        )
        self._run_jobs()
        self.assertEqual(charge.state, "collected")
        self.assertAlmostEqual(self.meter.credit_kwh, -2.0, 3)
        self.assertEqual(sale.kwh_remaining, 0.0)
        key = (self.meter.id, self.tenant.id)
        owed = prepayment._standing_charges_owed(self.env, self.company, key)
        self.assertEqual(owed, [(charge.id, 2.0)])
        self.tariff.standing_charge_amount = 0.0  # nothing more charged to the next tenant
        return charge, standing_charge.ensure_account(self.company)

    def test_kwh_standing_charge_beyond_the_credit_is_closed_by_the_move_out_debt(self):
        charge, income = self._kwh_charge_beyond_the_credit()
        energy = self._balance(self.energy)
        move_out = self._move_out("refund", next_tenant_id=self.next_tenant)
        self._run_jobs()
        self.assertEqual(move_out.state, "done", move_out.blocked_reason)
        done = move_out.settlement_id
        self.assertEqual((done.negative_credit, done.shortfall), (2.0, 2.0))
        self.assertEqual((done.debt_id.amount, done.debt_amount), (0.5, 0.5))  # 2 kWh x 0.25
        self.assertAlmostEqual(self._receivable(self.tenant), 0.5, 2)
        # the debt carries the charge: closed by one row of no value, owed to no one any more
        key = (self.meter.id, self.tenant.id)
        self.assertEqual(prepayment._standing_charges_owed(self.env, self.company, key), [])
        closed = charge.recognition_ids.filtered("repayment")
        self.assertEqual(
            (closed.purchase_id, closed.kwh, closed.money, closed.amount, closed.tenant_id),
            (self.env["smartpm.credit.purchase"], 2.0, 0.0, 0.0, self.tenant),
        )
        self.assertAlmostEqual(self.meter.credit_kwh, 0.0, 3)
        self.assertAlmostEqual(self._balance(income), -0.5, 2)  # what the sale covered
        self.assertAlmostEqual(self._balance(self.energy), energy - 0.5, 2)  # the debt only
        self.assertAlmostEqual(self._balance(self.liability, self.tenant), 0.0, 2)
        # the next tenant's sale and the daily recognition: a clean meter's books
        nxt = self._sell(self.meter, 5.0, "KOW-2", delivered_on=date(2026, 3, 2))
        self.assertEqual(nxt.tenant_id, self.next_tenant)
        prepayment.recognise(self.company)
        self.assertEqual(nxt.kwh_remaining, 20.0)
        self.assertFalse(nxt.recognition_ids)
        self.assertAlmostEqual(self._balance(income), -0.5, 2)  # B's sale released none
        self.assertAlmostEqual(self._balance(self.liability, self.next_tenant), -5.0, 2)
        # closed once: a second settlement pass finds nothing owed and adds no row
        settlement_service.close_owed_charges(done)
        self.assertEqual(len(charge.recognition_ids.filtered("repayment")), 1)

    def test_kwh_tenant_back_on_the_meter_does_not_repay_a_closed_charge_twice(self):
        charge, income = self._kwh_charge_beyond_the_credit()
        move_out = self._move_out("refund", next_tenant_id=self.next_tenant)
        self._run_jobs()
        self.assertEqual(move_out.state, "done", move_out.blocked_reason)
        # the tenant moves back; the meter shows 2 kWh below zero again (say, a friendly
        # period), which their sale repays: it is their consumption, not the closed charge
        engine.as_engine(self.meter).tenant_id = self.tenant
        self._set_credit(self.meter, -2.0)
        back = vending.vend(self.env, self.meter, 2.5, "backoffice", "KOW-3")
        back._create_invoice_and_payment(self.cash)
        back._on_delivered({"credit_kwh": back.kwh - 2.0})  # (the debt took part of it)
        self.assertEqual(back.debt_repaid_kwh, 2.0)
        prepayment.recognise(self.company)
        self.assertAlmostEqual(self._balance(income), -0.5, 2)  # not released a second time
        self.assertFalse(back.recognition_ids.filtered("standing_charge_id"))
        key = (self.meter.id, self.tenant.id)
        self.assertEqual(prepayment._standing_charges_owed(self.env, self.company, key), [])

    def _lying_bridge_move_out(self, reported):
        """The tenant's 20.00 sale (80 kWh), 4 kWh on the meter; the bridge's read reports
        ``reported`` kWh of emergency credit in use (the tariff gives 10)."""
        self._sell(self.meter, 20.0, "LIE-1")
        self._set_credit(self.meter, 4.0)
        self.emergency = reported
        last = self.meter.last_transfer_number
        move_out = self._move_out("refund", next_tenant_id=self.next_tenant)
        self._run_jobs()
        self.assertEqual((move_out.state, move_out.blocked_step), ("blocked", "reading"))
        # nothing booked, nothing minted: no settlement, no debt, no zeroing token
        self.assertFalse(move_out.settlement_id)
        self.assertFalse(move_out.zero_job_id)
        self.assertFalse(
            self.env["smartpm.tenant.debt"].search([("tenant_id", "=", self.tenant.id)])
        )
        self.assertEqual(self.meter.last_transfer_number, last)
        self.assertAlmostEqual(self._receivable(self.tenant), 0.0, 2)
        self.assertAlmostEqual(self._balance(self.liability, self.tenant), -20.0, 2)
        self.assertEqual((move_out.final_emergency_kwh, move_out.final_credit_kwh), (0.0, 0.0))
        # the owner is told, naming the meter and the tenant
        [activity] = move_out.activity_ids
        self.assertEqual(activity.user_id, self.manager)
        for text in (self.meter.serial_number, self.tenant.name):
            self.assertIn(text, move_out.blocked_reason)
            self.assertIn(text, activity.note)
        self.assertEqual(self.meter.tenant_id, self.tenant)
        return move_out

    def test_an_absurd_emergency_amount_from_the_bridge_is_refused_and_books_no_debt(self):
        move_out = self._lying_bridge_move_out(5000.0)
        self.assertIn("5000.0 kWh", move_out.blocked_reason)
        self.assertIn("10.0 kWh", move_out.blocked_reason)  # what the tariff gave
        # the meter read again, now with a true answer: settled as usual, once
        self.emergency = 0.0
        move_out.with_user(self.manager).action_retry()
        self._run_jobs()
        self.assertEqual(move_out.state, "done", move_out.blocked_reason)
        done = move_out.settlement_id
        self.assertEqual((done.kwh, done.emergency_credit, done.shortfall), (4.0, 0.0, 0.0))
        self.assertFalse(done.debt_id)
        self.assertEqual(done.amount_total, 1.0)  # 4 kWh at 0.25
        self.assertAlmostEqual(self._balance(self.liability, self.tenant), 0.0, 2)

    def test_a_negative_emergency_amount_is_refused_too(self):
        self._lying_bridge_move_out(-3.0)

    def test_an_emergency_amount_that_is_no_number_is_refused_too(self):
        self._lying_bridge_move_out("lots")

    def test_emergency_up_to_a_larger_earlier_setting_is_believed(self):
        # the meter took a setting of 12 kWh before the tariff's became 10: it may hold 12
        self.assertEqual(emergency_service.max_in_use(self.meter), 10.0)
        engine.create(
            self.env["smartpm.meter.job"],
            [
                {
                    "meter_id": self.meter.id,
                    "job_type": "set_emergency_credit",
                    "payload": {"amount_kwh": 12.0, "threshold_kwh": 0.0},
                    "state": "done",
                }
            ],
        )
        self.assertEqual(emergency_service.max_in_use(self.meter), 12.0)
        self._sell(self.meter, 20.0, "LIE-2")
        self._set_credit(self.meter, 4.0)
        self.emergency = 12.0
        move_out = self._move_out("refund", next_tenant_id=self.next_tenant)
        self._run_jobs()
        self.assertEqual(move_out.state, "done", move_out.blocked_reason)
        done = move_out.settlement_id
        self.assertEqual((done.emergency_credit, done.shortfall, done.debt_amount), (12, 8, 2))


@tagged("post_install", "-at_install")
class TestMoveOutEmergencyMoney(EmergencyMoveOutMixin, MoneyMoveOutCase):
    charge_milli = None

    def _answer(self, job, credit_kwh, energy_kwh):
        result = super()._answer(job, credit_kwh, energy_kwh)
        if job.job_type == "read" and self.charge_milli is not None:
            result["readings"].append({"obis": tou.CHARGE_OBIS, "value": self.charge_milli})
        return result

    def test_money_shortfall_after_the_days_recognition_becomes_debt_to_the_cent(self):
        sale = self._money_sale(10.0, "MEM-1", datetime(2026, 2, 28))
        # the tenant took 2.000 of emergency credit; the consumption charge collected 10.500
        self.emergency = 2.0
        self.charge_milli = 10_500
        engine.as_engine(self.meter).credit_money = 1.5  # 10 + 2 - 10.5
        move_out = self._move_out("refund", next_tenant_id=self.next_tenant)
        self._run_jobs()
        self.assertEqual(move_out.state, "done", move_out.blocked_reason)
        self.assertEqual((move_out.final_credit_money, move_out.final_emergency_money), (1.5, 2.0))
        done = move_out.settlement_id
        self.assertEqual((done.money, done.amount, done.amount_total), (0.0, 0.0, 0.0))
        self.assertFalse(done.line_ids)
        self.assertEqual((done.emergency_credit, done.shortfall), (2.0, 0.5))
        # the day's recognition first: the sale's 10.00 consumed, 0.500 beyond it owed
        self.assertEqual(sale.money_remaining, 0.0)
        self.assertAlmostEqual(sum(sale.recognition_ids.mapped("amount")), 10.0, 2)
        self.assertEqual((done.debt_id.amount, done.debt_amount), (0.5, 0.5))
        self.assertAlmostEqual(self._balance(self.liability, self.tenant), 0.0, 2)
        self.assertAlmostEqual(self._receivable(self.tenant), 0.5, 2)
        self.assertAlmostEqual(self._balance(self.energy), -10.5, 2)
        # the meter: a 2.000 money token repays the emergency, 1.500 cleared in milli-units
        zero, clear = move_out.zero_job_id, move_out.clear_job_id
        self.assertEqual(zero.payload["money"], 2.0)
        self.assertEqual(bytes.fromhex(zero.payload["token"])[0], credit_token.MONEY_TOKEN_TYPE)
        self.assertEqual(clear.payload["money_units"], 1500)
        self.assertAlmostEqual(self.meter.credit_money, 0.0, 3)
        # the 0.500 no sale paid is counted: the next tenant's sale never releases it
        nxt = self._money_sale(5.0, "MEM-2", datetime(2026, 3, 2))
        self.assertEqual(nxt.tenant_id, self.next_tenant)
        self.assertEqual(nxt.money_remaining, 5.0)
        self.assertFalse(prepayment._money_rows(self.env, self.company, self.meter, datetime.now()))

    def _charge_beyond_the_credit(self):
        """The tenant's 1.00 sale, then a 1.75 standing charge: 0.750 below zero, owed."""
        from ..services import standing_charge

        sale = self._money_sale(1.0, "MOW-1", datetime(2026, 2, 28))
        engine.as_engine(self.meter).credit_money = 1.0
        self.tou.write({"standing_charge_amount": 1.75, "standing_charge_collection": "odoo"})
        [charge] = standing_charge.collect_due(self.env, self.company)["queued"]
        self._run_jobs()
        self.assertEqual(charge.state, "collected")
        self.assertAlmostEqual(self.meter.credit_money, -0.75, 3)
        self.assertEqual(sale.money_remaining, 0.0)
        owed = prepayment._money_charges_owed(self.env, self.company, self.meter)
        self.assertEqual(owed, {self.tenant.id: [(charge.id, 0.75)]})
        self.tou.standing_charge_amount = 0.0  # nothing more charged to the next tenant
        return charge, standing_charge.ensure_account(self.company)

    def _next_tenant_buys(self):
        """The next tenant's 5.00 sale and the daily recognition: a clean meter's books."""
        nxt = self._money_sale(5.0, "MOW-2", datetime(2026, 3, 2))
        self.assertEqual(nxt.tenant_id, self.next_tenant)
        self.assertEqual(nxt.invoice_id.invoice_line_ids.mapped("account_id"), self.liability)
        prepayment.recognise(self.company)
        self.assertEqual(nxt.money_remaining, 5.0)
        self.assertFalse(nxt.recognition_ids)
        self.assertAlmostEqual(self._balance(self.liability, self.next_tenant), -5.0, 2)
        return nxt

    def test_standing_charge_beyond_the_credit_is_the_leaving_tenants_debt_only(self):
        charge, income = self._charge_beyond_the_credit()
        move_out = self._move_out("refund", next_tenant_id=self.next_tenant)
        self._run_jobs()
        self.assertEqual(move_out.state, "done", move_out.blocked_reason)
        done = move_out.settlement_id
        self.assertEqual((done.negative_credit, done.shortfall), (0.75, 0.75))
        self.assertEqual((done.debt_id.amount, done.debt_amount), (0.75, 0.75))
        self.assertAlmostEqual(self._receivable(self.tenant), 0.75, 2)
        # the debt carries the charge: closed, owed to no one any more
        self.assertEqual(prepayment._money_charges_owed(self.env, self.company, self.meter), {})
        closed = charge.recognition_ids.filtered("repayment")
        self.assertEqual(
            (closed.purchase_id, closed.money, closed.amount),
            (self.env["smartpm.credit.purchase"], 0.75, 0.0),
        )
        self.assertAlmostEqual(self.meter.credit_money, 0.0, 3)
        self.assertAlmostEqual(self._balance(income), -1.0, 2)  # what the sale covered
        self._next_tenant_buys()
        self.assertAlmostEqual(self._balance(income), -1.0, 2)  # B's sale released none
        self.assertAlmostEqual(self._balance(self.liability, self.tenant), 0.0, 2)
        # the leaving tenant coming back and buying on the meter does not pay it twice
        self.assertFalse(prepayment._money_rows(self.env, self.company, self.meter, datetime.now()))

    def test_next_tenants_sale_never_repays_the_previous_tenants_charges(self):
        charge, income = self._charge_beyond_the_credit()
        self.meter.tenant_id = self.next_tenant  # a change of tenant without a settlement
        self._next_tenant_buys()
        self.assertAlmostEqual(self._balance(income), -1.0, 2)
        owed = prepayment._money_charges_owed(self.env, self.company, self.meter)
        self.assertEqual(owed, {self.tenant.id: [(charge.id, 0.75)]})  # still the tenant's

    def test_money_emergency_above_the_tariffs_is_refused_and_books_no_debt(self):
        self._two_money_sales(1.0)
        self.emergency = 2.5  # the tariff gives 2.00
        move_out = self._move_out("refund", next_tenant_id=self.next_tenant)
        self._run_jobs()
        self.assertEqual((move_out.state, move_out.blocked_step), ("blocked", "reading"))
        self.assertFalse(move_out.settlement_id)
        self.assertFalse(move_out.zero_job_id)
        self.assertFalse(
            self.env["smartpm.tenant.debt"].search([("tenant_id", "=", self.tenant.id)])
        )
        self.assertAlmostEqual(self._receivable(self.tenant), 0.0, 2)
        for text in (self.meter.serial_number, self.tenant.name, "2.500", "2.000"):
            self.assertIn(text, move_out.activity_ids.note)

    def test_money_credit_with_emergency_in_use_refunds_only_the_paid_money(self):
        first, second = self._two_money_sales(8.0)  # 15.00 sold; 8.000 on the meter
        self.emergency = 1.25  # of which 1.250 emergency: 6.750 paid left
        move_out = self._move_out("refund", next_tenant_id=self.next_tenant)
        self._run_jobs()
        self.assertEqual(move_out.state, "done", move_out.blocked_reason)
        done = move_out.settlement_id
        self.assertAlmostEqual(done.money, 6.75, 3)
        lines = [(ln.purchase_id, round(ln.money, 3), ln.amount) for ln in done.line_ids]
        self.assertEqual(lines, [(second, 5.0, 5.0), (first, 1.75, 1.75)])
        self.assertEqual((done.amount_total, done.credit_note_id.amount_total), (6.75, 6.75))
        self.assertFalse(done.debt_id)
        self.assertAlmostEqual(done.recognition_move_id.amount_total, 8.25, 2)
        self.assertAlmostEqual(self._balance(self.liability, self.tenant), 0.0, 2)
        self.assertEqual(move_out.zero_job_id.payload["money"], 1.25)
        self.assertEqual(move_out.clear_job_id.payload["money_units"], 8000)
        self.assertAlmostEqual(self.meter.credit_money, 0.0, 3)


@tagged("post_install", "-at_install")
class TestMoneyTransfer(EmergencyMoveOutMixin, MoneyMoveOutCase):
    """A money-mode meter's credit moves to another money-mode meter of the tenant: the old
    meter cleared with the money clear token, then a money token on the target, issued only
    once the clear is confirmed, and once."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.other = cls._money_meter("MO-MONEY-2", cls.tenant, cls.tou)

    @classmethod
    def _money_meter(cls, serial, tenant, tariff, company=None):
        # the mode changes with no tenant on the meter (models/meter), then the tenant
        meter = cls._meter(serial, cls.env["res.partner"], cls.env["smartpm.tariff"], company)
        meter.write({"credit_mode": "money", "tariff_id": tariff.id})
        meter.tenant_id = tenant
        return meter

    def test_money_credit_moves_once_and_only_after_the_clear_is_confirmed(self):
        first, second = self._two_money_sales(6.543)
        liability = self._balance(self.liability, self.tenant)
        move_out = self._move_out("transfer", transfer_meter_id=self.other)
        # the clear fails (the bridge crashed, the meter refused): no credit on the target
        self._run_jobs(fail_types=("clear_credit",))
        self.assertEqual((move_out.state, move_out.blocked_step), ("blocked", "clearing"))
        done = move_out.settlement_id
        self.assertEqual((done.kind, done.credit_mode, done.amount), ("transfer", "money", 6.54))
        self.assertFalse(self._transfers(self.other))
        self.assertFalse(done.transfer_purchase_id)
        # retried: the same clear token, then the money token on the target
        token = move_out.clear_job_id.payload["token"]
        move_out.with_user(self.manager).action_retry()
        self._run_jobs()
        self.assertEqual(move_out.state, "done", move_out.blocked_reason)
        self.assertEqual(move_out.clear_job_id.payload["token"], token)
        transfer = self._transfers(self.other)
        self.assertEqual(transfer, done.transfer_purchase_id)
        self.assertEqual(
            (transfer.state, transfer.credit_mode, transfer.amount, transfer.tenant_id),
            ("delivered", "money", 6.54, self.tenant),
        )
        # the token carries the old meter's closing credit in the currency's rounding, as
        # the transfer's credit_money and its value do: the target holds what its sale says
        self.assertEqual(credit_token.parse_money(bytes.fromhex(transfer.token))[1], 6540)
        self.assertEqual(transfer.credit_money, 6.54)
        self.assertFalse(transfer.invoice_id)
        self.assertAlmostEqual(self.other.credit_money, 6.54, 3)
        self.assertAlmostEqual(self.meter.credit_money, 0.0, 3)
        # the books: the 8.46 consumed recognised, the 6.54 left still owed, on the target
        self.assertAlmostEqual(done.recognition_move_id.amount_total, 8.46, 2)
        self.assertAlmostEqual(self._balance(self.liability, self.tenant), liability + 8.46, 2)
        self.assertEqual((first.money_remaining, second.money_remaining), (0.0, 0.0))
        self.assertAlmostEqual(transfer.money_remaining, 6.54, 2)
        # run again (a double click, the clear reported twice): nothing more is issued
        settlement_service.issue_transfer(done, self.other)
        move_out._finish_if_cleared()
        with self.assertRaises(UserError):
            move_out.with_user(self.manager).action_retry()
        self.assertEqual(self._transfers(self.other), transfer)

    def _transfer_in_cents(self, left, cents):
        """15.00 sold, ``left`` (milli-units) on the meter, moved to the tenant's other
        meter: ``cents`` given there, in the currency's rounding."""
        sales = self._two_money_sales(left)
        held = self._balance(self.liability, self.tenant)
        move_out = self._move_out("transfer", transfer_meter_id=self.other)
        self._run_jobs()
        self.assertEqual(move_out.state, "done", move_out.blocked_reason)
        done = move_out.settlement_id
        transfer = done.transfer_purchase_id
        given = credit_token.parse_money(bytes.fromhex(transfer.token))[1] / 1000
        currency = self.company.currency_id
        # in the currency's units: what the old meter gave up is what the new one gets, its
        # sale says it, its value is the settlement's (no cent made or lost: at most the
        # half cent below the currency's rounding stays behind, or is added)
        taken = move_out.final_credit_money
        self.assertLessEqual(abs(given - taken), 0.005 + 1e-9)
        self.assertEqual((given, transfer.credit_money), (cents, cents))
        self.assertEqual((done.amount, transfer.amount, transfer.money_remaining), (cents,) * 3)
        self.assertAlmostEqual(self.other.credit_money, cents, 3)
        self.assertAlmostEqual(self.meter.credit_money, 0.0, 3)
        # the tenant's liability: the 15.00 sold less what was consumed, now on the target
        consumed = currency.round(15.0 - cents)
        self.assertAlmostEqual(self._balance(self.liability, self.tenant), held + consumed, 2)
        self.assertEqual(sum(s.money_remaining for s in sales), 0.0)

    def test_money_transfer_gives_the_closing_credit_rounded_to_the_cent(self):
        self._transfer_in_cents(3.006, 3.01)

    def test_money_transfer_drops_a_sub_cent_the_settlement_does_not_value(self):
        self._transfer_in_cents(3.004, 3.0)

    def test_money_transfer_of_half_a_cent_gives_what_the_books_still_owe(self):
        # 11.995 consumed is 12.00 recognised (the sale's rounding): 3.00 is still owed
        self._transfer_in_cents(3.005, 3.0)

    def test_mixed_credit_modes_are_refused_naming_both_meters_and_modes(self):
        kwh_meter = self._meter("MO-KWH-3", self.tenant, self.tariff)
        for source, target in ((self.meter, kwh_meter), (kwh_meter, self.meter)):
            with self.assertRaises(UserError) as err:
                self.env(user=self.manager)["smartpm.move.out.wizard"].create(
                    {
                        "meter_id": source.id,
                        "settlement_kind": "transfer",
                        "transfer_meter_id": target.id,
                    }
                ).action_confirm()
            message = str(err.exception)
            for serial in (source.serial_number, target.serial_number):
                self.assertIn(serial, message)
            self.assertIn("credit in money", message)
            self.assertIn("credit in kWh", message)
        self.assertFalse(
            self.env["smartpm.move.out"].search([("meter_id", "in", (self.meter | kwh_meter).ids)])
        )

    def test_nobody_but_the_owner_moves_credit_to_another_tenants_or_companys_meter(self):
        self._two_money_sales(6.0)
        stranger = self._money_meter("MO-MONEY-X", self.tenant_b, self.tou)
        company_b = self.company_data_2["company"]
        abroad = self._money_meter(
            "MO-MONEY-B", self.tenant, self.env["smartpm.tariff"], company=company_b
        )
        cashier = new_test_user(self.env, "t_mt_cashier", groups="smartpm_prepay.group_cashier")
        portal = new_test_user(self.env, "t_mt_portal", groups="base.group_portal")
        attempts = [(cashier, self.other), (portal, self.other)]
        attempts += [(self.manager, stranger), (self.manager, abroad)]
        last_numbers = {m: m.last_transfer_number for m in (self.meter, stranger, abroad)}
        for user, target in attempts:
            with self.assertRaises(UserError):  # AccessError, ValidationError: UserErrors
                self.env(user=user)["smartpm.move.out.wizard"].create(
                    {
                        "meter_id": self.meter.id,
                        "settlement_kind": "transfer",
                        "transfer_meter_id": target.id,
                    }
                ).action_confirm()
        self.env.invalidate_all()
        self.assertFalse(self.env["smartpm.move.out"].search([("meter_id", "=", self.meter.id)]))
        self.assertFalse(
            self.env["smartpm.credit.purchase"].search(
                [("meter_id", "in", (stranger | abroad).ids)]
            )
        )
        self.assertEqual({m: m.last_transfer_number for m in last_numbers}, last_numbers)
        self.assertAlmostEqual(self.meter.credit_money, 6.0, 3)
        self.assertEqual(self.meter.tenant_id, self.tenant)

    def _replacement(self):
        new = self.env["smartpm.meter"].create(
            {
                "serial_number": "MO-MONEY-NEW",
                "host": "127.0.0.1",
                "port": 4103,
                "company_id": self.company.id,
                "tariff_id": self.tou.id,
                "credit_mode": "money",
            }
        )
        wizard = self.env(user=self.manager)["smartpm.meter.replacement.wizard"].create(
            {"old_meter_id": self.meter.id, "new_meter_id": new.id}
        )
        return self.env["smartpm.move.out"].browse(wizard.action_confirm()["res_id"]), new

    def test_replacing_meter_gets_its_calendars_before_the_old_meters_money_credit(self):
        self._two_money_sales(6.543)
        replacement, new = self._replacement()
        done = self._run_jobs()
        self.assertEqual(replacement.state, "done", replacement.blocked_reason)
        # the new meter's jobs, in the order the bridge took them: calendars, then credit
        jobs = new.job_ids.filtered(lambda j: j.state == "done")
        self.assertEqual(
            sorted(jobs.mapped("job_type")),
            ["add_credit", "set_friendly_schedule", "set_tariff_calendar"],
        )
        # a push the tenant's arrival queued after the credit gave way to these
        self.assertEqual(set((new.job_ids - jobs).mapped("state")) - {"cancelled"}, set())
        self.assertEqual(done[-1], "add_credit")
        self.assertEqual(sorted(done[-3:-1]), ["set_friendly_schedule", "set_tariff_calendar"])
        credit = jobs.filtered(lambda j: j.job_type == "add_credit")
        self.assertTrue(all(j.priority < credit.priority for j in jobs - credit))
        transfer = replacement.settlement_id.transfer_purchase_id
        self.assertEqual((transfer.meter_id, transfer.state), (new, "delivered"))
        self.assertEqual(credit_token.parse_money(bytes.fromhex(transfer.token))[1], 6540)
        self.assertAlmostEqual(new.credit_money, 6.54, 3)
        self.assertEqual((new.tenant_id, self.meter.state), (self.tenant, "decommissioned"))

    def test_a_silent_money_meter_moves_its_last_known_credit_once_recorded_by_hand(self):
        self._two_money_sales(4.2)
        replacement, new = self._replacement()
        self._run_jobs(fail_types=("disconnect", "read"))
        self.assertEqual((replacement.state, replacement.blocked_step), ("blocked", "reading"))
        replacement.with_user(self.manager)._record_manual(4.2, 0.0, "Meter burnt")
        self._run_jobs()
        self.assertEqual(replacement.state, "done", replacement.blocked_reason)
        self.assertFalse(replacement.clear_job_id)
        transfer = replacement.settlement_id.transfer_purchase_id
        self.assertEqual((transfer.meter_id, transfer.state), (new, "delivered"))
        self.assertAlmostEqual(new.credit_money, 4.2, 3)
