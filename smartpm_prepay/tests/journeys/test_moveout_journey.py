"""The owner's move-out on the demo's data (issue 16 "done when"): the owner (``admin``)
moves the tenant of SIM00002 out from the meter form, refunds the remaining credit and moves
``amina`` in. The test plays only the meter bridge (the demo's bridge login), answering as
the simulated meter would. The books show the prepayment liability equal to the tenants'
remaining credit before and after; amina's portal shows nothing of the old tenant."""

from odoo.tests import Form, tagged

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

    def _bridge_runs(self, rounds=10):
        """The bridge: claim what is due and answer as the simulated meter."""
        Job = self.env["smartpm.meter.job"].with_user(self.bridge_user)
        for _round in range(rounds):
            claimed = Job.claim(BRIDGE, 500, 300)
            if not claimed:
                return
            for vals in claimed:
                job = self.env["smartpm.meter.job"].browse(vals["id"])
                Job.complete(job.id, BRIDGE, self._answer(job))

    def _answer(self, job):
        meter = job.meter_id
        if job.job_type == "add_credit":
            return {"credit_kwh": meter.credit_kwh + job.payload["kwh"], "relay": "connected"}
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
                ]
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
