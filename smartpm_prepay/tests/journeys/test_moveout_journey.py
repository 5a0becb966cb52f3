"""The owner's move-out on the demo's data (issue 16 "done when"): the owner (``admin``)
moves the tenant of SIM00002 out from the meter form, refunds the remaining credit and moves
``amina`` in. The test plays only the meter bridge (the demo's bridge login), answering as
the simulated meter would. The books show the prepayment liability equal to the tenants'
remaining credit before and after; amina's portal shows nothing of the old tenant.

The owner's screens of a move-out with emergency credit in use: the final reading's
emergency credit, the settlement's emergency / negative credit / shortfall / debt, the
zeroing job and its state, and the move-out blocked when that job is cancelled, with its
Retry (tours ``smartpm_owner_moveout_*``, as ``admin`` in the browser)."""

from odoo.tests import Form, tagged

from ...services import engine
from .common import DemoJourneyCase

BRIDGE = "journey-moveout-bridge"
OBIS_IMPORT = "1.0.1.8.0.255"
OBIS_CREDIT = "0.0.19.10.0.255"


@tagged("post_install", "-at_install")
class TestMoveOutJourney(DemoJourneyCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Users = cls.env["res.users"].with_context(active_test=False)
        cls.bridge_user = Users.search([("login", "=", "bridge")], limit=1) or Users.create(
            {
                "name": "Meter bridge (bridge)",
                "login": "bridge",
                "groups_id": [
                    (4, cls.env.ref("base.group_user").id),
                    (4, cls.env.ref("smartpm_prepay.group_bridge_api").id),
                ],
            }
        )
        cls.bridge_user.active = True
        cls.meter = cls.env.ref("smartpm_prepay.demo_meter_02")
        cls.old_tenant = cls.meter.tenant_id

    emergency = 0.0  # what the meter reports of emergency credit in use
    hold_zero = False  # the meter is busy: the zeroing token waits

    def _held(self, job):
        return self.hold_zero and (job.idempotency_key or "").endswith("-zero")

    def _bridge_runs(self, rounds=10):
        """The bridge: claim what is due and answer as the simulated meter."""
        Job = self.env["smartpm.meter.job"].with_user(self.bridge_user)
        for _round in range(rounds):
            claimed = Job.claim(BRIDGE, 500, 300)
            if not claimed:
                return
            held = []
            for vals in claimed:
                job = self.env["smartpm.meter.job"].browse(vals["id"])
                if self._held(job):
                    held.append(job.id)
                    continue
                Job.complete(job.id, BRIDGE, self._answer(job))
            if held:
                Job.release(held, BRIDGE)
                if len(held) == len(claimed):
                    return

    def _answer(self, job):
        meter = job.meter_id
        if job.job_type == "add_credit":  # a token repays the emergency credit in use first
            repaid = min(self.emergency, job.payload["kwh"]) if meter == self.meter else 0.0
            self.emergency -= repaid
            return {
                "credit_kwh": meter.credit_kwh + job.payload["kwh"] - repaid,
                "emergency_repaid_kwh": repaid,
                "relay": "connected",
            }
        if job.job_type == "clear_credit":
            cleared = job.payload["wh"] / 1000
            return {
                "cleared_kwh": cleared,
                "credit_kwh": round(meter.credit_kwh - cleared, 3),
                "transfer_number": job.payload["transfer_number"],
                "relay": "disconnected",
            }
        if job.job_type == "disconnect":
            return {"relay": "disconnected"}
        if job.job_type == "reconnect":
            return {"relay": "connected"}
        if job.job_type == "read" and job.meter_id == self.meter:
            return {
                "readings": [
                    {"obis": OBIS_CREDIT, "value": meter.credit_kwh * 1000, "unit": "Wh"},
                    {"obis": OBIS_IMPORT, "value": 5210000, "unit": "Wh"},
                ],
                "emergency_in_use_kwh": self.emergency,
            }
        return {}

    def _books(self, tenant):
        self.env.flush_all()
        row = self.env["smartpm.credit.balance.report"].search([("tenant_id", "=", tenant.id)])
        liability = self.meter.company_id.smartpm_prepayment_account_id
        lines = self.env["account.move.line"].search(
            [
                ("account_id", "=", liability.id),
                ("partner_id", "=", tenant.id),
                ("parent_state", "=", "posted"),
            ]
        )
        return row.remaining_value, -sum(lines.mapped("balance"))

    def test_owner_moves_a_tenant_out_refunds_and_moves_amina_in(self):
        # the demo's bridge delivers the bank sale of SIM00002
        self._bridge_runs()
        sold = self.env["smartpm.credit.purchase"].search([("meter_id", "=", self.meter.id)])
        self.assertTrue(sold)
        self.assertEqual(set(sold.mapped("state")), {"delivered"})
        credit = self.meter.credit_kwh
        self.assertGreater(credit, 0)
        remaining, liability = self._books(self.old_tenant)
        self.assertGreater(remaining, 0)
        self.assertAlmostEqual(remaining, liability, 2)

        # the owner, on the meter form: Move tenant out, refund, amina next
        action = self.meter.with_user(self.owner).action_move_out()
        wizard_form = Form(
            self.env(user=self.owner)[action["res_model"]].with_context(**action["context"])
        )
        wizard_form.settlement_kind = "refund"
        self.assertTrue(wizard_form.refund_journal_id, "a cash journal is proposed")
        wizard_form.next_tenant_id = self.amina.partner_id
        done = wizard_form.save().action_confirm()
        move_out = self.env["smartpm.move.out"].browse(done["res_id"])
        self.assertEqual(move_out.state, "reading")
        self._bridge_runs()

        self.assertEqual(move_out.state, "done", move_out.blocked_reason)
        self.assertAlmostEqual(move_out.final_credit_kwh, credit)
        self.assertAlmostEqual(self.meter.credit_kwh, 0.0)
        refund = move_out.settlement_id.credit_note_id
        self.assertEqual(refund.state, "posted")
        self.assertIn(refund.payment_state, ("paid", "in_payment"))
        self.assertAlmostEqual(refund.amount_untaxed, remaining, 2)
        self.assertEqual(self.meter.tenant_id, self.amina.partner_id)
        remaining_after, liability_after = self._books(self.old_tenant)
        self.assertAlmostEqual(remaining_after, 0.0, 2)
        self.assertAlmostEqual(liability_after, 0.0, 2)
        for tenant in (self.amina.partner_id,):
            value, books = self._books(tenant)
            self.assertAlmostEqual(value, books, 2)

        # amina's portal: the meter is hers, nothing of the old tenant
        self.authenticate("amina", "amina")
        page = self.url_open(f"/my/meters/{self.meter.id}")
        self.assertEqual(page.status_code, 200)
        self.assertIn("SIM00002", page.text)
        self.assertNotIn(self.old_tenant.name, page.text)
        for purchase in sold:
            self.assertNotIn(purchase.name, page.text)
        self.assertNotIn("5210", page.text)  # the old tenant's final register reading

    def _owner_moves_out(self):
        action = self.meter.with_user(self.owner).action_move_out()
        wizard_form = Form(
            self.env(user=self.owner)[action["res_model"]].with_context(**action["context"])
        )
        wizard_form.settlement_kind = "refund"
        wizard_form.next_tenant_id = self.amina.partner_id
        done = wizard_form.save().action_confirm()
        return self.env["smartpm.move.out"].browse(done["res_id"])

    def test_owner_sees_the_emergency_debt_and_the_zeroing_job_and_retries_it(self):
        self._bridge_runs()  # the demo's bank sale delivered
        # the owner gives the tariff emergency credit; the tenant took its 5 kWh and
        # consumed all but 2 kWh of the meter's credit: 3 kWh consumed without payment
        tariff = self.meter._get_tariff()
        with Form(tariff.with_user(self.owner)) as form:
            form.emergency_credit_kwh = 5.0
            form.emergency_threshold_kwh = 2.0
        self._bridge_runs()  # the setting pushed to the meters
        engine.as_engine(self.meter).credit_kwh = 2.0
        self.emergency, self.hold_zero = 5.0, True
        move_out = self._owner_moves_out()
        self._bridge_runs()
        self.assertEqual(move_out.state, "clearing", move_out.blocked_reason)
        done, zero = move_out.settlement_id, move_out.zero_job_id
        self.assertEqual((done.emergency_credit, done.negative_credit, done.shortfall), (5, 0, 3))
        self.assertEqual((done.debt_id.state, done.debt_id.tenant_id), ("active", self.old_tenant))
        self.assertEqual(
            (zero.job_type, zero.state, zero.payload["kwh"]), ("add_credit", "pending", 5)
        )
        url = f"/odoo/action-smartpm_prepay.action_move_out/{move_out.id}"
        # what the owner sees: the final reading, the zeroing job waiting, the settlement's debt
        self.start_tour(url, "smartpm_owner_moveout_emergency", login="admin")
        # an operator cancels the zeroing token: the owner sees why it is blocked, retries
        zero.with_user(self.owner).action_cancel()
        self.assertEqual(move_out.state, "blocked")
        self.assertEqual(move_out.activity_ids.user_id, self.owner)
        self.start_tour(url, "smartpm_owner_moveout_retry", login="admin")
        self.assertEqual((move_out.state, zero.state), ("clearing", "pending"))
        self.hold_zero = False
        self._bridge_runs()
        self.assertEqual(move_out.state, "done", move_out.blocked_reason)
        self.assertEqual(zero.state, "done")
        self.assertAlmostEqual(self.meter.credit_kwh, 0.0)
        self.assertEqual(self.meter.tenant_id, self.amina.partner_id)
        self.assertEqual(done.debt_id.balance, done.debt_amount)  # owed by the old tenant only
