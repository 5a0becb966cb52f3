"""Issue 17 §4: standing charges (services/standing_charge.py): tariff settings, the daily
charge job (once per meter and period, whatever runs it), the meter's own time-based
charge, the accounting (prepayments to standing charge income), the statement, access."""

from datetime import date, timedelta

import psycopg2

from odoo import fields
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import Form, new_test_user, tagged
from odoo.tools import mute_logger

from ..services import engine, local_time, prepayment, standing_charge, statement
from ..services.vending import vend
from .test_prepayment_accounting import PrepaymentCase
from .test_tou import TouMixin

DAY = timedelta(days=1)


@tagged("post_install", "-at_install")
class TestStandingCharge(PrepaymentCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        engine.as_engine(
            cls.env["smartpm.meter.job"].search([("state", "in", ("pending", "claimed"))])
        ).write({"state": "cancelled"})
        cls.company.smartpm_min_amount = 0.1
        cls.tariff.write({"standing_charge_amount": 1.0})  # 4 kWh a day at 0.25
        cls.income = standing_charge.ensure_account(cls.company)
        cls.bridge = new_test_user(
            cls.env, "t_sc_bridge", groups="base.group_user,smartpm_prepay.group_bridge_api"
        )
        cls.cashier = new_test_user(cls.env, "t_sc_cashier", groups="smartpm_prepay.group_cashier")
        cls.manager = new_test_user(cls.env, "t_sc_manager", groups="smartpm_prepay.group_manager")
        cls.today = local_time.local_today(cls.company)

    def _charges(self, meter=None):
        return self.env["smartpm.standing.charge"].search(
            [("meter_id", "=", (meter or self.meter).id)], order="period_start, id"
        )

    def _collect(self, today=None):
        return standing_charge.collect_due(self.env, self.company, today=today or self.today)

    def _complete(self, job, result):
        # a meter runs one job at a time: the sales' deliveries (done by hand here) go
        others = [
            ("state", "=", "pending"),
            ("id", "!=", job.id),
            ("meter_id", "=", job.meter_id.id),
        ]
        engine.as_engine(self.env["smartpm.meter.job"].search(others)).write({"state": "cancelled"})
        Job = self.env["smartpm.meter.job"].with_user(self.bridge)
        claimed = [j["id"] for j in Job.claim("b-sc", 50, 60)]
        self.assertIn(job.id, claimed)
        Job.complete(job.id, "b-sc", result)
        for other in set(claimed) - {job.id}:
            Job.release([other], "b-sc")

    def _cleared(self, charge, credit_after):
        self._complete(
            charge.job_id,
            {
                "transfer_number": charge.transfer_number,
                "already_applied": False,
                "cleared_kwh": charge.kwh,
                "credit_kwh": credit_after,
                "relay": "connected",
            },
        )

    # ------------------------------------------------------------------ settings
    def test_tariff_form_sets_a_daily_charge_shown_in_kwh(self):
        with Form(self.env["smartpm.tariff"]) as form:
            form.name = "Charged"
            form.price_per_kwh = 0.20
            form.standing_charge_amount = 0.5
            form.standing_charge_period = "month"
        tariff = form.save()
        self.assertEqual(tariff.standing_charge_kwh, 2.5)
        self.assertEqual(tariff.standing_charge_collection, "odoo")
        self.assertEqual(standing_charge.meter_units(tariff, 0.5), ("wh", 2500))
        self.assertEqual(standing_charge.meter_units(tariff, 0.5, "money"), ("money_units", 500))

    def test_charge_is_converted_at_the_first_kwh_price_taxes_included(self):
        tax = self.env["account.tax"].create(
            {"name": "VAT 25 incl", "amount": 25, "price_include_override": "tax_included"}
        )
        tariff = self.env["smartpm.tariff"].create(
            {
                "name": "Taxed",
                "price_per_kwh": 0.20,
                "tax_ids": [(6, 0, tax.ids)],
                "tier_ids": [(0, 0, {"from_kwh": 100, "price_per_kwh": 0.40})],
                "standing_charge_amount": 1.25,
            }
        )
        # 1.25 taxes included = 1.00 untaxed at 0.20 per kWh: 5 kWh, as a sale of 1.25 buys
        self.assertEqual(tariff.standing_charge_kwh, 5.0)
        self.assertEqual(tariff._quote_amount(1.25)["kwh"], 5.0)

    def test_bad_settings_are_refused_naming_the_tariff(self):
        Tariff = self.env["smartpm.tariff"]
        base = {"name": "Bad", "price_per_kwh": 0.25}
        with self.assertRaisesRegex(ValidationError, "Bad.*negative"):
            Tariff.create({**base, "standing_charge_amount": -1})
        with self.assertRaisesRegex(ValidationError, "Bad.*per day only"):
            Tariff.create(
                {
                    **base,
                    "standing_charge_amount": 1,
                    "standing_charge_period": "month",
                    "standing_charge_collection": "meter",
                }
            )
        with self.assertRaisesRegex(ValidationError, "Bad.*less than one Wh"):
            Tariff.create({**base, "price_per_kwh": 50, "standing_charge_amount": 0.01})

    # ------------------------------------------------------------------ by Odoo
    def test_daily_job_charges_each_meter_once_per_day_whatever_runs_it(self):
        first = self._collect()
        again = self._collect()  # a second run (two crons, a restart) charges nothing
        self.assertEqual(len(first["queued"]), 2)  # both meters of the tariff
        self.assertFalse(again["queued"])
        [charge] = self._charges()
        self.assertEqual(
            (charge.period, charge.period_start, charge.amount, charge.kwh, charge.state),
            ("day", self.today, 1.0, 4.0, "queued"),
        )
        job = charge.job_id
        self.assertEqual((job.job_type, job.payload["wh"]), ("clear_credit", 4000))
        self.assertEqual(job.payload["transfer_number"], self.meter.last_transfer_number)
        self.assertEqual(charge.transfer_number, self.meter.last_transfer_number)
        # the next day: one more
        self._collect(self.today + DAY)
        self.assertEqual(self._charges().mapped("period_start"), [self.today, self.today + DAY])

    def test_a_duplicate_charge_is_refused_by_the_database(self):
        [charge] = self._collect()["queued"].filtered(lambda c: c.meter_id == self.meter)
        with mute_logger("odoo.sql_db"), self.assertRaises(psycopg2.errors.UniqueViolation):
            with self.env.cr.savepoint():
                engine.as_engine(self.env["smartpm.standing.charge"]).create(
                    {
                        f: charge[f].id if hasattr(charge[f], "id") else charge[f]
                        for f in (
                            "meter_id",
                            "tenant_id",
                            "company_id",
                            "collection",
                            "period",
                            "period_start",
                            "currency_id",
                        )
                    }
                )

    def test_days_the_job_missed_are_caught_up_once_each(self):
        self._collect(self.today)
        self._collect(self.today + 3 * DAY)
        self.assertEqual(
            self._charges().mapped("period_start"), [self.today + i * DAY for i in range(4)]
        )
        transfer_numbers = self._charges().mapped("transfer_number")
        self.assertEqual(len(set(transfer_numbers)), 4)

    def test_monthly_charge_once_per_month(self):
        self.tariff.standing_charge_period = "month"
        june = date(2026, 6, 3)
        self._collect(june)
        self._collect(june + 10 * DAY)
        self._collect(date(2026, 7, 1))
        self.assertEqual(
            self._charges().mapped("period_start"), [date(2026, 6, 1), date(2026, 7, 1)]
        )

    def test_collected_charge_moves_its_credit_value_from_prepayments_to_income(self):
        sale = self._sell(self.meter, 10.0, "SC-1")  # 40 kWh at 0.25
        liability_before = self._balance(self.liability, self.tenant)
        [charge] = self._collect()["queued"].filtered(lambda c: c.meter_id == self.meter)
        self.assertFalse(charge.move_id)  # nothing booked before the meter took it
        self._cleared(charge, 36.0)
        self.assertEqual(charge.state, "collected")
        self.assertEqual(self.meter.credit_kwh, 36.0)
        self.assertEqual(charge.value, 1.0)
        self.assertEqual(self._balance(self.liability, self.tenant), liability_before + 1.0)
        self.assertEqual(self._balance(self.income), -1.0)
        self.assertEqual(self._balance(self.energy), 0.0)
        self.assertEqual((sale.kwh_remaining, sale.value_recognised), (36.0, 1.0))
        # the report again (a retried answer) books nothing more
        charge._on_credit_cleared(charge.job_id, {"cleared_kwh": 4.0})
        self.assertEqual(self._balance(self.income), -1.0)
        self.assertEqual(len(charge.recognition_ids), 1)

    def test_charge_credit_is_not_consumption_for_the_recognition_job(self):
        sale = self._sell(self.meter, 10.0, "SC-2")
        [charge] = self._collect()["queued"].filtered(lambda c: c.meter_id == self.meter)
        self._cleared(charge, 36.0)
        self._consume(self.meter, [self.today - DAY], 6.0)
        prepayment.recognise(self.company, today=self.today)
        self.assertEqual(self._balance(self.energy), -1.5)  # 6 kWh at 0.25, not 2
        self.assertEqual(sale.kwh_remaining, 30.0)
        self.assertAlmostEqual(self._balance(self.liability, self.tenant), -7.5)

    def test_charge_beyond_the_sold_credit_is_uncovered_and_repaid_by_the_next_sale(self):
        sale = self._sell(self.meter, 0.5, "SC-3")  # 2 kWh; the charge takes 4
        [charge] = self._collect()["queued"].filtered(lambda c: c.meter_id == self.meter)
        self._cleared(charge, -2.0)  # friendly period: credit below zero
        self.assertEqual(charge.value, 0.5)
        covered = charge.recognition_ids.filtered("purchase_id")
        uncovered = charge.recognition_ids - covered
        self.assertEqual((covered.purchase_id, covered.kwh), (sale, 2.0))
        self.assertEqual((uncovered.kwh, uncovered.amount), (2.0, 0.0))
        # the next purchase repays the negative credit: released once by the recognition
        repaying = vend(self.env, self.meter, 2.5, "backoffice", "SC-4")
        repaying._create_invoice_and_payment(self.cash)
        repaying._on_delivered({"credit_kwh": 8.0})
        self.assertEqual(repaying.debt_repaid_kwh, 2.0)
        prepayment.recognise(self.company, today=self.today + DAY)
        self.assertEqual(repaying.kwh_remaining, 8.0)
        self.assertAlmostEqual(self._balance(self.liability, self.tenant), -2.0)
        # what repaid the charge's negative credit is standing charge income, once
        self.assertAlmostEqual(self._balance(self.income), -1.0)
        self.assertAlmostEqual(self._balance(self.energy), 0.0)
        [released] = repaying.recognition_ids
        self.assertEqual((released.standing_charge_id, released.kwh), (charge, 2.0))
        prepayment.recognise(self.company, today=self.today + 2 * DAY)
        self.assertAlmostEqual(self._balance(self.income), -1.0)
        self.assertEqual(repaying.kwh_remaining, 8.0)

    def test_failed_clear_leaves_the_charge_failed_and_the_books_untouched(self):
        [charge] = self._collect()["queued"].filtered(lambda c: c.meter_id == self.meter)
        Job = self.env["smartpm.meter.job"].with_user(self.bridge)
        Job.claim("b-sc", 50, 60)
        Job.fail(charge.job_id.id, "b-sc", "token refused (13)", False)
        self.assertEqual(charge.state, "failed")
        self.assertFalse(charge.move_id)
        self.assertFalse(self._collect()["queued"].filtered(lambda c: c.meter_id == self.meter))

    # ------------------------------------------------------------------ by the meter
    def test_meter_collection_pushes_set_charge_once_per_change(self):
        Job = self.env["smartpm.meter.job"]
        self.tariff.standing_charge_collection = "meter"
        jobs = Job.search([("job_type", "=", "set_charge"), ("state", "=", "pending")])
        self.assertEqual(set(jobs.meter_id.ids), {self.meter.id, self.meter_b.id})
        self.assertEqual(jobs[0].payload, {"charge_kwh": 4.0, "period_s": 86400})
        self.tariff.name = "Flat renamed"  # nothing the meters hold changed
        self.assertEqual(
            Job.search_count([("job_type", "=", "set_charge"), ("state", "=", "pending")]), 2
        )
        self.tariff.standing_charge_amount = 0.5  # supersedes the pending pushes
        pending = Job.search([("job_type", "=", "set_charge"), ("state", "=", "pending")])
        self.assertEqual(len(pending), 2)
        self.assertEqual(pending[0].payload["charge_kwh"], 2.0)
        self.assertFalse(self._collect()["queued"])  # Odoo does not collect it too

    def test_a_meter_leaving_the_tariff_gets_a_zero_charge(self):
        self.tariff.standing_charge_collection = "meter"
        self.meter_b.tariff_id = self.dear
        [job] = self.env["smartpm.meter.job"].search(
            [
                ("job_type", "=", "set_charge"),
                ("state", "=", "pending"),
                ("meter_id", "=", self.meter_b.id),
            ]
        )
        self.assertEqual(job.payload, {"charge_kwh": 0.0, "period_s": 86400})

    def _pushed(self, meter):
        """The set_charge job of ``meter`` done by the bridge (the meter has its charge)."""
        [job] = self.env["smartpm.meter.job"].search(
            [
                ("job_type", "=", "set_charge"),
                ("state", "=", "pending"),
                ("meter_id", "=", meter.id),
            ]
        )
        self._complete(job, {"standing_charge_kwh": 4.0, "standing_charge_paid_kwh": 0.0})

    def test_a_report_of_charges_from_a_meter_given_none_is_not_recorded(self):
        self.tariff.standing_charge_collection = "meter"
        sale = self._sell(self.meter, 10.0, "SC-7")
        ping = self.meter._enqueue_job("ping", {}, priority=30)
        # never pushed a charge: a meter that has none cannot have collected any
        self._complete(ping, {"credit_kwh": 40.0, "standing_charge_paid_kwh": 4.0})
        self.assertFalse(self._charges())
        self.assertEqual(sale.kwh_remaining, 40.0)
        self.assertEqual(self._balance(self.income), 0.0)

    def test_meter_collected_total_becomes_charges_once(self):
        self.tariff.standing_charge_collection = "meter"
        self._pushed(self.meter)
        sale = self._sell(self.meter, 10.0, "SC-5")
        ping = self.meter._enqueue_job("ping", {}, priority=30)
        self._complete(ping, {"credit_kwh": 32.0, "standing_charge_paid_kwh": 8.0})
        [charge] = self._charges()
        self.assertEqual(
            (charge.collection, charge.kwh, charge.amount, charge.value, charge.state),
            ("meter", 8.0, 2.0, 2.0, "collected"),
        )
        self.assertEqual(sale.kwh_remaining, 32.0)
        again = self.meter._enqueue_job("ping", {}, priority=30)
        self._complete(again, {"credit_kwh": 32.0, "standing_charge_paid_kwh": 8.0})
        self.assertEqual(len(self._charges()), 1)
        later = self.meter._enqueue_job("ping", {}, priority=30)
        self._complete(later, {"credit_kwh": 28.0, "standing_charge_paid_kwh": 12.0})
        self.assertEqual(self._charges().mapped("kwh"), [8.0, 4.0])
        self.assertEqual(self._balance(self.income), -3.0)

    # ------------------------------------------------------------------ statement
    def test_statement_shows_the_charges_and_adds_up(self):
        self._sell(self.meter, 10.0, "SC-6", delivered_on=self.today - 2 * DAY)
        [charge] = self._collect()["queued"].filtered(lambda c: c.meter_id == self.meter)
        self._cleared(charge, 36.0)
        st = statement.tenant_statement(self.env, self.tenant, self.today - 5 * DAY, self.today)
        [line] = [x for x in st["meters"][0]["lines"] if x["kind"] == "standing_charge"]
        self.assertEqual((line["kwh"], line["value"], line["amount"]), (-4.0, -1.0, 1.0))
        self.assertEqual(line["standing_charge_id"], charge.id)
        self.assertEqual((st["closing_kwh"], st["closing_value"]), (36.0, 9.0))
        self.assertTrue(statement.is_balanced(st))

    def _listed(self, tenant, date_from, date_to):
        """The standing-charge list as the owner filters it: the tenant, Collected, and
        Collected on the period's local days (the filters of the list's search view)."""
        arch = self.env["smartpm.standing.charge"].get_view(view_type="search")["arch"]
        self.assertIn('name="filter_collected"', arch)
        self.assertIn('name="filter_date_collected"', arch)
        return (
            self.env["smartpm.standing.charge"]
            .with_user(self.manager)
            .search(
                [
                    ("tenant_id", "=", tenant.id),
                    ("state", "=", "collected"),
                    ("date_collected", ">=", local_time.day_start_utc(self.company, date_from)),
                    ("date_collected", "<", local_time.day_start_utc(self.company, date_to + DAY)),
                ],
                order="date_collected, id",
            )
        )

    def test_statement_lines_are_the_standing_charge_list_of_the_tenant(self):
        # Esi bought credit; Kofi never did: his charges come out of credit already at zero
        self._sell(self.meter, 10.0, "SC-LIST", delivered_on=self.today - 2 * DAY)
        credit = {self.meter: 40.0, self.meter_b: 0.0}
        for day in (self.today - DAY, self.today):
            for charge in self._collect(day)["queued"]:
                credit[charge.meter_id] -= charge.kwh
                self._cleared(charge, credit[charge.meter_id])
        # a charge still on its way is in the list (Queued) but takes no credit yet
        self._collect(self.today + DAY)
        for tenant in (self.tenant, self.tenant_b):
            listed = self._listed(tenant, self.today - 5 * DAY, self.today + DAY)
            self.assertTrue(listed, tenant.name)
            st = statement.tenant_statement(
                self.env(user=self.manager), tenant, self.today - 5 * DAY, self.today + DAY
            )
            lines = [x for s in st["meters"] for x in s["lines"] if x["kind"] == "standing_charge"]
            self.assertEqual([x["standing_charge_id"] for x in lines], listed.ids, tenant.name)
            for line, row in zip(lines, listed, strict=True):
                # what the list says it took (kWh, charge, revenue), covered or not
                self.assertAlmostEqual(-line["kwh"] + line["uncovered_kwh"], row.kwh, places=3)
                self.assertAlmostEqual(line["amount"], row.amount, places=2)
                self.assertAlmostEqual(-line["value"], row.value, places=2)
                self.assertEqual(line["meter_id"], row.meter_id.id)
            totals = st["totals"]["standing_charge"]
            self.assertAlmostEqual(
                -totals["kwh"] + sum(x["uncovered_kwh"] for x in lines),
                sum(listed.mapped("kwh")),
                places=3,
            )
            self.assertTrue(statement.is_balanced(st))
        # Kofi's charges took no sold credit: shown, uncovered, worth nothing yet
        st = statement.tenant_statement(
            self.env, self.tenant_b, self.today - 5 * DAY, self.today + DAY
        )
        [section] = st["meters"]
        self.assertEqual(section["meter"], self.meter_b)
        self.assertEqual(
            [(x["kwh"], x["value"], x["uncovered_kwh"]) for x in section["lines"]],
            [(0.0, 0.0, 4.0), (0.0, 0.0, 4.0)],
        )

    # ------------------------------------------------------------------ access
    def test_nobody_creates_writes_or_deletes_charges(self):
        [charge] = self._collect()["queued"].filtered(lambda c: c.meter_id == self.meter)
        vals = {"meter_id": self.meter.id, "tenant_id": self.tenant.id}
        portal = new_test_user(self.env, "t_sc_portal", groups="base.group_portal")
        for user in (self.cashier, portal, self.manager):
            Charge = self.env["smartpm.standing.charge"].with_user(user)
            with self.assertRaises(AccessError):
                Charge.create({**vals, "collection": "odoo", "period": "day"})
            with self.assertRaises(AccessError):
                Charge.browse(charge.id).write({"state": "collected", "kwh": 0})
            with self.assertRaises(UserError):  # AccessError is one
                Charge.browse(charge.id).unlink()
        forged = self.env["smartpm.standing.charge"].with_context(smartpm_engine=True)
        with self.assertRaises(AccessError):
            forged.browse(charge.id).write({"state": "collected"})
        self.assertEqual((charge.state, charge.kwh), ("queued", 4.0))
        # the owner reads them; the cashier and the tenant do not
        self.assertEqual(
            self.env["smartpm.standing.charge"].with_user(self.manager).search([]),
            self._charges() | self._charges(self.meter_b),
        )
        for user in (self.cashier, portal):
            with self.assertRaises(AccessError):
                self.env["smartpm.standing.charge"].with_user(user).search([])

    def test_collect_is_no_rpc_method_of_the_tariff(self):
        Tariff = self.env["smartpm.tariff"].with_user(self.cashier)
        with self.assertRaises(AccessError):
            Tariff.browse(self.tariff.id).write({"standing_charge_amount": 0})
        self.assertEqual(self.tariff.standing_charge_amount, 1.0)


@tagged("post_install", "-at_install")
class TestMoneyStandingCharge(TouMixin, PrepaymentCase):
    """Issue 17 leftovers: a standing charge on a money-mode meter (time of use) is taken in
    money, by a money clear token or the meter's own charge, and booked in money."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        engine.as_engine(
            cls.env["smartpm.meter.job"].search([("state", "in", ("pending", "claimed"))])
        ).write({"state": "cancelled"})
        cls.company.smartpm_min_amount = 0.1
        cls.tou = cls._tou_tariff(name="Money charged")
        cls.tou.standing_charge_amount = 1.25
        cls.money_tenant = cls.env["res.partner"].create({"name": "Ama Money", "is_tenant": True})
        cls.money_meter = cls.env["smartpm.meter"].create(
            {
                "serial_number": "PRE-MSC",
                "host": "127.0.0.1",
                "port": 4100,
                "state": "active",
                "tenant_id": cls.money_tenant.id,
                "tariff_id": cls.tou.id,
                "credit_mode": "money",
                "company_id": cls.company.id,
            }
        )
        cls.income = standing_charge.ensure_account(cls.company)
        cls.bridge = new_test_user(
            cls.env, "t_msc_bridge", groups="base.group_user,smartpm_prepay.group_bridge_api"
        )
        cls.today = local_time.local_today(cls.company)

    _complete = TestStandingCharge._complete

    def _money_sale(self, amount, ref, charge_total=0.0):
        purchase = vend(self.env, self.money_meter, amount, "backoffice", ref)
        purchase._create_invoice_and_payment(self.cash)
        engine.as_engine(self.env["smartpm.meter.job"].search([("state", "=", "pending")])).write(
            {"state": "cancelled"}
        )
        purchase._on_delivered({"credit_money": amount, "charge_total": charge_total})
        engine.as_engine(purchase).date_delivered = fields.Datetime.now() - DAY * 3
        return purchase

    def _collect(self, today=None):
        result = standing_charge.collect_due(self.env, self.company, today=today or self.today)
        return result["queued"].filtered(lambda c: c.meter_id == self.money_meter)

    def test_odoo_collects_a_money_charge_with_a_signed_money_clear_token(self):
        from ..services import credit_token

        sale = self._money_sale(10.0, "MSC-1")
        liability_before = self._balance(self.liability, self.money_tenant)
        [charge] = self._collect()
        self.assertEqual((charge.money, charge.kwh, charge.amount), (1.25, 0.0, 1.25))
        job = charge.job_id
        self.assertEqual(job.payload["money_units"], 1250)
        self.assertNotIn("wh", job.payload)
        token = bytes.fromhex(job.payload["token"])
        key = self.money_meter._get_token_key()
        self.assertEqual(token[0], credit_token.MONEY_CLEAR_TOKEN_TYPE)
        self.assertTrue(credit_token.verify_money_clear(key, "PRE-MSC", token))
        # not a kWh clear token, nor a money credit token: the meter could not misread it
        self.assertFalse(credit_token.verify_clear(key, "PRE-MSC", token))
        self.assertFalse(credit_token.verify_money(key, "PRE-MSC", token))
        self.assertFalse(charge.move_id)  # nothing booked before the meter took it
        self._complete(
            job,
            {
                "transfer_number": charge.transfer_number,
                "already_applied": False,
                "cleared_money": 1.25,
                "credit_money": 8.75,
                "relay": "connected",
            },
        )
        self.assertEqual(charge.state, "collected")
        self.assertEqual(self.money_meter.credit_money, 8.75)
        self.assertEqual(charge.value, 1.25)
        self.assertAlmostEqual(
            self._balance(self.liability, self.money_tenant), liability_before + 1.25
        )
        self.assertAlmostEqual(self._balance(self.income), -1.25)
        self.assertAlmostEqual(sale.money_remaining, 8.75)
        # the day's run again: one charge per day, whatever runs
        self.assertFalse(self._collect())

    def test_money_charge_is_not_consumption_and_consumption_is_not_charge(self):
        from ..services import tou

        sale = self._money_sale(10.0, "MSC-2")
        [charge] = self._collect()
        self._complete(
            charge.job_id,
            {"transfer_number": charge.transfer_number, "cleared_money": 1.25},
        )
        # the meter's consumption charge collected 2.000 since the sale
        self.env["smartpm.reading"].sudo().create(
            {
                "meter_id": self.money_meter.id,
                "obis": tou.CHARGE_OBIS,
                "reading_time": fields.Datetime.now() - DAY * 2,
                "value": 2000,
            }
        )
        prepayment.recognise(self.company, today=self.today)
        self.assertAlmostEqual(self._balance(self.energy), -2.0)
        self.assertAlmostEqual(self._balance(self.income), -1.25)
        self.assertAlmostEqual(sale.money_remaining, 10.0 - 1.25 - 2.0)
        self.assertFalse(prepayment.recognise(self.company, today=self.today))

    def test_money_charge_beyond_the_credit_is_repaid_by_the_next_sale_to_charge_income(self):
        sale = self._money_sale(0.5, "MSC-3")  # the charge takes 1.25: 0.75 below zero
        [charge] = self._collect()
        self._complete(
            charge.job_id,
            {"transfer_number": charge.transfer_number, "cleared_money": 1.25},
        )
        self.assertEqual(charge.value, 0.5)
        covered = charge.recognition_ids.filtered("purchase_id")
        uncovered = charge.recognition_ids - covered
        self.assertEqual((covered.purchase_id, covered.money), (sale, 0.5))
        self.assertEqual((uncovered.money, uncovered.amount), (0.75, 0.0))
        repaying = self._money_sale(5.0, "MSC-4")
        prepayment.recognise(self.company, today=self.today)
        self.assertAlmostEqual(self._balance(self.income), -1.25)
        self.assertAlmostEqual(self._balance(self.energy), 0.0)
        self.assertAlmostEqual(repaying.money_remaining, 4.25)
        liability = self._balance(self.liability, self.money_tenant)
        self.assertAlmostEqual(liability, -4.25)  # what the meter still holds
        prepayment.recognise(self.company, today=self.today + DAY)
        self.assertAlmostEqual(self._balance(self.income), -1.25)

    def test_taxed_money_charge_takes_its_untaxed_part(self):
        tax = self.env["account.tax"].create(
            {"name": "VAT 25 incl M", "amount": 25, "price_include_override": "tax_included"}
        )
        self.tou.tax_ids = [(6, 0, tax.ids)]
        self.assertEqual(
            standing_charge.meter_units(self.tou, 1.25, "money"), ("money_units", 1000)
        )
        self.assertEqual(self.tou.standing_charge_kwh, 0.0)  # no energy on a money meter
        self.assertEqual(standing_charge.push_settings(self.money_meter), (0.0, 86400))

    def test_meter_collects_a_money_charge_and_reports_it_in_money(self):
        self.tou.standing_charge_collection = "meter"
        ping = self.money_meter._enqueue_job("ping", {}, priority=30)
        # a ping before any push: a meter that has no charge cannot have collected any
        self._complete(ping, {"credit_money": 5.0, "standing_charge_paid_money": 2.5})
        Charge = self.env["smartpm.standing.charge"]
        self.assertFalse(Charge.search([("meter_id", "=", self.money_meter.id)]))
        self.tou.standing_charge_amount = 1.5
        [job] = self.env["smartpm.meter.job"].search(
            [
                ("job_type", "=", "set_charge"),
                ("state", "=", "pending"),
                ("meter_id", "=", self.money_meter.id),
            ]
        )
        self.assertEqual(job.payload, {"charge_money": 1.5, "period_s": 86400})
        self._complete(job, {"standing_charge_money": 1.5, "standing_charge_paid_money": 0.0})
        sale = self._money_sale(10.0, "MSC-5")
        ping = self.money_meter._enqueue_job("ping", {}, priority=30)
        self._complete(ping, {"credit_money": 5.5, "standing_charge_paid_money": 4.5})
        [charge] = Charge.search([("meter_id", "=", self.money_meter.id)])
        self.assertEqual(
            (charge.collection, charge.money, charge.kwh, charge.amount, charge.value),
            ("meter", 4.5, 0.0, 4.5, 4.5),
        )
        self.assertAlmostEqual(sale.money_remaining, 5.5)
        self.assertAlmostEqual(self._balance(self.income), -4.5)
        again = self.money_meter._enqueue_job("ping", {}, priority=30)
        self._complete(again, {"credit_money": 5.5, "standing_charge_paid_money": 4.5})
        self.assertEqual(Charge.search_count([("meter_id", "=", self.money_meter.id)]), 1)
