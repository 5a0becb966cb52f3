from datetime import date

from freezegun import freeze_time

from odoo.addons.account.tests.common import AccountTestInvoicingCommon
from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged

from ..services import daily_vending, engine, local_time, refunds
from ..services import debt as debt_service
from ..services.vending import vend
from .common import SmartpmCase, assert_refunded_books
from .test_pos import SmartpmPosCase


class DebtCase(AccountTestInvoicingCommon):
    """A tenant with a meter on a flat tariff (0.50 per kWh, no tax) in a company with a
    chart of accounts; debts are confirmed, so they are invoices on the tenant's receivable."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company = cls.company_data["company"]
        cls.env.user.groups_id += cls.env.ref("smartpm_prepay.group_manager")
        cls.company.write({"smartpm_min_amount": 1.0, "smartpm_max_amount": 1000.0})
        cls.tariff = cls.env["smartpm.tariff"].create({"name": "Flat", "price_per_kwh": 0.5})
        cls.tenant = cls.env["res.partner"].create({"name": "Debtor", "is_tenant": True})
        cls.meter = cls.env["smartpm.meter"].create(
            {
                "serial_number": "DEBT-1",
                "host": "127.0.0.1",
                "port": 4100,
                "state": "active",
                "tenant_id": cls.tenant.id,
                "tariff_id": cls.tariff.id,
            }
        )
        cls.cash = cls.company_data["default_journal_cash"]
        cls.currency = cls.company.currency_id

    def _debt(self, amount=100.0, confirm=True, **vals):
        debt = self.env["smartpm.tenant.debt"].create(
            {
                "tenant_id": self.tenant.id,
                "company_id": self.company.id,
                "description": vals.pop("description", "Arrears"),
                "amount": amount,
                **vals,
            }
        )
        if confirm:
            debt.action_confirm()
        return debt

    def _sell(self, amount, ref, channel="backoffice", invoice=True):
        purchase = vend(self.env, self.meter, amount, channel, ref)
        if invoice:
            purchase._create_invoice_and_payment(self.cash)
        return purchase


@tagged("post_install", "-at_install")
class TestDebtRule(DebtCase):
    def test_percent_rule_is_bounded_by_minimum_and_maximum(self):
        rule = debt_service.rule_amount
        kw = {"percent": 10.0, "minimum": 2.0, "maximum": 5.0}
        self.assertEqual(rule("percent", 30.0, 100.0, 29.0, 0.01, **kw), 3.0)
        self.assertEqual(rule("percent", 10.0, 100.0, 9.0, 0.01, **kw), 2.0)  # minimum
        self.assertEqual(rule("percent", 200.0, 100.0, 199.0, 0.01, **kw), 5.0)  # maximum
        self.assertEqual(rule("percent", 33.33, 100.0, 32.0, 0.01, percent=10.0), 3.33)

    def test_fixed_rule_never_takes_more_than_the_balance_or_the_purchase(self):
        rule = debt_service.rule_amount
        self.assertEqual(rule("fixed", 50.0, 100.0, 49.0, 0.01, fixed=15.0), 15.0)
        self.assertEqual(rule("fixed", 50.0, 4.2, 49.0, 0.01, fixed=15.0), 4.2)
        self.assertEqual(rule("fixed", 10.0, 100.0, 9.0, 0.01, fixed=15.0), 9.0)

    def test_purchase_pays_the_debt_first_and_the_rest_buys_kwh(self):
        debt = self._debt(100.0, recovery_percent=20.0)
        purchase = self._sell(50.0, "P1")
        self.assertEqual(purchase.amount, 50.0)
        self.assertEqual(purchase.debt_recovered, 10.0)
        self.assertEqual(purchase.credit_amount, 40.0)
        self.assertEqual(purchase.kwh, 80.0)  # 40 / 0.50
        self.assertEqual(purchase.debt_balance_after, 90.0)
        self.assertEqual(debt.balance, 90.0)
        self.assertEqual(purchase.recovery_ids.debt_id, debt)
        receipt = purchase._receipt()
        self.assertEqual(
            (receipt["amount"], receipt["debt_recovered"], receipt["debt_balance"]),
            (50.0, 10.0, 90.0),
        )
        self.assertEqual((receipt["credit_amount"], receipt["kwh"]), (40.0, 80.0))

    def test_the_last_purchase_takes_only_the_balance_left_and_the_debt_is_paid(self):
        debt = self._debt(25.0, recovery_rule="fixed", recovery_fixed=10.0)
        taken = [self._sell(30.0, f"F{i}").debt_recovered for i in range(4)]
        self.assertEqual(taken, [10.0, 10.0, 5.0, 0.0])
        self.assertEqual(debt.balance, 0.0)
        self.assertEqual(debt.state, "paid")
        self.assertEqual(debt.invoice_id.payment_state, "paid")

    def test_a_purchase_smaller_than_the_rule_keeps_the_minimum_sale_for_credit(self):
        self._debt(100.0, recovery_rule="fixed", recovery_fixed=15.0)
        purchase = self._sell(5.0, "SMALL")
        # the company's minimum sale (1.00) still buys energy
        self.assertEqual((purchase.debt_recovered, purchase.credit_amount), (4.0, 1.0))
        self.assertEqual(purchase.kwh, 2.0)

    def test_several_debts_are_recovered_oldest_first(self):
        new = self._debt(
            50.0,
            description="Fee",
            kind="fee",
            date="2026-02-01",
            recovery_rule="fixed",
            recovery_fixed=30.0,
        )
        old = self._debt(
            20.0,
            description="Old arrears",
            date="2026-01-01",
            recovery_rule="fixed",
            recovery_fixed=30.0,
        )
        purchase = self._sell(40.0, "TWO")
        # the old debt's rule takes its whole balance (20), the newer one what is left
        # beyond the minimum sale (40 - 20 - 1 = 19)
        self.assertEqual(old.balance, 0.0)
        self.assertEqual(new.balance, 31.0)
        self.assertEqual(purchase.debt_recovered, 39.0)
        self.assertEqual(purchase.credit_amount, 1.0)
        self.assertEqual(old.invoice_id.payment_state, "paid")
        self.assertEqual(new.invoice_id.amount_residual, 31.0)

    def test_debt_recovered_to_exactly_zero_over_odd_purchases(self):
        debt = self._debt(10.0, recovery_percent=33.0)
        amounts = [7.77, 3.33, 9.99, 11.11, 5.55, 8.88]
        for i, amount in enumerate(amounts):
            self._sell(amount, f"ODD{i}")
            if debt.state == "paid":
                break
        self.assertEqual(debt.balance, 0.0)
        self.assertEqual(sum(debt.recovery_ids.mapped("amount")), 10.0)
        self.assertTrue(self.currency.is_zero(debt.invoice_id.amount_residual))

    def test_repeated_request_recovers_once(self):
        debt = self._debt(100.0, recovery_percent=20.0)
        first = self._sell(50.0, "SAME", invoice=False)
        again = vend(self.env, self.meter, 50.0, "backoffice", "SAME")
        self.assertEqual(again, first)
        self.assertEqual(len(debt.recovery_ids), 1)
        self.assertEqual(debt.balance, 90.0)

    def test_zero_or_no_debt_leaves_the_sale_as_it_was(self):
        purchase = self._sell(10.0, "NODEBT")
        self.assertEqual((purchase.debt_recovered, purchase.credit_amount), (0.0, 10.0))
        self.assertEqual(purchase.kwh, 20.0)
        self.assertFalse(debt_service.plan(self.env, self.meter, self.tariff, 0.0))

    def test_draft_and_cancelled_debts_are_not_recovered(self):
        self._debt(100.0, confirm=False)
        cancelled = self._debt(40.0)
        cancelled.action_cancel()
        self.assertEqual(cancelled.state, "cancelled")
        self.assertEqual(cancelled.credit_note_id.amount_total, 40.0)
        self.assertEqual(cancelled.invoice_id.payment_state, "reversed")
        self.assertEqual(self._sell(10.0, "NONE").debt_recovered, 0.0)

    def test_sell_credit_wizard_shows_the_split_and_books_it(self):
        from odoo.tests import Form

        debt = self._debt(100.0, recovery_percent=10.0)
        wizard = Form(
            self.env["smartpm.sell.credit.wizard"].with_context(default_meter_id=self.meter.id)
        )
        wizard.amount = 30.0
        wizard.journal_id = self.cash
        self.assertEqual((wizard.debt_recovered, wizard.debt_balance), (3.0, 97.0))
        self.assertEqual((wizard.credit_amount, wizard.kwh), (27.0, 54.0))
        action = wizard.save().action_confirm()
        purchase = self.env["smartpm.credit.purchase"].browse(action["res_id"])
        self.assertEqual((purchase.debt_recovered, purchase.kwh), (3.0, 54.0))
        self.assertEqual(purchase.invoice_id.amount_total, 27.0)
        self.assertEqual(debt.invoice_id.amount_residual, 97.0)

    def test_quote_shows_the_split_before_the_sale(self):
        self._debt(100.0, recovery_percent=20.0)
        quote = self.env["smartpm.credit.purchase"].quote(self.meter.id, 50.0)
        self.assertEqual((quote["debt_recovered"], quote["credit_amount"]), (10.0, 40.0))
        self.assertEqual((quote["kwh"], quote["debt_balance"]), (80.0, 90.0))


@tagged("post_install", "-at_install")
class TestDebtAccounting(DebtCase):
    def _tenant_balance(self, account):
        lines = self.env["account.move.line"].search(
            [
                ("account_id", "=", account.id),
                ("partner_id", "=", self.tenant.id),
                ("parent_state", "=", "posted"),
            ]
        )
        return sum(lines.mapped("balance"))

    def test_confirmed_debt_is_a_receivable_against_the_debt_account(self):
        income = self.company_data["default_account_revenue"]
        self.company.smartpm_debt_account_id = income
        debt = self._debt(100.0)
        invoice = debt.invoice_id
        self.assertEqual(invoice.state, "posted")
        self.assertEqual(invoice.partner_id, self.tenant)
        self.assertEqual(invoice.amount_total, 100.0)
        self.assertEqual(invoice.invoice_line_ids.account_id, income)
        self.assertEqual(debt.state, "active")
        self.assertTrue(debt.name.startswith("DEBT"))

    def test_recovered_part_settles_the_receivable_and_the_liability_gets_the_credit(self):
        debt = self._debt(100.0, recovery_percent=20.0)
        liability = self.company.smartpm_prepayment_account_id
        receivable = self.tenant.with_company(self.company).property_account_receivable_id
        purchase = self._sell(50.0, "ACC")
        # the purchase's invoice: the credit part only, on the prepayments liability
        self.assertEqual(purchase.invoice_id.amount_total, 40.0)
        self.assertEqual(self._tenant_balance(liability), -40.0)
        self.assertEqual(purchase.invoice_id.payment_state, "paid")
        # the debt's invoice is paid for 10 by the same payment
        self.assertEqual(debt.invoice_id.amount_residual, 90.0)
        partial = purchase.recovery_ids.partial_reconcile_id
        self.assertEqual(partial.amount, 10.0)
        self.assertEqual(partial.debit_move_id.move_id, debt.invoice_id)
        self.assertEqual(partial.credit_move_id.move_id.origin_payment_id.amount, 50.0)
        # the tenant's receivable: 100 owed, 10 repaid
        self.assertEqual(self._tenant_balance(receivable), 90.0)
        report = self.env["smartpm.credit.balance.report"].search(
            [("tenant_id", "=", self.tenant.id), ("company_id", "=", self.company.id)]
        )
        self.assertEqual((report.remaining_value, report.liability_balance), (40.0, 40.0))
        self.assertEqual(report.difference, 0.0)

    def test_reversal_restores_the_debt_and_reopens_its_invoice(self):
        debt = self._debt(30.0, recovery_rule="fixed", recovery_fixed=30.0)
        purchase = self._sell(50.0, "REV")
        self.assertEqual(debt.state, "paid")
        purchase.action_reverse()
        self.assertEqual(purchase.state, "reversed")
        self.assertEqual(debt.state, "active")
        self.assertEqual(debt.balance, 30.0)
        self.assertEqual(purchase.recovery_ids.state, "reversed")
        self.assertEqual(debt.invoice_id.amount_residual, 30.0)
        # the next purchase recovers it again
        self.assertEqual(self._sell(50.0, "REV2").debt_recovered, 30.0)
        self.assertEqual(debt.balance, 0.0)

    def test_bank_reversal_pays_back_the_debt_recovered_too(self):
        """20.00 paid = 15.00 credit + 5.00 debt: the bank gives back 20.00, matched with the
        15.00 credit note and the 5.00 of the payment the debt's invoice no longer takes."""
        debt = self._debt(30.0, recovery_rule="fixed", recovery_fixed=5.0)
        journal = self.company_data["default_journal_bank"]
        bank = self.env["res.partner"].create(
            {
                "name": "Refund Bank",
                "is_company": True,
                "smartpm_is_bank": True,
                "smartpm_bank_journal_id": journal.id,
            }
        )
        purchase = vend(
            self.env(su=True), self.meter, 20.0, "bank_xmlrpc", "BNK-RF", bank_partner=bank
        )
        purchase._create_invoice_and_payment(journal)
        self.assertEqual((purchase.credit_amount, debt.balance), (15.0, 25.0))
        self.assertEqual(refunds.refund_amount(purchase), 20.0)
        purchase.action_reverse()
        self.assertEqual(purchase.state, "reversed")
        self.assertEqual(debt.balance, 30.0)
        note = purchase.credit_note_id
        self.assertEqual(note.amount_total, 15.0)
        payment = note.matched_payment_ids
        self.assertEqual(
            (payment.payment_type, payment.amount, payment.journal_id, payment.partner_id),
            ("outbound", 20.0, journal, self.tenant),
        )
        assert_refunded_books(self, purchase, debt, payment.move_id)
        # the reversal is not made twice: nothing more is paid out
        refunds.refund_reversed(purchase)
        self.assertEqual(note.matched_payment_ids, payment)

    def test_back_office_reversal_owes_the_whole_amount_back(self):
        """No channel pays the back office's tenant back: the credit note and the rest of
        the payment stay open for the cashier, the whole amount paid."""
        debt = self._debt(30.0, recovery_rule="fixed", recovery_fixed=5.0)
        purchase = self._sell(20.0, "BO-RF")
        purchase.action_reverse()
        self.assertEqual(debt.balance, 30.0)
        owed = purchase.credit_note_id.amount_residual - sum(
            refunds.sale_payment_lines(purchase).mapped("amount_residual")
        )
        self.assertAlmostEqual(owed, 20.0)
        self.assertEqual(refunds.refund_amount(purchase), owed)
        report = daily_vending.daily_vending(
            self.env, self.company, local_time.local_today(self.company), "backoffice", None
        )
        self.assertAlmostEqual(report["total"]["reversal_amount"], owed)

    def test_bank_channel_books_the_split_like_the_back_office(self):
        debt = self._debt(100.0, recovery_percent=10.0)
        bank_journal = self.company_data["default_journal_bank"]
        purchase = vend(self.env(su=True), self.meter, 80.0, "bank_xmlrpc", "BNK-DEBT")
        purchase._create_invoice_and_payment(bank_journal)
        self.assertEqual(purchase.invoice_id.amount_total, 72.0)
        self.assertEqual(debt.invoice_id.amount_residual, 92.0)


@tagged("post_install", "-at_install")
class TestDebtAccess(DebtCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cashier = new_test_user(
            cls.env,
            "t_debt_cashier",
            groups="smartpm_prepay.group_cashier",
            company_id=cls.company.id,
        )
        cls.manager = new_test_user(
            cls.env,
            "t_debt_manager",
            groups="smartpm_prepay.group_manager,account.group_account_invoice",
            company_id=cls.company.id,
        )
        cls.bank_user = new_test_user(
            cls.env,
            "t_debt_bank",
            groups="smartpm_prepay.group_bank_api",
            company_id=cls.company.id,
        )
        cls.portal_user = new_test_user(
            cls.env,
            "t_debt_portal",
            groups="base.group_portal",
            company_id=cls.company.id,
            partner_id=cls.tenant.id,
        )
        other = cls.env["res.partner"].create({"name": "Other tenant", "is_tenant": True})
        cls.other_debt = cls.env["smartpm.tenant.debt"].create(
            {"tenant_id": other.id, "company_id": cls.company.id, "description": "X", "amount": 9.0}
        )
        cls.other_debt.action_confirm()

    def _snapshot(self, debt):
        debt.invalidate_recordset()
        return (
            debt.balance,
            debt.amount_recovered,
            debt.state,
            len(debt.recovery_ids),
            debt.recovery_ids.mapped("amount"),
            debt.recovery_ids.mapped("state"),
        )

    def test_manager_enters_and_confirms_a_debt(self):
        debt = (
            self.env["smartpm.tenant.debt"]
            .with_user(self.manager)
            .create(
                {
                    "tenant_id": self.tenant.id,
                    "description": "Damaged meter box",
                    "kind": "damage",
                    "amount": 12.5,
                    "company_id": self.company.id,
                }
            )
        )
        debt.action_confirm()
        self.assertEqual(debt.state, "active")
        self.assertEqual(self.tenant.with_company(self.company).smartpm_debt_balance, 12.5)

    def test_nobody_writes_a_balance_or_recovery_lines_over_rpc(self):
        debt = self._debt(100.0, recovery_percent=20.0)
        self._sell(50.0, "ATK")
        before = self._snapshot(debt)
        recovery = debt.recovery_ids
        attempts = [
            (self.manager, lambda d: d.write({"balance": 0.0})),
            (self.manager, lambda d: d.write({"amount_recovered": 100.0})),
            (self.manager, lambda d: d.write({"state": "paid"})),
            (self.manager, lambda d: d.write({"amount": 10.0})),
            (self.manager, lambda d: d.recovery_ids.write({"amount": 100.0})),
            (self.manager, lambda d: d.recovery_ids.write({"state": "reversed"})),
            (self.manager, lambda d: d.recovery_ids.unlink()),
            (
                self.manager,
                lambda d: d.env["smartpm.debt.recovery"].create(
                    {
                        "debt_id": d.id,
                        "purchase_id": recovery.purchase_id.id,
                        "company_id": self.company.id,
                        "amount": 90.0,
                    }
                ),
            ),
            (self.env.user, lambda d: d.write({"balance": 0.0})),
            (self.cashier, lambda d: d.write({"description": "changed"})),
            (self.cashier, lambda d: d.action_cancel()),
            (self.cashier, lambda d: d.recovery_ids.write({"amount": 1.0})),
            (self.portal_user, lambda d: d.write({"balance": 0.0})),
            (self.portal_user, lambda d: d.action_cancel()),
            (self.portal_user, lambda d: d.recovery_ids.write({"amount": 1.0})),
            (self.bank_user, lambda d: d.read(["balance"])),
            (self.bank_user, lambda d: d.write({"balance": 0.0})),
        ]
        for user, attempt in attempts:
            with self.subTest(user=user.login), self.assertRaises(UserError):
                with self.env.cr.savepoint():
                    attempt(debt.with_user(user))
        self.assertEqual(self._snapshot(debt), before)
        self.assertEqual(debt.invoice_id.amount_residual, 90.0)

    def test_engine_writes_with_a_forged_context_key_are_refused(self):
        debt = self._debt(100.0)
        with self.assertRaises(AccessError):
            debt.with_context(smartpm_engine=True).write({"balance": 0.0})
        self.assertEqual(debt.balance, 100.0)

    def test_portal_tenant_reads_own_confirmed_debts_only(self):
        own = self._debt(10.0)
        draft = self._debt(5.0, confirm=False)
        Debt = self.env["smartpm.tenant.debt"].with_user(self.portal_user)
        self.assertEqual(Debt.search([]), own)
        self.assertNotIn(draft, Debt.search([]))
        with self.assertRaises(AccessError):
            self.other_debt.with_user(self.portal_user).read(["balance"])

    def test_cashier_reads_debts_and_the_bank_sees_none(self):
        debt = self._debt(10.0)
        self.assertEqual(debt.with_user(self.cashier).balance, 10.0)
        with self.assertRaises(AccessError):
            self.env["smartpm.tenant.debt"].with_user(self.bank_user).search([])
        with self.assertRaises(AccessError):
            self.env["smartpm.debt.recovery"].with_user(self.bank_user).search([])

    def test_confirmed_debt_amount_is_fixed(self):
        debt = self._debt(10.0)
        with self.assertRaises(UserError):
            debt.write({"amount": 1.0})
        debt.write({"recovery_percent": 50.0})  # the rule may change
        self.assertEqual((debt.amount, debt.recovery_percent), (10.0, 50.0))


@tagged("post_install", "-at_install")
class TestDebtPos(DebtCase):
    def test_engine_marks_the_settlement_entry_of_a_pos_sale(self):
        """A POS sale books its whole line on the liability when the session closes: the
        recovered part is moved to the receivable at the sale and matched with the debt."""
        debt = self._debt(100.0, recovery_percent=20.0)
        purchase = vend(self.env, self.meter, 50.0, "pos", "POS-DEBT-1")
        debt_service.settle_pos(purchase)
        move = purchase.recovery_ids.move_id
        self.assertEqual(move.state, "posted")
        liability = self.company.smartpm_prepayment_account_id
        self.assertEqual(
            sum(move.line_ids.filtered(lambda line: line.account_id == liability).mapped("debit")),
            10.0,
        )
        self.assertEqual(debt.invoice_id.amount_residual, 90.0)
        # reversal: the entry is reversed and the debt owed again
        purchase.action_reverse()
        self.assertEqual(debt.balance, 100.0)
        self.assertEqual(debt.invoice_id.amount_residual, 100.0)
        self.assertTrue(move.reversal_move_ids)


@tagged("post_install", "-at_install")
class TestDebtConcurrency(SmartpmCase):
    """Two purchases of one tenant at once (two meters, two transactions) on one debt."""

    def _cleanup(self, ids):
        with self.registry.cursor() as cr:
            cr.execute("DELETE FROM smartpm_debt_recovery WHERE debt_id = %s", (ids["debt"],))
            cr.execute("DELETE FROM smartpm_tenant_debt WHERE id = %s", (ids["debt"],))
            for meter_id in ids["meters"]:
                cr.execute("DELETE FROM smartpm_credit_purchase WHERE meter_id = %s", (meter_id,))
                cr.execute("DELETE FROM smartpm_meter_job WHERE meter_id = %s", (meter_id,))
                cr.execute("DELETE FROM smartpm_meter_assignment WHERE meter_id = %s", (meter_id,))
                cr.execute("DELETE FROM smartpm_meter WHERE id = %s", (meter_id,))
            cr.execute("DELETE FROM smartpm_tariff WHERE id = %s", (ids["tariff"],))
            cr.execute("UPDATE res_partner SET active = false WHERE id = %s", (ids["tenant"],))

    def test_two_purchases_at_once_never_recover_more_than_the_balance(self):
        import psycopg2.errors

        from odoo import SUPERUSER_ID, api

        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            tariff = env["smartpm.tariff"].create({"name": "Debt conc", "price_per_kwh": 0.5})
            tenant = env["res.partner"].create({"name": "Debt conc", "is_tenant": True})
            meters = env["smartpm.meter"]
            for serial, port in (("DEBT-CONC-A", 4100), ("DEBT-CONC-B", 4101)):
                meters |= env["smartpm.meter"].create(
                    {
                        "serial_number": serial,
                        "host": "127.0.0.1",
                        "port": port,
                        "state": "active",
                        "tenant_id": tenant.id,
                        "tariff_id": tariff.id,
                    }
                )
            debt = env["smartpm.tenant.debt"].create(
                {
                    "tenant_id": tenant.id,
                    "description": "Concurrent",
                    "amount": 10.0,
                    "recovery_rule": "fixed",
                    "recovery_fixed": 8.0,
                }
            )
            engine.as_engine(debt).state = "active"  # no chart needed: no invoice here
            ids = {
                "tariff": tariff.id,
                "tenant": tenant.id,
                "meters": meters.ids,
                "debt": debt.id,
            }
        try:
            with self.registry.cursor() as cr1, self.registry.cursor() as cr2:
                env1 = api.Environment(cr1, SUPERUSER_ID, {})
                env2 = api.Environment(cr2, SUPERUSER_ID, {})
                Meter1, Meter2 = env1["smartpm.meter"], env2["smartpm.meter"]
                first = vend(env1, Meter1.browse(ids["meters"][0]), 20.0, "bank_soap", "DC-1")
                self.assertEqual(first.sudo().debt_recovered, 8.0)
                cr2.execute("SET LOCAL lock_timeout = '500ms'")
                # the second purchase waits for the first one's locks instead of recovering
                # from the balance it has not committed yet
                with self.assertRaises(psycopg2.errors.LockNotAvailable):
                    vend(env2, Meter2.browse(ids["meters"][1]), 20.0, "bank_soap", "DC-2")
                cr2.rollback()
                cr1.commit()
                # Odoo retries the request: it recovers only what is left
                second = vend(env2, Meter2.browse(ids["meters"][1]), 20.0, "bank_soap", "DC-2")
                self.assertEqual(second.sudo().debt_recovered, 2.0)
                cr2.commit()
            with self.registry.cursor() as cr:
                cr.execute(
                    "SELECT SUM(amount) FROM smartpm_debt_recovery WHERE debt_id = %s",
                    (ids["debt"],),
                )
                self.assertEqual(cr.fetchone()[0], 10.0)
                cr.execute(
                    "SELECT balance, state FROM smartpm_tenant_debt WHERE id = %s", (ids["debt"],)
                )
                self.assertEqual(cr.fetchone(), (0.0, "paid"))
        finally:
            self._cleanup(ids)

    def test_the_database_refuses_a_balance_below_zero(self):
        import psycopg2.errors

        tenant = self._tenant("Debt check")
        debt = self.env["smartpm.tenant.debt"].create(
            {"tenant_id": tenant.id, "description": "Check", "amount": 5.0}
        )
        with self.assertRaises(psycopg2.errors.CheckViolation), self.env.cr.savepoint():
            self.env.cr.execute(
                "UPDATE smartpm_tenant_debt SET balance = -0.01 WHERE id = %s", (debt.id,)
            )


@tagged("post_install", "-at_install")
class TestDebtCompanyDay(DebtCase):
    """The entries of a debt's cancellation, of a reversed sale's recovery and of a bank's
    refund are dated on the company's local day (UTC+14 here: at 12:00 UTC its day is
    already the next one), whatever the time zone of the user acting."""

    NOON_UTC = "2026-03-02 12:00:00"
    COMPANY_DAY = date(2026, 3, 3)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company.partner_id.tz = "Pacific/Kiritimati"
        cls.env.user.tz = "UTC"

    def test_a_cancelled_debts_credit_note_is_dated_the_companys_day(self):
        with freeze_time(self.NOON_UTC):
            debt = self._debt(40.0)
            debt.action_cancel()
        self.assertEqual(debt.state, "cancelled")
        self.assertEqual(debt.credit_note_id.invoice_date, self.COMPANY_DAY)
        self.assertEqual(debt.credit_note_id.date, self.COMPANY_DAY)

    def test_the_reversal_of_a_pos_recovery_is_dated_the_companys_day(self):
        with freeze_time(self.NOON_UTC):
            debt = self._debt(100.0, recovery_percent=20.0)
            purchase = vend(self.env, self.meter, 50.0, "pos", "POS-DAY-1")
            debt_service.settle_pos(purchase)
            move = purchase.recovery_ids.move_id
            purchase.action_reverse()
        self.assertEqual(debt.balance, 100.0)
        self.assertEqual(move.date, self.COMPANY_DAY)
        # never dated before the entry it reverses
        self.assertEqual(move.reversal_move_ids.date, self.COMPANY_DAY)

    def test_a_bank_refund_is_paid_on_its_credit_notes_day(self):
        journal = self.company_data["default_journal_bank"]
        bank = self.env["res.partner"].create(
            {
                "name": "Day Bank",
                "is_company": True,
                "smartpm_is_bank": True,
                "smartpm_bank_journal_id": journal.id,
            }
        )
        with freeze_time("2026-03-02 09:59:00"):  # 23:59 on the company's 2 March
            purchase = vend(
                self.env(su=True), self.meter, 30.0, "bank_xmlrpc", "BNK-DAY", bank_partner=bank
            )
            purchase._create_invoice_and_payment(journal)
            note = purchase._create_credit_note()
            engine.as_engine(purchase).write({"credit_note_id": note.id})
        with freeze_time("2026-03-02 10:01:00"):  # the refund a minute later: 3 March
            refunds.refund_reversed(purchase)
        self.assertEqual(note.invoice_date, date(2026, 3, 2))
        self.assertIn(note.payment_state, ("paid", "in_payment"))
        payment = note.matched_payment_ids
        self.assertEqual(len(payment), 1)
        self.assertEqual(payment.date, note.invoice_date)
        self.assertEqual(payment.amount, 30.0)


@tagged("post_install", "-at_install")
class TestDebtPosOrder(SmartpmPosCase):
    def test_pos_sale_recovers_the_debt_and_the_liability_keeps_the_credit_part(self):
        company = self.company
        liability = company.smartpm_prepayment_account_id
        su = self.env(su=True)
        debt = su["smartpm.tenant.debt"].create(
            {
                "tenant_id": self.tenant.id,
                "company_id": company.id,
                "description": "Arrears",
                "amount": 6.0,
                "recovery_percent": 50.0,
                "recovery_max": 4.0,
            }
        )
        debt.action_confirm()
        order = self._sync(self._order_data([(self.meter, 10.0)]))
        purchase = self._purchases()
        self.assertEqual((purchase.amount, purchase.debt_recovered), (10.0, 4.0))
        self.assertEqual((purchase.credit_amount, purchase.kwh), (6.0, 12.0))
        status = self.env["pos.order"].smartpm_credit_status(order.id)[0]
        self.assertEqual(
            (status["debt_recovered"], status["debt_balance"], status["credit_amount"]),
            (4.0, 2.0, 6.0),
        )
        self.assertEqual(debt.invoice_id.amount_residual, 2.0)
        session = self.pos_session
        session.post_closing_cash_details(10.0)
        session.close_session_from_ui()
        lines = su["account.move.line"].search(
            [("account_id", "=", liability.id), ("parent_state", "=", "posted")]
        )
        # the session credits 10, the settlement entry debits the 4 recovered
        self.assertAlmostEqual(-sum(lines.mapped("balance")), 6.0)
        self.assertAlmostEqual(purchase.amount_untaxed, 6.0)
