"""Issue 16 §3-4: a tenant moves out (read, settle by refund / transfer / forfeit, clear,
next tenant at zero) and a meter is replaced (credit and tenant to the new meter)."""

from datetime import date, datetime, timedelta

from odoo import fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import Form, new_test_user, tagged

from ..services import engine, prepayment, statement, vending
from ..services import settlement as settlement_service
from ..services.obis import ENERGY_IMPORT, OBIS_CREDIT
from .test_prepayment_accounting import MONTH, RUN_DAY, PrepaymentCase
from .test_tou import TouMixin

BRIDGE = "b-moveout"


class MoveOutCase(PrepaymentCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["smartpm.meter.job"].search([("state", "in", ("pending", "claimed"))]).with_env(
            engine.as_engine(cls.env["smartpm.meter.job"]).env
        ).write({"state": "cancelled"})
        cls.manager = new_test_user(
            cls.env,
            "t_mo_manager",
            groups="smartpm_prepay.group_manager,account.group_account_manager",
        )
        cls.manager.company_ids = cls.company
        cls.manager.company_id = cls.company
        cls.bridge = new_test_user(
            cls.env, "t_mo_bridge", groups="base.group_user,smartpm_prepay.group_bridge_api"
        )
        cls.next_tenant = cls.env["res.partner"].create({"name": "Ama Next", "is_tenant": True})

    # ------------------------------------------------------------ helpers
    def _sell(self, meter, amount, ref, delivered_on=date(2026, 2, 28)):
        purchase = super()._sell(meter, amount, ref, delivered_on)
        if delivered_on:  # delivered: its job is done, no bridge is to run it again
            engine.as_engine(purchase.job_id).state = "done"
        return purchase

    def _two_purchases(self):
        """20.00 at 0.25 (80 kWh), then 30.00 at 0.30 (100 kWh): 50.00 for 180 kWh."""
        first = self._sell(self.meter, 20.0, "MO-1")
        self.meter.tariff_id = self.dear
        second = self._sell(self.meter, 30.0, "MO-2", delivered_on=date(2026, 3, 1))
        self.meter.tariff_id = self.tariff
        return first, second

    def _wizard(self, kind, user=None, **vals):
        env = self.env(user=user or self.manager)
        form = Form(env["smartpm.move.out.wizard"].with_context(default_meter_id=self.meter.id))
        form.settlement_kind = kind
        for name, value in vals.items():
            setattr(form, name, value)
        return form.save()

    def _move_out(self, kind, **vals):
        action = self._wizard(kind, **vals).action_confirm()
        return self.env["smartpm.move.out"].browse(action["res_id"])

    def _run_jobs(self, credit_kwh=None, energy_kwh=1234.5, fail_types=()):
        """Play the bridge: claim what is due and answer as the meter would."""
        Job = self.env["smartpm.meter.job"].with_user(self.bridge)
        done = []
        for _round in range(10):
            claimed = Job.claim(BRIDGE, 10, 60)
            if not claimed:
                break
            for data in claimed:
                job = self.env["smartpm.meter.job"].browse(data["id"])
                done.append(job.job_type)
                if job.job_type in fail_types:
                    Job.fail(job.id, BRIDGE, "no answer", False)
                    continue
                Job.complete(job.id, BRIDGE, self._answer(job, credit_kwh, energy_kwh))
        return done

    def _answer(self, job, credit_kwh, energy_kwh):
        meter = job.meter_id
        if job.job_type == "disconnect":
            return {"relay": "disconnected"}
        if job.job_type == "reconnect":
            return {"relay": "connected"}
        if job.job_type == "read":
            credit = meter.credit_kwh if credit_kwh is None else credit_kwh
            return {
                "readings": [
                    {"obis": OBIS_CREDIT, "value": credit * 1000, "unit": "Wh"},
                    {"obis": ENERGY_IMPORT, "value": energy_kwh * 1000, "unit": "Wh"},
                ]
            }
        if job.job_type == "clear_credit":
            cleared = job.payload["wh"] / 1000
            return {
                "cleared_kwh": cleared,
                "credit_kwh": round(meter.credit_kwh - cleared, 3),
                "relay": "disconnected",
                "transfer_number": job.payload["transfer_number"],
            }
        if job.job_type == "add_credit":
            return {"credit_kwh": meter.credit_kwh + job.payload["kwh"]}
        return {}

    def _transfers(self, meter):
        """The transfer purchases of ``meter`` (credit moved to it by a settlement)."""
        return self.env["smartpm.credit.purchase"].search(
            [("meter_id", "=", meter.id), ("channel", "=", "transfer")]
        )

    def _set_credit(self, meter, kwh):
        engine.as_engine(meter).credit_kwh = kwh

    def _report_rows(self):
        self.env.flush_all()
        return self.env["smartpm.credit.balance.report"].search(
            [("company_id", "=", self.company.id)]
        )

    def _assert_report_agrees(self):
        for row in self._report_rows():
            self.assertAlmostEqual(
                row.liability_balance, row.remaining_value, 2, msg=row.tenant_id.name
            )

    def _tenant_row(self, tenant):
        return self._report_rows().filtered(lambda r: r.tenant_id == tenant)


@tagged("post_install", "-at_install")
class TestMoveOutSettlement(MoveOutCase):
    def test_refund_pays_the_remaining_credit_back_at_its_prices_and_clears_the_meter(self):
        self._two_purchases()
        self._set_credit(self.meter, 120.0)  # 60 kWh of the first purchase consumed
        self._assert_report_agrees()
        move_out = self._move_out("refund", next_tenant_id=self.next_tenant)
        self.assertEqual(move_out.state, "reading")
        self.assertEqual(self._run_jobs()[:2], ["disconnect", "read"])
        self.assertEqual(move_out.state, "done")
        self.assertAlmostEqual(move_out.final_credit_kwh, 120.0)
        self.assertAlmostEqual(move_out.final_energy_kwh, 1234.5)
        self.assertEqual(move_out.reading_source, "meter")
        final = self.env["smartpm.reading"].search([("job_id", "=", move_out.read_job_id.id)])
        self.assertEqual(set(final.mapped("source")), {"final"})
        settlement = move_out.settlement_id
        # the newest 100 kWh at 0.30, then 20 kWh of the first at 0.25
        self.assertAlmostEqual(settlement.amount, 35.0)
        self.assertEqual(settlement.kind, "refund")
        self.assertEqual(settlement.tenant_id, self.tenant)
        credit_note = settlement.credit_note_id
        self.assertEqual(credit_note.move_type, "out_refund")
        self.assertEqual(credit_note.state, "posted")
        self.assertAlmostEqual(credit_note.amount_total, 35.0)
        self.assertIn(credit_note.payment_state, ("paid", "in_payment"))
        self.assertEqual(settlement.payment_id.payment_type, "outbound")
        self.assertEqual(settlement.payment_id.journal_id, self.cash)
        # the meter: cleared of exactly the final credit, at zero
        clear = move_out.clear_job_id
        self.assertEqual(
            (clear.job_type, clear.state, clear.payload["wh"]), ("clear_credit", "done", 120000)
        )
        self.assertAlmostEqual(self.meter.credit_kwh, 0.0)
        # the old assignment closed, the next tenant's opened
        self.assertTrue(move_out.assignment_id.date_end)
        self.assertEqual(self.meter.tenant_id, self.next_tenant)
        self.assertEqual(move_out.next_assignment_id.tenant_id, self.next_tenant)
        self.assertEqual(self.meter.state, "active")  # sellable: its next credit reconnects
        self.assertEqual(vending.month_kwh(self.env, self.meter), 0.0)
        # books: the 60 kWh consumed before the move (not recognised yet) are recognised at
        # the settlement, at the first sale's price: nothing is left owed to the tenant
        self.assertAlmostEqual(settlement.recognition_move_id.amount_total, 15.0)
        self.assertAlmostEqual(self._balance(self.energy), -15.0)
        row = self._tenant_row(self.tenant)
        self.assertAlmostEqual(row.remaining_kwh, 0.0)
        self.assertAlmostEqual(row.remaining_value, 0.0)
        self.assertAlmostEqual(self._balance(self.liability, self.tenant), 0.0)
        self._assert_report_agrees()

    def test_statement_shows_the_settlement_and_closes_at_zero_as_the_report(self):
        self._two_purchases()
        self._consume(self.meter, [date(2026, 3, d) for d in range(2, 8)], 10.0)  # 60 kWh
        self._set_credit(self.meter, 120.0)
        move_out = self._move_out("refund", next_tenant_id=self.next_tenant)
        self._run_jobs()
        self.assertEqual(move_out.state, "done")
        settlement = move_out.settlement_id
        today = fields.Date.context_today(self.env.user)
        st = statement.tenant_statement(self.env, self.tenant, date(2026, 2, 1), today)
        [line] = [x for x in st["meters"][0]["lines"] if x["kind"] == "settlement"]
        self.assertEqual((line["kwh"], line["value"]), (-120.0, -35.0))
        self.assertEqual(line["amount"], -35.0)
        self.assertIn(settlement.credit_note_id.name, line["document"])
        self.assertEqual((st["closing_kwh"], st["closing_value"]), (0.0, 0.0))
        self.assertTrue(statement.is_balanced(st))
        row = self._tenant_row(self.tenant)
        self.assertAlmostEqual(row.remaining_kwh, st["closing_kwh"])
        self.assertAlmostEqual(row.remaining_value, st["closing_value"])
        # without the settlement line, the statement would close at what was refunded
        providers = [p for p in statement.LINE_PROVIDERS if p is not statement.settlement_lines]
        unsettled = statement.tenant_statement(
            self.env, self.tenant, date(2026, 2, 1), today, providers=providers
        )
        self.assertEqual((unsettled["closing_kwh"], unsettled["closing_value"]), (120.0, 35.0))

    def test_recognition_after_a_move_out_counts_the_consumption_not_the_clear(self):
        self._two_purchases()
        self._set_credit(self.meter, 120.0)
        self._consume(self.meter, MONTH[:2], 30.0)  # the 60 kWh consumed before the move
        move_out = self._move_out("forfeit")
        self._run_jobs()
        self.assertEqual(move_out.state, "done")
        prepayment.recognise(self.company, today=RUN_DAY)
        rec = self.env["smartpm.credit.recognition"].search([("tenant_id", "=", self.tenant.id)])
        self.assertAlmostEqual(sum(rec.mapped("kwh")), 60.0)
        self.assertAlmostEqual(sum(rec.mapped("amount")), 15.0)
        self.assertAlmostEqual(self._balance(self.liability, self.tenant), 0.0)
        self.assertFalse(self._tenant_row(self.tenant).remaining_kwh)
        self._assert_report_agrees()

    def test_forfeit_moves_the_value_to_the_forfeited_credit_income(self):
        self._two_purchases()
        self._set_credit(self.meter, 120.0)
        move_out = self._move_out("forfeit")
        self._run_jobs()
        settlement = move_out.settlement_id
        forfeit = self.company.smartpm_forfeit_account_id
        self.assertEqual(forfeit.account_type, "income_other")
        self.assertEqual(settlement.move_id.state, "posted")
        self.assertAlmostEqual(self._balance(forfeit), -35.0)
        self.assertAlmostEqual(self._balance(self.energy), -15.0)  # consumed before
        self.assertAlmostEqual(self._balance(self.liability, self.tenant), 0.0)
        self.assertFalse(settlement.credit_note_id)
        self.assertAlmostEqual(self.meter.credit_kwh, 0.0)
        self.assertFalse(self.meter.tenant_id)
        self._assert_report_agrees()

    def test_transfer_puts_the_same_kwh_on_the_tenants_other_meter_without_money(self):
        self._two_purchases()
        self._set_credit(self.meter, 120.0)
        other = self._meter("PRE-3", self.tenant, self.tariff)
        last_move = self.env["account.move"].search([], order="id desc", limit=1).id
        month_before = vending.month_kwh(self.env, other)
        number_before = other.last_transfer_number
        move_out = self._move_out("transfer", transfer_meter_id=other)
        # the clear fails (the meter refused, the bridge crashed): the old meter keeps its
        # credit, the target gets none
        self._run_jobs(fail_types=("clear_credit",))
        self.assertEqual((move_out.state, move_out.blocked_step), ("blocked", "clearing"))
        self.assertFalse(move_out.settlement_id.transfer_purchase_id)
        self.assertFalse(self._transfers(other))
        self.assertEqual(other.last_transfer_number, number_before)
        self.assertAlmostEqual(self.meter.credit_kwh, 120.0)
        self.assertAlmostEqual(other.credit_kwh, 0.0)
        # retried: the clear taken, then the transfer token on the target
        move_out.with_user(self.manager).action_retry()
        self._run_jobs()
        self.assertEqual(move_out.state, "done", move_out.blocked_reason)
        purchase = move_out.settlement_id.transfer_purchase_id
        self.assertEqual(self._transfers(other), purchase)
        self.assertEqual(purchase.channel, "transfer")
        self.assertEqual((purchase.meter_id, purchase.tenant_id), (other, self.tenant))
        self.assertAlmostEqual(purchase.kwh, 120.0)
        self.assertAlmostEqual(purchase.amount_untaxed, 35.0)
        self.assertEqual(purchase.state, "delivered")
        self.assertFalse(purchase.invoice_id)
        self.assertAlmostEqual(other.credit_kwh, 120.0)
        self.assertAlmostEqual(self.meter.credit_kwh, 0.0)
        # the clear reported again, the retry clicked again, a re-run: nothing more issued
        move_out._on_credit_cleared(move_out.clear_job_id, {"cleared_kwh": 120.0})
        move_out._finish_if_cleared()
        settlement_service.issue_transfer(move_out.settlement_id, other)
        with self.assertRaises(UserError):
            move_out.with_user(self.manager).action_retry()
        self._run_jobs()
        self.assertEqual(self._transfers(other), purchase)
        self.assertAlmostEqual(other.credit_kwh, 120.0)
        # no invoice, no payment: the one new entry recognises the consumption before
        new_moves = self.env["account.move"].search([("id", ">", last_move)])
        self.assertEqual(new_moves, move_out.settlement_id.recognition_move_id)
        self.assertEqual(new_moves.journal_id, self.company.smartpm_recognition_journal_id)
        # the transferred 35.00 still owed, no tier moved: it is not a purchase (the 15.00
        # of the 60 kWh consumed before the move are recognised at the settlement)
        self.assertAlmostEqual(-self._balance(self.liability, self.tenant), 35.0)
        self.assertAlmostEqual(self._balance(self.energy), -15.0)
        self.assertAlmostEqual(self._tenant_row(self.tenant).remaining_value, 35.0)
        self.assertEqual(vending.month_kwh(self.env, other), month_before)
        self._assert_report_agrees()
        # consumed on the new meter, the transferred credit is recognised at its value
        engine.as_engine(purchase).date_delivered = datetime(2026, 3, 2)
        self._consume(other, MONTH[2:3], 120.0)
        self._consume(self.meter, MONTH[:2], 30.0, tenant=self.tenant)
        prepayment.recognise(self.company, today=RUN_DAY)
        self.assertAlmostEqual(purchase.value_recognised, 35.0)
        self.assertAlmostEqual(self._balance(self.liability, self.tenant), 0.0)
        self._assert_report_agrees()

    def test_taxed_refund_pays_back_the_tax_and_the_books_still_agree(self):
        tax = self.company_data["default_tax_sale"].copy(
            {"name": "VAT 15% incl.", "price_include_override": "tax_included"}
        )
        self.tariff.tax_ids = tax
        purchase = self._sell(self.meter, 23.0, "MO-TAX")  # 20.00 + 3.00 tax, 80 kWh
        self._set_credit(self.meter, 33.333)
        move_out = self._move_out("refund")
        self._run_jobs()
        settlement = move_out.settlement_id
        self.assertAlmostEqual(settlement.amount_total, settlement.credit_note_id.amount_total)
        self.assertAlmostEqual(settlement.amount, settlement.credit_note_id.amount_untaxed)
        self.assertAlmostEqual(settlement.amount_total, 9.58, 2)
        self.assertAlmostEqual(purchase.kwh_settled, 33.333, 3)
        self.assertAlmostEqual(purchase.kwh_recognised, 80.0 - 33.333, 3)
        self.assertAlmostEqual(purchase.kwh_remaining, 0.0, 3)
        self._assert_report_agrees()

    def test_meter_at_zero_credit_settles_nothing_and_needs_no_clear(self):
        self._sell(self.meter, 20.0, "MO-Z")
        self._set_credit(self.meter, 0.0)
        move_out = self._move_out("refund", next_tenant_id=self.next_tenant)
        self.assertNotIn("clear_credit", self._run_jobs())
        self.assertEqual(move_out.state, "done")
        self.assertFalse(move_out.settlement_id.credit_note_id)
        self.assertEqual(self.meter.tenant_id, self.next_tenant)


@tagged("post_install", "-at_install")
class TestMoveOutBlocks(MoveOutCase):
    def test_meter_sells_nothing_while_it_is_moved_out(self):
        self._sell(self.meter, 20.0, "MO-S")
        move_out = self._move_out("refund")
        with self.assertRaisesRegex(vending.VendingError, f"PRE-1.*{move_out.name}"):
            vending.vend(self.env, self.meter, 5.0, "backoffice", "MO-S-2")
        self._run_jobs()
        self.assertEqual(move_out.state, "done")
        self.meter.tenant_id = self.next_tenant
        self.assertTrue(vending.vend(self.env, self.meter, 5.0, "backoffice", "MO-S-3"))

    def test_credit_on_its_way_refuses_the_move_out(self):
        vending.vend(self.env, self.meter, 20.0, "backoffice", "MO-Q")
        with self.assertRaisesRegex(UserError, "PRE-1.*on its way"):
            self._wizard("refund").action_confirm()
        self.assertFalse(self.env["smartpm.move.out"].search([("meter_id", "=", self.meter.id)]))

    def test_transfer_to_another_tenants_meter_is_refused(self):
        self._sell(self.meter, 20.0, "MO-T")
        wizard = self._wizard("refund")
        wizard.write({"settlement_kind": "transfer", "transfer_meter_id": self.meter_b.id})
        with self.assertRaisesRegex(UserError, "same tenant"):
            wizard.action_confirm()

    def test_failed_read_blocks_until_the_meter_answers_on_retry(self):
        self._sell(self.meter, 20.0, "MO-B")
        self._set_credit(self.meter, 50.0)
        move_out = self._move_out("refund")
        self._run_jobs(fail_types=("read",))
        self.assertEqual(move_out.state, "blocked")
        self.assertEqual(move_out.blocked_step, "reading")
        self.assertIn("PRE-1", move_out.blocked_reason)
        activity = move_out.activity_ids
        self.assertEqual(len(activity), 1)
        self.assertFalse(move_out.settlement_id)
        move_out.with_user(self.manager).action_retry()
        self.assertEqual(move_out.state, "reading")
        self.assertFalse(move_out.activity_ids)
        self._run_jobs()
        self.assertEqual(move_out.state, "done")
        self.assertAlmostEqual(move_out.settlement_id.amount, 12.5)

    def test_manager_records_the_reading_by_hand_audited(self):
        self._sell(self.meter, 20.0, "MO-H")
        self._set_credit(self.meter, 50.0)
        move_out = self._move_out("forfeit")
        self._run_jobs(fail_types=("read", "disconnect"))
        self.assertEqual(move_out.state, "blocked")
        action = move_out.with_user(self.manager).action_record_reading()
        wizard = (
            self.env(user=self.manager)[action["res_model"]]
            .with_context(**action["context"])
            .create({"credit_kwh": 40.0, "energy_kwh": 777.0, "reason": "Display read on site"})
        )
        wizard.action_confirm()
        self.assertEqual(move_out.reading_source, "manual")
        self.assertEqual(move_out.override_user_id, self.manager)
        self.assertTrue(move_out.override_date)
        self.assertEqual(move_out.override_reason, "Display read on site")
        self.assertAlmostEqual(move_out.final_credit_kwh, 40.0)
        audit = move_out.message_ids.filtered(lambda m: "Display read on site" in m.body)
        self.assertEqual(len(audit), 1)
        self.assertIn(self.manager.name, audit.body)
        self.assertIn("40.0", audit.body)
        manual = self.env["smartpm.reading"].search(
            [("meter_id", "=", self.meter.id), ("source", "=", "final_manual")]
        )
        self.assertEqual(len(manual), 2)
        self.assertEqual(move_out.state, "clearing")
        self.assertEqual(move_out.clear_job_id.payload["wh"], 40000)
        self._run_jobs()
        self.assertEqual(move_out.state, "done")
        self.assertAlmostEqual(move_out.settlement_id.amount, 10.0)

    def test_reading_by_hand_is_refused_when_no_reading_is_awaited(self):
        self._sell(self.meter, 20.0, "MO-HR")
        move_out = self._move_out("forfeit")
        Wizard = self.env(user=self.manager)["smartpm.move.out.reading.wizard"]
        wizard = Wizard.create({"move_out_id": move_out.id, "credit_kwh": 1.0, "reason": "x"})
        with self.assertRaisesRegex(UserError, "does not wait for a reading"):
            wizard.action_confirm()
        self.assertFalse(move_out.reading_source)

    def test_duplicates_settle_clear_and_refund_once(self):
        self._sell(self.meter, 20.0, "MO-D")
        self._set_credit(self.meter, 50.0)
        move_out = self._move_out("refund")
        move_out._start()  # a double click
        self.assertEqual(move_out.read_attempt, 1)
        jobs = self.env["smartpm.meter.job"].search([("meter_id", "=", self.meter.id)])
        self.assertEqual(jobs.mapped("job_type").count("disconnect"), 1)
        self.assertFalse(move_out.read_job_id, "the read waits for the relay to be open")
        self._run_jobs()
        # the disconnect's result reported again: one read
        move_out._on_job_done(move_out.disconnect_job_id, {"relay": "disconnected"})
        # the read's result and the clear's reported again, the retry clicked again
        result = self._answer(move_out.read_job_id, 50.0, 1.0)
        move_out._on_job_done(move_out.read_job_id, result)
        move_out._on_credit_cleared(move_out.clear_job_id, {"cleared_kwh": 50.0})
        with self.assertRaises(UserError):
            move_out.with_user(self.manager).action_retry()
        self.assertEqual(
            self.env["smartpm.credit.settlement"].search_count([("meter_id", "=", self.meter.id)]),
            1,
        )
        self.assertEqual(
            self.env["account.move"].search_count(
                [("partner_id", "=", self.tenant.id), ("move_type", "=", "out_refund")]
            ),
            1,
        )
        clears = self.env["smartpm.meter.job"].search(
            [("meter_id", "=", self.meter.id), ("job_type", "=", "clear_credit")]
        )
        self.assertEqual(len(clears), 1)
        reads = self.env["smartpm.meter.job"].search(
            [("meter_id", "=", self.meter.id), ("job_type", "=", "read")]
        )
        self.assertEqual(len(reads), 1)
        self.assertEqual(move_out.state, "done")
        self.assertEqual(
            self.env["smartpm.meter.assignment"].search_count(
                [("meter_id", "=", self.meter.id), ("tenant_id", "=", self.tenant.id)]
            ),
            1,
        )

    def test_a_second_move_out_of_the_same_meter_is_refused(self):
        self._sell(self.meter, 20.0, "MO-2X")
        first = self._move_out("forfeit")
        with self.assertRaisesRegex(UserError, first.name):
            self._wizard("forfeit").action_confirm()


@tagged("post_install", "-at_install")
class TestMoveOutAccess(MoveOutCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.attackers = {
            "cashier": new_test_user(
                cls.env, "t_mo_cashier", groups="smartpm_prepay.group_cashier"
            ),
            "operator": new_test_user(
                cls.env, "t_mo_operator", groups="smartpm_prepay.group_operator"
            ),
            "portal": new_test_user(cls.env, "t_mo_portal", groups="base.group_portal"),
            "bank": new_test_user(
                cls.env, "t_mo_bank", groups="base.group_user,smartpm_prepay.group_bank_api"
            ),
            "bridge": cls.bridge,
        }

    def _state(self):
        self.env.invalidate_all()
        return (
            self.env["smartpm.move.out"].search_count([]),
            self.env["smartpm.credit.settlement"].search_count([]),
            self.meter.tenant_id,
            self.meter.credit_kwh,
            self.env["smartpm.meter.job"].search_count([("meter_id", "=", self.meter.id)]),
        )

    def test_only_a_manager_starts_a_move_out_or_a_replacement(self):
        self._sell(self.meter, 20.0, "MO-A")
        before = self._state()
        new = self._meter("PRE-NEW", self.tenant, self.tariff)
        engine.as_engine(new).tenant_id = False
        before = self._state()
        for name, user in self.attackers.items():
            env = self.env(user=user)
            with self.subTest(user=name), self.assertRaises(AccessError):
                env["smartpm.move.out.wizard"].create(
                    {"meter_id": self.meter.id, "settlement_kind": "forfeit"}
                ).action_confirm()
            with self.subTest(user=name), self.assertRaises(AccessError):
                env["smartpm.meter.replacement.wizard"].create(
                    {"old_meter_id": self.meter.id, "new_meter_id": new.id}
                ).action_confirm()
            with self.subTest(user=name), self.assertRaises(AccessError):
                env["smartpm.move.out"].create(
                    {
                        "meter_id": self.meter.id,
                        "tenant_id": self.tenant.id,
                        "settlement_kind": "forfeit",
                    }
                )
            self.assertEqual(self._state(), before, name)

    def test_nobody_writes_a_move_out_or_a_settlement_over_rpc(self):
        self._sell(self.meter, 20.0, "MO-W")
        move_out = self._move_out("forfeit")
        self._run_jobs(fail_types=("read",))
        self.assertEqual(move_out.state, "blocked")
        for name, user in {**self.attackers, "manager": self.manager}.items():
            env = self.env(user=user)
            with self.subTest(user=name), self.assertRaises(AccessError):
                env["smartpm.move.out"].browse(move_out.id).write(
                    {"state": "settling", "final_credit_kwh": 999.0}
                )
            with self.subTest(user=name), self.assertRaises(AccessError):
                env["smartpm.credit.settlement"].create(
                    {"move_out_id": move_out.id, "kind": "refund", "amount": 100.0}
                )
            if name != "manager":
                with self.subTest(user=name), self.assertRaises(AccessError):
                    env["smartpm.move.out"].browse(move_out.id).action_retry()
                with self.subTest(user=name), self.assertRaises(AccessError):
                    env["smartpm.move.out.reading.wizard"].create(
                        {"move_out_id": move_out.id, "credit_kwh": 0.0, "reason": "x"}
                    ).action_confirm()
        move_out.invalidate_recordset()
        self.assertEqual(move_out.state, "blocked")
        self.assertFalse(move_out.final_credit_kwh)
        self.assertFalse(move_out.settlement_id)

    def test_the_replacement_links_cannot_be_written_by_hand(self):
        with self.assertRaises(AccessError):
            self.meter.with_user(self.manager).write({"replaced_by_id": self.meter_b.id})
        self.assertFalse(self.meter.replaced_by_id)


@tagged("post_install", "-at_install")
class TestMeterReplacement(MoveOutCase):
    def setUp(self):
        super().setUp()
        self.new = self.env["smartpm.meter"].create(
            {
                "serial_number": "PRE-NEW",
                "host": "127.0.0.1",
                "port": 4101,
                "tariff_id": self.tariff.id,
                "company_id": self.company.id,
            }
        )

    def _replace(self):
        wizard = self.env(user=self.manager)["smartpm.meter.replacement.wizard"].create(
            {"old_meter_id": self.meter.id, "new_meter_id": self.new.id}
        )
        action = wizard.action_confirm()
        return self.env["smartpm.move.out"].browse(action["res_id"])

    def test_answering_meter_is_cleared_and_its_credit_and_tenant_move_to_the_new_one(self):
        self._two_purchases()
        self._set_credit(self.meter, 120.0)
        old_assignment = self.meter.assignment_ids
        replacement = self._replace()
        # the old meter refuses the clear: it keeps its credit, nothing goes to the new one
        self._run_jobs(fail_types=("clear_credit",))
        self.assertEqual((replacement.state, replacement.blocked_step), ("blocked", "clearing"))
        self.assertFalse(self._transfers(self.new))
        self.assertAlmostEqual(self.meter.credit_kwh, 120.0)
        self.assertAlmostEqual(self.new.credit_kwh, 0.0)
        self.assertEqual(self.meter.tenant_id, self.tenant)
        replacement.with_user(self.manager).action_retry()
        self._run_jobs()
        self.assertEqual(replacement.state, "done")
        self.assertEqual(replacement.clear_job_id.state, "done")
        self.assertAlmostEqual(self.meter.credit_kwh, 0.0)
        self.assertAlmostEqual(self.new.credit_kwh, 120.0)
        token = replacement.settlement_id.transfer_purchase_id
        self.assertEqual(
            (token.channel, token.meter_id, token.state), ("transfer", self.new, "delivered")
        )
        self.assertEqual(self._transfers(self.new), token)
        self.assertEqual(self.meter.state, "decommissioned")
        self.assertEqual(self.meter.replaced_by_id, self.new)
        self.assertEqual(self.new.replaces_id, self.meter)
        self.assertEqual(self.new.tenant_id, self.tenant)
        self.assertEqual(self.new.state, "active")
        self.assertTrue(old_assignment.date_end)
        history = self.env["smartpm.meter.assignment"].search(
            self.new.action_view_assignments()["domain"]
        )
        self.assertEqual(history.meter_id, self.meter | self.new)
        self.assertEqual(set(history.mapped("tenant_id")), {self.tenant})
        self.assertAlmostEqual(-self._balance(self.liability, self.tenant), 35.0)
        self._assert_report_agrees()
        # the decommissioned meter takes no command, sells nothing
        with self.assertRaises(UserError):
            self.meter.with_context(active_test=False).action_read_now()
        with self.assertRaises(vending.VendingError):
            vending.vend(self.env, self.meter, 5.0, "backoffice", "MO-R-X")
        self.assertFalse(
            self.env["smartpm.meter.job"].search(
                [("meter_id", "=", self.meter.id), ("state", "in", ("pending", "claimed"))]
            )
        )
        decommissioned = self.env["smartpm.meter"].search(
            [("state", "=", "decommissioned"), ("active", "in", (True, False))]
        )
        self.assertIn(self.meter, decommissioned)

    def test_silent_meter_moves_its_last_known_credit_without_a_clear(self):
        self._sell(self.meter, 20.0, "MO-RS")
        self._set_credit(self.meter, 30.0)
        replacement = self._replace()
        self._run_jobs(fail_types=("read", "disconnect"))
        self.assertEqual(replacement.state, "blocked")
        action = replacement.with_user(self.manager).action_record_reading()
        self.assertEqual(action["context"]["default_credit_kwh"], 30.0)
        self.env(user=self.manager)[action["res_model"]].with_context(**action["context"]).create(
            {"reason": "Meter burnt, last known credit"}
        ).action_confirm()
        self._run_jobs()
        self.assertEqual(replacement.state, "done")
        self.assertFalse(replacement.clear_job_id)
        self.assertAlmostEqual(self.new.credit_kwh, 30.0)
        self.assertEqual(self.meter.state, "decommissioned")
        self.assertEqual(self.new.tenant_id, self.tenant)
        self._assert_report_agrees()

    def test_new_meter_with_a_tenant_is_refused(self):
        self.new.tenant_id = self.next_tenant
        with self.assertRaisesRegex(UserError, "PRE-NEW has a tenant"):
            self._replace()
        self.assertEqual(self.meter.state, "active")


@tagged("post_install", "-at_install")
class TestMoveOutSettlementBlocks(MoveOutCase):
    def test_credit_no_sale_covers_cannot_be_transferred_and_blocks_until_forfeited(self):
        other = self._meter("PRE-3", self.tenant, self.tariff)
        self._set_credit(self.meter, 12.0)  # credit the meter had before any sale on record
        move_out = self._move_out("transfer", transfer_meter_id=other)
        self._run_jobs()
        self.assertEqual((move_out.state, move_out.blocked_step), ("blocked", "settling"))
        self.assertIn("no sale on record covers", move_out.blocked_reason)
        self.assertFalse(move_out.settlement_id)
        self.assertFalse(
            self.env["smartpm.credit.purchase"].search([("meter_id", "=", other.id)]),
            "no transfer token was minted",
        )
        self.assertFalse(move_out.clear_job_id)
        move_out.with_user(self.manager).action_forfeit_instead()
        self.assertEqual(move_out.settlement_id.kind, "forfeit")
        self.assertAlmostEqual(move_out.settlement_id.kwh_uncovered, 12.0)
        self.assertFalse(move_out.settlement_id.move_id)  # no value, no entry
        self._run_jobs()
        self.assertEqual(move_out.state, "done")
        self.assertAlmostEqual(self.meter.credit_kwh, 0.0)

    def test_replacement_of_credit_no_sale_covers_is_forfeited_and_still_hands_over(self):
        new = self.env["smartpm.meter"].create(
            {
                "serial_number": "PRE-NEW-U",
                "host": "127.0.0.1",
                "port": 4102,
                "company_id": self.company.id,
                "tariff_id": self.tariff.id,
            }
        )
        self._set_credit(self.meter, 7.0)
        wizard = self.env(user=self.manager)["smartpm.meter.replacement.wizard"].create(
            {"old_meter_id": self.meter.id, "new_meter_id": new.id}
        )
        replacement = self.env["smartpm.move.out"].browse(wizard.action_confirm()["res_id"])
        self._run_jobs()
        self.assertEqual((replacement.state, replacement.blocked_step), ("blocked", "settling"))
        replacement.with_user(self.manager).action_forfeit_instead()
        self._run_jobs()
        self.assertEqual(replacement.state, "done")
        self.assertEqual(replacement.settlement_id.kind, "forfeit")
        self.assertAlmostEqual(self.meter.credit_kwh, 0.0)
        self.assertEqual(self.meter.state, "decommissioned")
        self.assertEqual((new.tenant_id, new.replaces_id), (self.tenant, self.meter))
        self.assertFalse(self.env["smartpm.credit.purchase"].search([("meter_id", "=", new.id)]))


class MoneyMoveOutCase(TouMixin, MoveOutCase):
    """A money-mode meter (its tariff time of use) and a fake bridge answering in money."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tou = cls._tou_tariff(name="Money move-out")
        tenant = cls.meter.tenant_id  # the mode changes with no tenant on the meter
        cls.meter.tenant_id = False
        cls.meter.write({"tariff_id": cls.tou.id, "credit_mode": "money"})
        cls.meter.tenant_id = tenant
        cls.forfeit_account = settlement_service.ensure_forfeit_account(cls.company)

    def _money_sale(self, amount, ref, delivered_on):
        purchase = vending.vend(self.env, self.meter, amount, "backoffice", ref)
        purchase._create_invoice_and_payment(self.cash)
        purchase._on_delivered({"credit_money": amount, "charge_total": 0.0})
        engine.as_engine(purchase).date_delivered = delivered_on
        engine.as_engine(purchase.job_id).state = "done"
        return purchase

    def _two_money_sales(self, credit_left):
        """10.00 then 5.00 of credit; the meter holds ``credit_left`` of the 15.00."""
        first = self._money_sale(10.0, "MM-1", datetime(2026, 2, 28))
        second = self._money_sale(5.0, "MM-2", datetime(2026, 3, 1))
        engine.as_engine(self.meter).credit_money = credit_left
        return first, second

    def _answer(self, job, credit_kwh, energy_kwh):
        meter = job.meter_id
        if job.job_type == "read":  # the bridge scales the credit to the currency
            return {
                "readings": [
                    {"obis": OBIS_CREDIT, "value": meter.credit_money, "unit": "currency"},
                    {"obis": ENERGY_IMPORT, "value": energy_kwh * 1000, "unit": "Wh"},
                ]
            }
        if job.job_type == "clear_credit":
            self.assertNotIn("wh", job.payload)
            cleared = job.payload["money_units"] / 1000
            return {
                "cleared_money": cleared,
                "credit_money": round(meter.credit_money - cleared, 3),
                "relay": "disconnected",
                "transfer_number": job.payload["transfer_number"],
            }
        return super()._answer(job, credit_kwh, energy_kwh)


@tagged("post_install", "-at_install")
class TestMoveOutMoneyMeter(MoneyMoveOutCase):
    """A money-mode meter's credit is currency: its move-out reads the credit in money,
    recognises what was consumed (FIFO), settles the rest per sale in money, and clears
    the meter with a money clear-credit token."""

    def test_refund_pays_back_the_money_left_on_the_meter_and_clears_it_with_a_money_token(
        self,
    ):
        first, second = self._two_money_sales(6.543)  # 8.457 of the 15.00 consumed
        move_out = self._move_out("refund", next_tenant_id=self.next_tenant)
        self._run_jobs()
        self.assertEqual(move_out.state, "done", move_out.blocked_reason)
        self.assertEqual(move_out.credit_mode, "money")
        self.assertAlmostEqual(move_out.final_credit_money, 6.543, 3)
        self.assertEqual(move_out.final_credit_kwh, 0.0)
        done = move_out.settlement_id
        self.assertEqual((done.credit_mode, done.kwh), ("money", 0.0))
        self.assertAlmostEqual(done.money, 6.543, 3)
        self.assertAlmostEqual(done.money_uncovered, 0.0, 3)
        # the consumed 8.457 recognised oldest sale first (8.46 to the cent), the rest
        # settled newest first: 5.00 of the second sale, 1.543 of the first (its 1.54 left)
        self.assertAlmostEqual(done.recognition_move_id.amount_total, 8.46, 2)
        lines = [(ln.purchase_id, round(ln.money, 3), ln.amount) for ln in done.line_ids]
        self.assertEqual(lines, [(second, 5.0, 5.0), (first, 1.543, 1.54)])
        self.assertEqual((done.amount, done.amount_total), (6.54, 6.54))
        note = done.credit_note_id
        self.assertEqual(
            (note.move_type, note.state, note.amount_total), ("out_refund", "posted", 6.54)
        )
        self.assertIn("of credit of", note.invoice_line_ids[0].name)
        self.assertNotIn("kWh", note.invoice_line_ids[0].name)
        self.assertIn(note.payment_state, ("paid", "in_payment"))
        # the meter: cleared of exactly its credit, in milli-units, with a money token
        clear = move_out.clear_job_id
        self.assertEqual((clear.state, clear.payload["money_units"]), ("done", 6543))
        self.assertEqual(bytes.fromhex(clear.payload["token"])[0], 0x04)
        self.assertAlmostEqual(self.meter.credit_money, 0.0, 3)
        self.assertEqual(self.meter.tenant_id, self.next_tenant)
        # the books: nothing left owed to the tenant; the sales hold no credit any more
        self.assertAlmostEqual(self._balance(self.liability, self.tenant), 0.0, 2)
        self.assertEqual((first.money_remaining, second.money_remaining), (0.0, 0.0))
        # a later recognition run takes nothing more from the settled sales
        self.assertFalse(
            prepayment.money_fifo(self.env, self.company, self.meter, 1.0, tenant=self.tenant)[0]
        )
        # the tenant's statement: the settlement in the currency
        today = fields.Date.context_today(self.env.user)
        st = statement.tenant_statement(self.env, self.tenant, date(2026, 2, 1), today)
        [line] = [x for x in st["meters"][0]["lines"] if x["kind"] == "settlement"]
        self.assertEqual((line["kwh"], line["value"], line["amount"]), (0.0, -6.54, -6.54))
        self.assertIn("6.543", line["label"])
        self.assertIn(note.name, line["document"])

    def test_statement_values_money_consumption_per_band_and_closes_at_zero(self):
        """10.00 of money credit; the meter charges 20 kWh off-peak (0.10: 2.00) one day
        and 5 kWh at peak (0.40: 2.00) the next, a standing charge takes 0.50, the tenant
        moves out with 5.50 refunded: each band's consumption is a line at its price, and
        the statement's running balance closes at 0.00."""
        from ..services import standing_charge, tou

        self.tou.write({"standing_charge_amount": 0.5, "standing_charge_collection": "odoo"})
        now = fields.Datetime.now().replace(microsecond=0)
        engine.as_engine(
            self.env["smartpm.meter.assignment"].search(
                [("meter_id", "=", self.meter.id), ("tenant_id", "=", self.tenant.id)]
            )
        ).date_start = now - timedelta(days=5)
        sale = self._money_sale(10.0, "MM-ST", now - timedelta(days=4))
        engine.as_engine(sale).date = now - timedelta(days=4, hours=1)
        registers = [  # (time, Wh off-peak, Wh peak): the tenant found 1000 and 500 Wh
            (now - timedelta(days=6), 1000, 500),
            (now - timedelta(days=4), 1000, 500),
            (now - timedelta(days=3), 21000, 500),
            (now - timedelta(days=2), 21000, 5500),
        ]
        self.env["smartpm.reading"].sudo().create(
            [
                {
                    "meter_id": self.meter.id,
                    "obis": tou.ENERGY_RATE_OBIS % rate,
                    "reading_time": when,
                    "value": wh,
                }
                for when, off, peak in registers
                for rate, wh in ((1, off), (2, peak))
            ]
        )
        engine.as_engine(self.meter).credit_money = 6.0  # what the meter charged: 4.00
        charges = standing_charge.collect_due(self.env, self.company)["queued"]
        self._run_jobs()
        self.assertEqual(charges.mapped("state"), ["collected"])
        self.assertAlmostEqual(self.meter.credit_money, 5.5, 3)
        move_out = self._move_out("refund", next_tenant_id=self.next_tenant)
        self._run_jobs()
        self.assertEqual(move_out.state, "done", move_out.blocked_reason)
        self.assertEqual(move_out.settlement_id.amount, 5.5)

        today = fields.Date.context_today(self.env.user)
        st = statement.tenant_statement(
            self.env, self.tenant, today - timedelta(days=10), today, meter=self.meter
        )
        self.assertTrue(statement.is_balanced(st))
        [section] = st["meters"]
        bands = [
            (x["band"], x["energy_kwh"], x["price_per_kwh"], x["value"])
            for x in section["lines"]
            if x["kind"] == "consumption"
        ]
        self.assertEqual(bands, [("Off-peak", 20.0, 0.1, -2.0), ("Peak", 5.0, 0.4, -2.0)])
        kinds = [(x["kind"], x["value"]) for x in section["lines"]]
        self.assertIn(("purchase", 10.0), kinds)
        self.assertIn(("standing_charge", -0.5), kinds)
        self.assertIn(("settlement", -5.5), kinds)
        self.assertEqual(section["closing_value"], 0.0)
        self.assertEqual(section["lines"][-1]["balance_value"], 0.0)
        # the running balance never goes below zero: the sale came first
        self.assertEqual(min(x["balance_value"] for x in section["lines"]), 0.0)
        # the band table of the section counts the same energy
        self.assertEqual(
            [(b["name"], b["kwh"]) for b in section["bands"]], [("Off-peak", 20.0), ("Peak", 5.0)]
        )
        self.assertEqual(st["closing_value"], 0.0)
        self.assertEqual(sale.money_remaining, 0.0)
        # the PDF prints each band's energy
        html = (
            self.env["ir.actions.report"]
            ._render_qweb_html(
                "smartpm_prepay.report_tenant_statement",
                self.tenant.ids,
                data={"date_from": str(today - timedelta(days=10)), "date_to": str(today)},
            )[0]
            .decode()
        )
        self.assertIn("Consumption at Peak", html)
        self.assertIn("5.000 kWh", html)

    def test_forfeit_moves_the_money_left_to_forfeited_credit_income(self):
        self._two_money_sales(15.0)  # nothing consumed
        move_out = self._move_out("forfeit")
        self._run_jobs()
        self.assertEqual(move_out.state, "done", move_out.blocked_reason)
        done = move_out.settlement_id
        self.assertFalse(done.recognition_move_id)
        self.assertEqual((done.amount, done.amount_total), (15.0, 15.0))
        entry = done.move_id
        self.assertEqual(entry.state, "posted")
        debit = entry.line_ids.filtered(lambda ln: ln.account_id == self.liability)
        credit = entry.line_ids.filtered(lambda ln: ln.account_id == self.forfeit_account)
        self.assertEqual((debit.debit, credit.credit), (15.0, 15.0))
        self.assertAlmostEqual(self._balance(self.liability, self.tenant), 0.0, 2)
        self.assertEqual(move_out.clear_job_id.payload["money_units"], 15000)

    def test_credit_beyond_the_sales_is_cleared_without_value(self):
        self._two_money_sales(16.25)  # 1.25 on the meter that no sale covers
        move_out = self._move_out("refund")
        self._run_jobs()
        done = move_out.settlement_id
        self.assertAlmostEqual(done.money_uncovered, 1.25, 3)
        self.assertEqual(done.amount_total, 15.0)
        self.assertEqual(move_out.clear_job_id.payload["money_units"], 16250)

    def test_a_transfer_from_a_money_meter_is_refused_naming_both_meters(self):
        self._two_money_sales(6.0)
        other = self._meter("MO-OTHER", self.tenant, self.tariff)
        jobs_before = self.meter.job_ids
        with self.assertRaises(UserError) as err:
            self._move_out("transfer", transfer_meter_id=other)
        message = str(err.exception)
        self.assertIn(self.meter.serial_number, message)
        self.assertIn("MO-OTHER", message)
        self.assertIn("credit in money", message)
        self.assertFalse(self.env["smartpm.move.out"].search([("meter_id", "=", self.meter.id)]))
        self.assertFalse(
            (self.meter.job_ids - jobs_before).filtered(lambda j: j.job_type == "disconnect")
        )

    def test_a_replacement_of_a_money_meter_is_refused_naming_both_meters(self):
        self._two_money_sales(6.0)
        new = self.env["smartpm.meter"].create(
            {
                "serial_number": "MO-NEW-KWH",
                "host": "127.0.0.1",
                "port": 4101,
                "company_id": self.company.id,
            }
        )
        wizard = self.env(user=self.manager)["smartpm.meter.replacement.wizard"].create(
            {"old_meter_id": self.meter.id, "new_meter_id": new.id}
        )
        with self.assertRaises(UserError) as err:
            wizard.action_confirm()
        message = str(err.exception)
        self.assertIn(self.meter.serial_number, message)
        self.assertIn("MO-NEW-KWH", message)
        self.assertFalse(self.env["smartpm.move.out"].search([("meter_id", "=", self.meter.id)]))
        self.assertEqual(self.meter.state, "active")

    def test_a_reading_by_hand_of_a_money_meter_is_in_money(self):
        self._two_money_sales(9.0)
        move_out = self._move_out("forfeit")
        self._run_jobs(fail_types=("read", "disconnect"))
        self.assertEqual(move_out.state, "blocked")
        action = move_out.with_user(self.manager).action_record_reading()
        self.assertEqual(action["context"]["default_credit_money"], 9.0)
        wizard = (
            self.env(user=self.manager)[action["res_model"]]
            .with_context(**action["context"])
            .create({"credit_money": 4.5, "energy_kwh": 12.0, "reason": "Display read on site"})
        )
        wizard.action_confirm()
        self.assertAlmostEqual(move_out.final_credit_money, 4.5, 3)
        self.assertEqual(move_out.final_credit_kwh, 0.0)
        audit = move_out.message_ids.filtered(lambda m: "Display read on site" in m.body)
        self.assertIn("4.500", audit.body)
        self.assertNotIn("credit 4.5 kWh", audit.body)
        manual = self.env["smartpm.reading"].search(
            [
                ("meter_id", "=", self.meter.id),
                ("source", "=", "final_manual"),
                ("obis", "=", OBIS_CREDIT),
            ]
        )
        self.assertEqual(manual.value, 4.5)
        # 10.50 consumed (the first sale's 10.00, 0.50 of the second), 4.50 forfeited
        self.assertEqual(move_out.settlement_id.amount, 4.5)
        self.assertAlmostEqual(move_out.settlement_id.recognition_move_id.amount_total, 10.5, 2)
        self.assertEqual(move_out.clear_job_id.payload["money_units"], 4500)
