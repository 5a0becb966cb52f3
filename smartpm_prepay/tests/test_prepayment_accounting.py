"""Issue 16 §1: credit sold is a customer prepayment until consumed, then energy sales."""

from datetime import date, datetime, timedelta

from odoo import fields
from odoo.addons.account.tests.common import AccountTestInvoicingCommon
from odoo.exceptions import AccessError
from odoo.tests import Form, new_test_user, tagged

from ..services import bank_api, engine, prepayment
from ..services.vending import vend
from .test_pos import SmartpmPosCase

BANK_TIME = "2026-03-01T10:00:00Z"
# consumption of March 2026 (company in UTC): the job runs on April 1st
MONTH = [date(2026, 3, 1) + timedelta(days=i) for i in range(31)]
RUN_DAY = date(2026, 4, 1)


class PrepaymentCase(AccountTestInvoicingCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company = cls.company_data["company"]
        cls.company_data_2 = cls.setup_other_company()  # its chart loads: its own accounts
        cls.env.user.groups_id += cls.env.ref("smartpm_prepay.group_manager")
        cls.company.write({"smartpm_min_amount": 1.0, "smartpm_max_amount": 1000.0})
        cls.liability = cls.company.smartpm_prepayment_account_id
        cls.energy = cls.company.smartpm_energy_income_account_id
        cls.tariff = cls.env["smartpm.tariff"].create({"name": "Flat", "price_per_kwh": 0.25})
        cls.dear = cls.env["smartpm.tariff"].create({"name": "Dear", "price_per_kwh": 0.30})
        cls.tenant = cls.env["res.partner"].create({"name": "Esi Prepay", "is_tenant": True})
        cls.tenant_b = cls.env["res.partner"].create({"name": "Kofi Prepay", "is_tenant": True})
        cls.meter = cls._meter("PRE-1", cls.tenant, cls.tariff)
        cls.meter_b = cls._meter("PRE-2", cls.tenant_b, cls.tariff)
        cls.cash = cls.company_data["default_journal_cash"]

    @classmethod
    def _meter(cls, serial, tenant, tariff, company=None):
        return cls.env["smartpm.meter"].create(
            {
                "serial_number": serial,
                "host": "127.0.0.1",
                "port": 4100,
                "state": "active",
                "tenant_id": tenant.id,
                "tariff_id": tariff.id,
                "company_id": (company or cls.company).id,
            }
        )

    def _sell(self, meter, amount, ref, delivered_on=date(2026, 2, 28)):
        purchase = vend(self.env, meter, amount, "backoffice", ref)
        purchase._create_invoice_and_payment(self.cash)
        if delivered_on:
            self._deliver(purchase, delivered_on)
        return purchase

    def _deliver(self, purchase, day):
        purchase._on_delivered({})
        engine.as_engine(purchase).write(
            {"date_delivered": datetime.combine(day, datetime.min.time())}
        )

    def _consume(self, meter, days, kwh_per_day, tenant=None):
        self.env["smartpm.consumption.daily"].sudo().create(
            [
                {
                    "meter_id": meter.id,
                    "day": day,
                    "kwh": kwh_per_day,
                    "company_id": meter.company_id.id,
                    "tenant_id": (tenant or meter.tenant_id).id,
                }
                for day in days
            ]
        )

    def _balance(self, account, partner=None):
        domain = [("account_id", "=", account.id), ("parent_state", "=", "posted")]
        if partner is not None:
            domain.append(("partner_id", "=", partner.id))
        return sum(self.env["account.move.line"].search(domain).mapped("balance"))


@tagged("post_install", "-at_install")
class TestPrepaymentSetup(PrepaymentCase):
    def test_company_gets_a_liability_energy_account_and_misc_journal(self):
        self.assertEqual(self.liability.account_type, "liability_current")
        self.assertEqual(self.energy.account_type, "income")
        self.assertEqual(self.company.smartpm_recognition_journal_id.type, "general")
        self.assertEqual(self.liability.company_ids, self.company)

    def test_credit_product_income_account_is_the_liability_per_company(self):
        product = self.env.ref("smartpm_prepay.product_electricity_credit")
        company_2 = self.company_data_2["company"]
        self.assertEqual(
            product.with_company(self.company).property_account_income_id, self.liability
        )
        self.assertEqual(
            product.with_company(company_2).property_account_income_id,
            company_2.smartpm_prepayment_account_id,
        )
        self.assertNotEqual(company_2.smartpm_prepayment_account_id, self.liability)

    def test_setup_is_idempotent(self):
        prepayment.ensure_accounts(self.company)
        self.assertEqual(self.company.smartpm_prepayment_account_id, self.liability)
        count = self.env["account.account"].search_count(
            [("company_ids", "in", self.company.ids), ("name", "=", self.liability.name)]
        )
        self.assertEqual(count, 1)

    def test_recognition_rows_are_written_by_the_job_only(self):
        with self.assertRaises(AccessError):
            self.env["smartpm.credit.recognition"].create(
                {
                    "company_id": self.company.id,
                    "day": RUN_DAY,
                    "meter_id": self.meter.id,
                    "tenant_id": self.tenant.id,
                    "kwh": 1.0,
                }
            )


@tagged("post_install", "-at_install")
class TestSaleEntries(PrepaymentCase):
    def _assert_on_liability(self, purchase):
        lines = purchase.invoice_id.invoice_line_ids
        self.assertEqual(lines.account_id, self.liability, purchase.name)
        self.assertAlmostEqual(-sum(lines.mapped("balance")), purchase.amount_untaxed)
        self.assertFalse(
            purchase.invoice_id.line_ids.filtered(
                lambda ml: ml.account_id.account_type == "income"
            ),
            "credit sold is not revenue yet",
        )

    def test_back_office_sale_credits_the_prepayments(self):
        wizard = Form(
            self.env["smartpm.sell.credit.wizard"].with_context(default_meter_id=self.meter.id)
        )
        wizard.amount = 20.0
        wizard.journal_id = self.cash
        action = wizard.save().action_confirm()
        self._assert_on_liability(self.env["smartpm.credit.purchase"].browse(action["res_id"]))

    def test_taxed_sale_books_the_tax_and_the_untaxed_amount_on_the_prepayments(self):
        vat = self.env["account.tax"].create(
            {
                "name": "VAT 15% incl.",
                "amount": 15.0,
                "type_tax_use": "sale",
                "price_include_override": "tax_included",
                "company_id": self.company.id,
            }
        )
        self.tariff.tax_ids = vat
        purchase = self._sell(self.meter, 115.0, "TAX", delivered_on=None)
        self._assert_on_liability(purchase)
        self.assertAlmostEqual(purchase.amount_untaxed, 100.0)
        tax_lines = purchase.invoice_id.line_ids.filtered("tax_line_id")
        self.assertAlmostEqual(-sum(tax_lines.mapped("balance")), 15.0)

    def _bank_user(self, login):
        bank = self.env["res.partner"].create(
            {
                "name": f"Bank {login}",
                "is_company": True,
                "smartpm_is_bank": True,
                "smartpm_bank_journal_id": self.company_data["default_journal_bank"].id,
            }
        )
        user = new_test_user(
            self.env,
            login,
            groups="base.group_user,smartpm_prepay.group_bank_api",
            company_id=self.company.id,
        )
        user.partner_id.parent_id = bank
        return user

    def test_bank_sales_of_both_protocols_credit_the_prepayments(self):
        user = self._bank_user("bank_prepay")
        for channel, ref in (("bank_soap", "S-1"), ("bank_xmlrpc", "X-1")):
            bank_api.purchase(self.env(user=user), channel, "PRE-1", 20.0, None, ref, BANK_TIME)
            # the posting step after the answer (the cron's: a test never commits)
            self.env["smartpm.credit.purchase"]._cron_post_deferred_sales()
            purchase = self.env["smartpm.credit.purchase"].search(
                [("channel", "=", channel), ("meter_id", "=", self.meter.id)]
            )
            self._assert_on_liability(purchase)

    def test_portal_sale_credits_the_prepayments(self):
        method = self.env.ref("payment_demo.payment_method_demo").sudo()
        method.active = True
        provider = (
            self.env.ref("payment.payment_provider_demo")
            .sudo()
            .copy({"name": "Demo prepay", "company_id": self.company.id})
        )
        provider.write(
            {
                "state": "test",
                "payment_method_ids": [(6, 0, method.ids)],
                "journal_id": self.company_data["default_journal_bank"].id,
            }
        )
        tx = (
            self.env["payment.transaction"]
            .sudo()
            .create(
                {
                    "provider_id": provider.id,
                    "payment_method_id": method.id,
                    "amount": 12.0,
                    "currency_id": self.company.currency_id.id,
                    "partner_id": self.tenant.id,
                    "reference": "CREDIT-PRE-1",
                    "operation": "online_direct",
                    "smartpm_meter_id": self.meter.id,
                }
            )
        )
        tx._set_done()
        tx._post_process()
        self._assert_on_liability(tx.smartpm_purchase_id)

    def test_sale_of_the_second_company_credits_its_own_prepayments(self):
        company_2 = self.company_data_2["company"]
        self.env.user.company_ids += company_2
        env = self.env(context=dict(self.env.context, allowed_company_ids=company_2.ids))
        tariff = env["smartpm.tariff"].create(
            {"name": "C2", "price_per_kwh": 0.5, "company_id": company_2.id}
        )
        tenant = env["res.partner"].create(
            {"name": "C2 Tenant", "is_tenant": True, "company_id": company_2.id}
        )
        meter = self._meter("PRE-C2", tenant, tariff, company_2).with_env(env)
        purchase = vend(env, meter, 10.0, "backoffice", "C2-1")
        purchase._create_invoice_and_payment(self.company_data_2["default_journal_cash"])
        lines = purchase.invoice_id.invoice_line_ids
        self.assertEqual(lines.account_id, company_2.smartpm_prepayment_account_id)


@tagged("post_install", "-at_install")
class TestRevenueRecognition(PrepaymentCase):
    def test_month_of_consumption_is_valued_fifo_at_each_purchase_price(self):
        first = self._sell(self.meter, 20.0, "FIFO-1")  # 80 kWh at 0.25
        self.meter.tariff_id = self.dear
        second = self._sell(self.meter, 30.0, "FIFO-2")  # 100 kWh at 0.30
        self._consume(self.meter, MONTH, 3.0)  # 93 kWh: all of the first, 13 of the second
        move = prepayment.recognise(self.company, today=RUN_DAY)
        self.assertEqual((first.kwh_recognised, first.value_recognised), (80.0, 20.0))
        self.assertAlmostEqual(second.kwh_recognised, 13.0)
        self.assertAlmostEqual(second.value_recognised, 3.90)
        self.assertEqual(move.state, "posted")
        self.assertEqual(move.journal_id, self.company.smartpm_recognition_journal_id)
        self.assertEqual(move.date, date(2026, 3, 31))
        self.assertAlmostEqual(self._balance(self.energy), -23.90)
        self.assertAlmostEqual(self._balance(self.liability, self.tenant), -(50.0 - 23.90))

    def test_running_twice_posts_once(self):
        self._sell(self.meter, 20.0, "TWICE")
        self._consume(self.meter, MONTH[:10], 2.0)
        move = prepayment.recognise(self.company, today=RUN_DAY)
        again = prepayment.recognise(self.company, today=RUN_DAY)
        self.assertTrue(move)
        self.assertFalse(again)
        self.assertAlmostEqual(self._balance(self.energy), -5.0)

    def test_later_run_posts_only_what_was_consumed_since(self):
        purchase = self._sell(self.meter, 20.0, "LATER")
        self._consume(self.meter, MONTH[:10], 2.0)
        prepayment.recognise(self.company, today=MONTH[10])
        self._consume(self.meter, MONTH[10:15], 2.0)
        prepayment.recognise(self.company, today=MONTH[15])
        prepayment.recognise(self.company, today=MONTH[15])
        self.assertAlmostEqual(purchase.kwh_recognised, 30.0)
        self.assertAlmostEqual(self._balance(self.energy), -7.5)
        self.assertEqual(len(purchase.recognition_ids), 2)

    def test_daily_run_leaves_today_for_tomorrow(self):
        purchase = self._sell(self.meter, 20.0, "DAILY")
        self._consume(self.meter, MONTH[:3], 2.0)
        prepayment.recognise(self.company, today=MONTH[2])  # up to the 2nd only
        self.assertAlmostEqual(purchase.kwh_recognised, 4.0)

    def test_monthly_company_recognises_up_to_the_end_of_last_month(self):
        self.company.smartpm_recognition_period = "monthly"
        purchase = self._sell(self.meter, 20.0, "MONTHLY")
        self._consume(self.meter, MONTH[:5], 2.0)
        self._consume(self.meter, [RUN_DAY], 2.0)
        prepayment.recognise(self.company, today=RUN_DAY + timedelta(days=10))
        self.assertAlmostEqual(purchase.kwh_recognised, 10.0)
        self.assertFalse(prepayment.recognise(self.company, today=RUN_DAY + timedelta(days=11)))

    def _sell_repaying(self, kwh_repaid, ref, delivered_on):
        """A 20.00 sale (80 kWh) whose token repaid ``kwh_repaid`` of emergency credit."""
        purchase = self._sell(self.meter, 20.0, ref, delivered_on=delivered_on)
        engine.as_engine(purchase).write({"emergency_repaid_kwh": kwh_repaid})
        return purchase

    def test_emergency_credit_repaid_by_a_sale_is_released_once_daily_runs(self):
        # 5 kWh of emergency credit consumed on 1-2 March, before any sale: counted then
        self._consume(self.meter, MONTH[:2], 2.5)
        prepayment.recognise(self.company, today=MONTH[2])
        purchase = self._sell_repaying(5.0, "EMERG-D", delivered_on=MONTH[2])
        self._consume(self.meter, [MONTH[2]], 2.0)
        prepayment.recognise(self.company, today=MONTH[3])
        prepayment.recognise(self.company, today=MONTH[3])
        # 5 repaid + 2 consumed since: the meter holds 73 kWh, the books owe 73 kWh of it
        self.assertAlmostEqual(purchase.kwh_recognised, 7.0)
        self.assertAlmostEqual(purchase.kwh_remaining, 73.0)
        self.assertAlmostEqual(self._balance(self.energy), -1.75)
        self.assertAlmostEqual(self._balance(self.liability, self.tenant), -18.25)
        self.assertEqual(purchase.recognition_ids.filtered("repayment").kwh, 5.0)

    def test_emergency_credit_repaid_by_a_sale_is_released_once_monthly(self):
        self.company.smartpm_recognition_period = "monthly"
        self._consume(self.meter, MONTH[:2], 2.5)  # emergency credit, before the sale
        purchase = self._sell_repaying(5.0, "EMERG-M", delivered_on=MONTH[2])
        self._consume(self.meter, [MONTH[2]], 2.0)
        prepayment.recognise(self.company, today=RUN_DAY)
        self.assertFalse(prepayment.recognise(self.company, today=RUN_DAY))
        self.assertAlmostEqual(purchase.kwh_recognised, 7.0)
        self.assertAlmostEqual(purchase.kwh_remaining, 73.0)
        self.assertAlmostEqual(self._balance(self.energy), -1.75)
        report = self.env["smartpm.credit.balance.report"].search(
            [("tenant_id", "=", self.tenant.id), ("company_id", "=", self.company.id)]
        )
        self.assertAlmostEqual(report.remaining_kwh, 73.0)
        self.assertAlmostEqual(report.remaining_value, 18.25)
        self.assertAlmostEqual(report.liability_balance, 18.25)

    def test_negative_credit_of_a_friendly_period_repaid_by_a_sale_is_released_once(self):
        # credit ran out in a friendly period: 4 kWh used below zero before any sale
        self._consume(self.meter, MONTH[:2], 2.0)
        prepayment.recognise(self.company, today=MONTH[2])
        purchase = vend(self.env, self.meter, 20.0, "backoffice", "FRIENDLY-NEG")  # 80 kWh
        purchase._create_invoice_and_payment(self.cash)
        purchase._on_delivered({"credit_kwh": 76.0})  # the meter went from -4 to 76
        engine.as_engine(purchase).write({"date_delivered": datetime(2026, 3, 3)})
        self.assertEqual(purchase.debt_repaid_kwh, 4.0)
        self.assertEqual(purchase.emergency_repaid_kwh, 0.0)
        self._consume(self.meter, [MONTH[2]], 1.0)
        prepayment.recognise(self.company, today=MONTH[3])
        self.assertAlmostEqual(purchase.kwh_remaining, 75.0)
        self.assertAlmostEqual(self._balance(self.liability, self.tenant), -18.75)

    def test_emergency_repayment_is_not_taken_for_negative_credit(self):
        purchase = vend(self.env, self.meter, 20.0, "backoffice", "EMERG-NOTNEG")  # 80 kWh
        purchase._create_invoice_and_payment(self.cash)
        # 5 kWh kept for the emergency credit, 1 kWh left before: 1 + 75 = 76
        purchase._on_delivered({"credit_kwh": 76.0, "emergency_repaid_kwh": 5.0})
        self.assertEqual((purchase.emergency_repaid_kwh, purchase.debt_repaid_kwh), (5.0, 0.0))

    def test_tiered_purchase_consumes_its_lowest_tier_first(self):
        self.env["smartpm.tariff.tier"].create(
            {"tariff_id": self.tariff.id, "from_kwh": 40.0, "price_per_kwh": 0.50}
        )
        purchase = self._sell(self.meter, 20.0, "TIER")  # 40 kWh at 0.25 + 20 at 0.50
        self.assertEqual(purchase.kwh, 60.0)
        self._consume(self.meter, MONTH[:10], 5.0)  # 50 kWh: 40 at 0.25 and 10 at 0.50
        prepayment.recognise(self.company, today=RUN_DAY)
        self.assertAlmostEqual(purchase.value_recognised, 15.0)
        self._consume(self.meter, MONTH[10:12], 5.0)
        prepayment.recognise(self.company, today=RUN_DAY)
        self.assertAlmostEqual(purchase.value_recognised, 20.0)  # all of it, exactly

    def test_reversed_and_undelivered_purchases_never_recognise(self):
        undelivered = self._sell(self.meter, 20.0, "UNDEL", delivered_on=None)
        undelivered.action_reverse()
        self.assertEqual(undelivered.state, "reversed")
        queued = self._sell(self.meter, 10.0, "QUEUED", delivered_on=None)
        self._consume(self.meter, MONTH[:5], 2.0)
        self.assertFalse(prepayment.recognise(self.company, today=RUN_DAY))
        self.assertFalse(undelivered.recognition_ids)
        self.assertFalse(queued.recognition_ids)
        # the consumption was counted without a sale: a later sale does not pay for it
        self._deliver(queued, MONTH[10])
        self.assertFalse(prepayment.recognise(self.company, today=RUN_DAY))
        self.assertEqual(queued.kwh_recognised, 0.0)

    def test_consumption_of_another_tenant_does_not_use_this_tenants_credit(self):
        purchase = self._sell(self.meter, 20.0, "OWN")
        self._consume(self.meter, MONTH[:5], 2.0, tenant=self.tenant_b)
        prepayment.recognise(self.company, today=RUN_DAY)
        self.assertEqual(purchase.kwh_recognised, 0.0)

    def test_locked_period_posts_on_the_first_open_day(self):
        self._sell(self.meter, 20.0, "LOCK")
        self._consume(self.meter, MONTH, 1.0)
        self.company.fiscalyear_lock_date = date(2026, 3, 31)
        move = prepayment.recognise(self.company, today=RUN_DAY)
        self.assertEqual(move.date, date(2026, 4, 1))
        self.assertEqual(move.state, "posted")

    def test_each_company_recognises_in_its_own_books(self):
        company_2 = self.company_data_2["company"]
        self.env.user.company_ids += company_2
        env = self.env(context=dict(self.env.context, allowed_company_ids=company_2.ids))
        tariff = env["smartpm.tariff"].create(
            {"name": "C2", "price_per_kwh": 0.5, "company_id": company_2.id}
        )
        tenant = env["res.partner"].create(
            {"name": "C2 Tenant", "is_tenant": True, "company_id": company_2.id}
        )
        meter = self._meter("PRE-C2", tenant, tariff, company_2).with_env(env)
        purchase_2 = vend(env, meter, 10.0, "backoffice", "C2-REC")
        purchase_2._create_invoice_and_payment(self.company_data_2["default_journal_cash"])
        self._deliver(purchase_2, date(2026, 2, 28))
        purchase_1 = self._sell(self.meter, 20.0, "C1-REC")
        self._consume(meter, MONTH[:4], 1.0)
        self._consume(self.meter, MONTH[:4], 2.0)
        move_1 = prepayment.recognise(self.company, today=RUN_DAY)
        move_2 = prepayment.recognise(company_2, today=RUN_DAY)
        self.assertEqual(move_1.company_id, self.company)
        self.assertEqual(move_2.company_id, company_2)
        self.assertEqual(move_2.journal_id, company_2.smartpm_recognition_journal_id)
        self.assertEqual(
            move_2.line_ids.account_id,
            company_2.smartpm_prepayment_account_id | company_2.smartpm_energy_income_account_id,
        )
        self.assertAlmostEqual(purchase_1.value_recognised, 2.0)
        self.assertAlmostEqual(purchase_2.value_recognised, 2.0)

    def test_cron_recognises_every_company(self):
        purchase = self._sell(self.meter, 20.0, "CRON")
        yesterday = fields.Date.context_today(self.env.user) - timedelta(days=1)
        engine.as_engine(purchase).date_delivered = datetime.combine(
            yesterday - timedelta(days=1), datetime.min.time()
        )
        self._consume(self.meter, [yesterday], 4.0)
        self.env["res.company"]._cron_smartpm_recognise_credit()
        self.assertAlmostEqual(purchase.kwh_recognised, 4.0)


@tagged("post_install", "-at_install")
class TestCreditBalanceReport(PrepaymentCase):
    def _report(self):
        self.env.flush_all()
        return self.env["smartpm.credit.balance.report"].search(
            [("company_id", "=", self.company.id)]
        )

    def test_remaining_credit_equals_the_liability_after_sales_recognition_and_reversal(self):
        first = self._sell(self.meter, 20.0, "REP-1")
        self.meter.tariff_id = self.dear
        self._sell(self.meter, 30.0, "REP-2")
        self._sell(self.meter_b, 10.0, "REP-B")
        reversed_sale = self._sell(self.meter_b, 15.0, "REP-REV", delivered_on=None)
        reversed_sale.action_reverse()
        self.assertTrue(reversed_sale.credit_note_id)
        self._consume(self.meter, MONTH, 3.0)
        self._consume(self.meter_b, MONTH[:4], 1.0)
        prepayment.recognise(self.company, today=RUN_DAY)
        self.assertEqual(first.kwh_remaining, 0.0)
        report = self._report()
        row_a = report.filtered(lambda r: r.tenant_id == self.tenant)
        row_b = report.filtered(lambda r: r.tenant_id == self.tenant_b)
        self.assertAlmostEqual(row_a.remaining_kwh, 180.0 - 93.0)
        self.assertAlmostEqual(row_a.remaining_value, 50.0 - 23.90)
        self.assertAlmostEqual(row_b.remaining_kwh, 40.0 - 4.0)
        self.assertAlmostEqual(row_b.remaining_value, 9.0)
        for row in report:
            self.assertAlmostEqual(
                row.liability_balance, row.remaining_value, msg=row.tenant_id.name
            )
            self.assertAlmostEqual(row.difference, 0.0)
        self.assertAlmostEqual(
            sum(report.mapped("remaining_value")), -self._balance(self.liability)
        )

    def test_report_is_readable_by_an_accountant_of_the_company_only(self):
        self._sell(self.meter, 20.0, "REP-ACC")
        accountant = new_test_user(
            self.env,
            "acc_prepay",
            groups="account.group_account_readonly",
            company_id=self.company.id,
        )
        rows = self.env["smartpm.credit.balance.report"].with_user(accountant).search([])
        self.assertEqual(rows.company_id, self.company)
        self.assertTrue(rows.filtered(lambda r: r.tenant_id == self.tenant))


@tagged("post_install", "-at_install")
class TestPosSaleEntries(SmartpmPosCase):
    def test_pos_order_line_and_session_closing_credit_the_prepayments(self):
        liability = self.company.smartpm_prepayment_account_id
        order = self._sync(self._order_data([(self.meter, 10.0)]))
        line = order.lines
        self.assertEqual(
            line.product_id.with_company(self.company).property_account_income_id, liability
        )
        session = self.pos_session
        session.post_closing_cash_details(10.0)
        session.close_session_from_ui()
        booked = session.move_id.line_ids.filtered(lambda ml: ml.account_id == liability)
        self.assertAlmostEqual(booked.credit, 10.0)
        self.assertFalse(
            session.move_id.line_ids.filtered(lambda ml: ml.account_id.account_type == "income")
        )

    def test_pos_credit_left_equals_the_liability_in_total_once_the_session_closed(self):
        liability = self.company.smartpm_prepayment_account_id
        self._sync(self._order_data([(self.meter, 10.0)]))  # 20 kWh at 0.50
        session = self.pos_session
        session.post_closing_cash_details(10.0)
        session.close_session_from_ui()
        purchase = self._purchases()
        purchase._on_delivered({})
        engine.as_engine(purchase).date_delivered = datetime(2026, 2, 28)
        self.env["smartpm.consumption.daily"].sudo().create(
            {
                "meter_id": self.meter.id,
                "day": MONTH[0],
                "kwh": 4.0,
                "company_id": self.company.id,
                "tenant_id": self.tenant.id,
            }
        )
        prepayment.recognise(self.company, today=RUN_DAY)
        self.assertAlmostEqual(purchase.value_recognised, 2.0)
        self.env.flush_all()
        report = self.env["smartpm.credit.balance.report"].search(
            [("company_id", "=", self.company.id)]
        )
        lines = self.env["account.move.line"].search(
            [("account_id", "=", liability.id), ("parent_state", "=", "posted")]
        )
        self.assertAlmostEqual(sum(report.mapped("remaining_value")), 8.0)
        self.assertAlmostEqual(-sum(lines.mapped("balance")), 8.0)
        self.assertAlmostEqual(sum(report.mapped("difference")), 0.0)
