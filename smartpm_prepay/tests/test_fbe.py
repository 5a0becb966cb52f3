"""Issue 17 §7: free basic electricity, once per tenant per company-local month."""

import ast
import xmlrpc.client
from datetime import date, datetime

import psycopg2
from freezegun import freeze_time
from lxml import etree

from odoo import SUPERUSER_ID, api
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import Form, HttpCase, new_test_user, tagged
from odoo.tools import mute_logger

from ..services import credit_token, engine, fbe, prepayment, vending
from .common import SmartpmCase
from .test_portal import PortalCase
from .test_prepayment_accounting import MONTH, RUN_DAY, PrepaymentCase

DEC = datetime(2026, 12, 10, 9, 0)


class FbeCase(SmartpmCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company = cls.env.company
        cls.company.write({"smartpm_min_amount": 1.0, "smartpm_max_amount": 500.0})
        cls.company.partner_id.tz = "UTC"
        # 0.25 up to 50 kWh a month, 0.50 above; 30 kWh free a month
        cls.social = cls.env["smartpm.tariff"].create(
            {
                "name": "Lifeline",
                "price_per_kwh": 0.25,
                "tier_ids": [(0, 0, {"from_kwh": 50.0, "price_per_kwh": 0.5})],
                "fbe_social": True,
                "fbe_kwh_month": 30.0,
            }
        )
        cls.home = cls.env["smartpm.tariff"].create({"name": "Home", "price_per_kwh": 0.25})
        cls.tenant = cls._tenant("Lindiwe Social")
        cls.meter = cls._meter(
            "FBE-1", tenant_id=cls.tenant.id, state="active", tariff_id=cls.social.id
        )
        cls.other = cls._tenant("Pieter Home")
        cls.other_meter = cls._meter(
            "FBE-2", tenant_id=cls.other.id, state="active", tariff_id=cls.home.id
        )
        cls.Purchase = cls.env["smartpm.credit.purchase"]
        cls._clear_job_queue()

    def _grant_at(self, when, **kwargs):
        with freeze_time(when):
            return fbe.grant_due(self.env, self.company, **kwargs)

    def _grants(self, tenant=None):
        return self.Purchase.search(
            [("channel", "=", "fbe"), ("tenant_id", "=", (tenant or self.tenant).id)],
            order="id",
        )


@tagged("post_install", "-at_install")
class TestFbeGrant(FbeCase):
    def test_social_tenant_receives_the_months_kwh_as_a_free_token(self):
        result = self._grant_at(DEC)
        grant = self._grants()
        self.assertEqual(result["granted"], grant)
        self.assertEqual(len(grant), 1)
        self.assertEqual(grant.external_ref, f"FBE-{self.tenant.id}-2026-12")
        self.assertEqual((grant.amount, grant.amount_untaxed, grant.kwh), (0.0, 0.0, 30.0))
        self.assertEqual(grant.meter_id, self.meter)
        self.assertEqual(grant.state, "queued")
        self.assertEqual(grant.transfer_number, 1)
        token = bytes.fromhex(grant.token)
        self.assertTrue(
            credit_token.verify(self.meter._get_token_key(), self.meter.serial_number, token)
        )
        self.assertEqual(credit_token.parse(token)[:2], (1, 30000))
        job = grant.job_id
        self.assertEqual((job.job_type, job.payload["token"]), ("add_credit", grant.token))
        self.assertEqual(grant.payment_document, "Free basic electricity")
        self.assertFalse(grant.invoice_id)
        grant._on_delivered({})
        self.assertEqual(grant.state, "delivered")

    def test_dashboard_does_not_count_a_grant_as_a_sale(self):
        with freeze_time(DEC):
            before = self.env["smartpm.dashboard"].create({})
            figures = (before.sales_today_count, before.sales_today_amount, before.sold_month_kwh)
            fbe.grant_due(self.env, self.company)
            self.assertTrue(self._grants())
            after = self.env["smartpm.dashboard"].create({})
            self.assertEqual(
                (after.sales_today_count, after.sales_today_amount, after.sold_month_kwh), figures
            )
            chart = after.action_chart_sales()
            sales = self.Purchase.search(chart["domain"])
            self.assertFalse(sales & self._grants())

    def test_tenant_of_a_non_social_tariff_receives_nothing(self):
        self._grant_at(DEC)
        self.assertFalse(self._grants(self.other))
        self.assertEqual(self.other_meter.last_transfer_number, 0)

    def test_tenant_default_social_tariff_counts_when_the_meter_has_none(self):
        self.other_meter.tariff_id = False
        self.other.smartpm_tariff_id = self.social
        self._grant_at(DEC)
        self.assertEqual(self._grants(self.other).meter_id, self.other_meter)

    def test_second_run_and_the_cron_in_the_month_grant_nothing_more(self):
        first = self._grant_at(DEC)["granted"]
        again = self._grant_at(datetime(2026, 12, 31, 23, 0))
        with freeze_time(datetime(2026, 12, 20)):
            self.env["smartpm.tariff"]._cron_grant_fbe()
        self.assertFalse(again["granted"])
        self.assertEqual(again["already"], first)
        self.assertEqual(self._grants(), first)
        self.assertEqual(self.meter.last_transfer_number, 1)
        january = self._grant_at(datetime(2027, 1, 1, 0, 30))["granted"]
        self.assertEqual(january.external_ref, f"FBE-{self.tenant.id}-2027-01")
        self.assertEqual(len(self._grants()), 2)

    def test_granted_once_per_local_month_east_of_utc(self):
        self.company.partner_id.tz = "Asia/Tokyo"  # December starts 30 Nov 15:00 UTC
        november = self._grant_at(datetime(2026, 11, 30, 14, 30))["granted"]
        december = self._grant_at(datetime(2026, 11, 30, 15, 30))["granted"]
        later = self._grant_at(datetime(2026, 12, 1, 10, 0))["granted"]
        self.assertTrue(november.external_ref.endswith("-2026-11"))
        self.assertTrue(december.external_ref.endswith("-2026-12"))
        self.assertFalse(later)
        self.assertEqual(len(self._grants()), 2)

    def test_granted_once_per_local_month_west_of_utc(self):
        self.company.partner_id.tz = "America/Los_Angeles"  # December starts 1 Dec 08:00 UTC
        november = self._grant_at(datetime(2026, 12, 1, 2, 0))["granted"]
        still_november = self._grant_at(datetime(2026, 12, 1, 7, 30))["granted"]
        december = self._grant_at(datetime(2026, 12, 1, 8, 30))["granted"]
        self.assertTrue(november.external_ref.endswith("-2026-11"))
        self.assertFalse(still_november)
        self.assertTrue(december.external_ref.endswith("-2026-12"))

    def test_tenant_with_two_meters_is_granted_once_on_the_first_meter(self):
        second = self._meter(
            "FBE-3", tenant_id=self.tenant.id, state="active", tariff_id=self.social.id
        )
        self._grant_at(DEC)
        grant = self._grants()
        self.assertEqual(len(grant), 1)
        self.assertEqual(grant.meter_id, self.meter)
        self.assertEqual(second.last_transfer_number, 0)

    def test_tenant_moving_in_mid_month_is_granted_at_the_next_run(self):
        first = self._grant_at(datetime(2026, 12, 1, 1, 0))["granted"]
        newcomer = self._tenant("Thabo Newcomer")
        with freeze_time(datetime(2026, 12, 15)):
            self.meter.tenant_id = newcomer
        self._grant_at(datetime(2026, 12, 16, 1, 0))
        grant = self._grants(newcomer)
        self.assertEqual((grant.meter_id, grant.kwh), (self.meter, 30.0))  # the whole month's
        self.assertEqual(self._grants(), first)  # the one who left keeps theirs, once

    def test_free_kwh_do_not_raise_the_paid_tier(self):
        self._grant_at(DEC)
        with freeze_time(DEC):
            sale = vending.vend(self.env, self.meter, 10.0, "backoffice", "FBE-TIER")
            self.assertEqual(vending.month_kwh(self.env, self.meter), 40.0)
        # 10.00 at 0.25 = 40 kWh: the 30 free kWh did not take the tenant to the 0.50 tier
        self.assertEqual((sale.month_kwh_before, sale.kwh), (0.0, 40.0))
        self.assertEqual(sale.transfer_number, 2)

    def test_free_basic_electricity_is_never_sold_through_vend(self):
        before = self.Purchase.search_count([])
        env = self.env(su=True)
        for amount in (0.0, 10.0):
            with self.subTest(amount=amount), self.assertRaises(vending.VendingError):
                vending.vend(env, self.meter, amount, "fbe", f"FBE-X-{amount}")
        self.assertEqual(self.Purchase.search_count([]), before)
        self.assertEqual(self.meter.last_transfer_number, 0)

    def test_grant_outside_the_engine_is_refused(self):
        with self.assertRaises(AccessError):
            vending.grant_free(self.env(su=True), self.meter, 30.0, "FBE-FORGED")
        self.assertFalse(self.Purchase.search([("channel", "=", "fbe")]))
        self.assertEqual(self.meter.last_transfer_number, 0)

    def test_database_refuses_a_free_paid_channel_sale_and_a_priced_grant(self):
        vals = {
            "meter_id": self.meter.id,
            "tenant_id": self.tenant.id,
            "currency_id": self.company.currency_id.id,
            "kwh": 1.0,
            "transfer_number": 99,
        }
        Purchase = engine.as_engine(self.Purchase)
        for channel, amount in (("backoffice", 0.0), ("fbe", 5.0)):
            with (
                self.subTest(channel=channel),
                mute_logger("odoo.sql_db"),
                self.assertRaises(psycopg2.errors.CheckViolation),
                self.env.cr.savepoint(),
            ):
                Purchase.create(dict(vals, channel=channel, amount=amount, external_ref=channel))

    def test_grant_cannot_be_invoiced(self):
        grant = self._grant_at(DEC)["granted"]
        cash = self.env["account.journal"].search(
            [("type", "=", "cash"), ("company_id", "=", self.company.id)], limit=1
        )
        with self.assertRaisesRegex(UserError, "nothing to invoice"):
            grant._create_invoice_and_payment(cash)
        self.assertFalse(grant.invoice_id)

    def test_meter_without_token_key_is_reported_and_the_others_are_granted(self):
        self.meter.token_key = False
        self.other_meter.tariff_id = self.social
        result = self._grant_at(DEC)
        self.assertEqual([t for t, _msg in result["errors"]], [self.tenant])
        self.assertIn("token key", result["errors"][0][1])
        self.assertFalse(self._grants())
        self.assertEqual(len(self._grants(self.other)), 1)

    def test_social_tariff_needs_its_free_kwh(self):
        with self.assertRaisesRegex(ValidationError, "Lifeline"):
            self.social.fbe_kwh_month = 0.0

    def test_tariff_form_asks_the_free_kwh_of_a_social_tariff_only(self):
        form = Form(self.env["smartpm.tariff"])
        form.name = "Lifeline form"
        form.price_per_kwh = 0.2
        self.assertTrue(form._get_modifier("fbe_kwh_month", "invisible"))
        form.fbe_social = True
        self.assertFalse(form._get_modifier("fbe_kwh_month", "invisible"))
        self.assertTrue(form._get_modifier("fbe_kwh_month", "required"))
        form.fbe_kwh_month = 40.0
        tariff = form.save()
        self.assertEqual((tariff.fbe_social, tariff.fbe_kwh_month), (True, 40.0))

    def test_manager_button_grants_the_tariffs_tenants_and_a_cashier_is_refused(self):
        cashier = new_test_user(self.env, "t_fbe_cashier", groups="smartpm_prepay.group_cashier")
        manager = new_test_user(self.env, "t_fbe_manager", groups="smartpm_prepay.group_manager")
        with self.assertRaises(AccessError):
            self.social.with_user(cashier).action_grant_fbe()
        self.assertFalse(self.Purchase.search([("channel", "=", "fbe")]))
        with freeze_time(DEC):
            action = self.social.with_user(manager).action_grant_fbe()
            again = self.social.with_user(manager).action_grant_fbe()
        self.assertIn("1 tenant(s) granted", action["params"]["message"])
        self.assertIn("0 tenant(s) granted", again["params"]["message"])
        self.assertIn("1 already had it", again["params"]["message"])
        self.assertEqual(len(self._grants()), 1)

    def test_back_office_filter_lists_the_grants_only(self):
        grant = self._grant_at(DEC)["granted"]
        with freeze_time(DEC):
            sale = vending.vend(self.env, self.meter, 10.0, "backoffice", "FBE-FILTER")
        view = self.env.ref("smartpm_prepay.view_credit_purchase_search")
        (node,) = etree.fromstring(view.arch).xpath("//filter[@name='filter_fbe']")
        self.assertEqual(node.get("string"), "Free basic electricity")
        domain = ast.literal_eval(node.get("domain"))
        found = self.Purchase.search(domain + [("meter_id", "=", self.meter.id)])
        self.assertEqual(found, grant)
        self.assertNotIn(sale, found)


@tagged("post_install", "-at_install")
class TestFbeConcurrency(SmartpmCase):
    """Two runs at once, and a run again after the commit: one grant (committed data)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with cls.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            tariff = env["smartpm.tariff"].create(
                {
                    "name": "Conc social",
                    "price_per_kwh": 0.5,
                    "fbe_social": True,
                    "fbe_kwh_month": 20.0,
                }
            )
            tenant = env["res.partner"].create({"name": "Conc FBE", "is_tenant": True})
            meter = env["smartpm.meter"].create(
                {
                    "serial_number": "FBE-CONC",
                    "host": "127.0.0.1",
                    "port": 4100,
                    "state": "active",
                    "tenant_id": tenant.id,
                    "tariff_id": tariff.id,
                }
            )
            cls.ids = (meter.id, tariff.id, tenant.id)

    @classmethod
    def tearDownClass(cls):
        meter_id, tariff_id, tenant_id = cls.ids
        with cls.registry.cursor() as cr:
            cr.execute("DELETE FROM smartpm_credit_purchase WHERE meter_id = %s", (meter_id,))
            cr.execute("DELETE FROM smartpm_meter_job WHERE meter_id = %s", (meter_id,))
            cr.execute("DELETE FROM smartpm_meter_assignment WHERE meter_id = %s", (meter_id,))
            cr.execute("DELETE FROM smartpm_meter WHERE id = %s", (meter_id,))
            cr.execute("DELETE FROM smartpm_tariff WHERE id = %s", (tariff_id,))
            cr.execute("DELETE FROM res_partner WHERE id = %s", (tenant_id,))
        super().tearDownClass()

    def _run(self, env):
        return fbe.grant_due(env, tariffs=env["smartpm.tariff"].browse(self.ids[1]))

    def _count(self):
        with self.registry.cursor() as cr:
            cr.execute(
                "SELECT count(*), max(transfer_number) FROM smartpm_credit_purchase "
                "WHERE channel = 'fbe' AND meter_id = %s",
                (self.ids[0],),
            )
            count, number = cr.fetchone()
            cr.execute("SELECT last_transfer_number FROM smartpm_meter WHERE id = %s", self.ids[:1])
            return count, number, cr.fetchone()[0]

    def _undo(self):
        with self.registry.cursor() as cr:
            cr.execute("DELETE FROM smartpm_credit_purchase WHERE meter_id = %s", self.ids[:1])
            cr.execute("DELETE FROM smartpm_meter_job WHERE meter_id = %s", self.ids[:1])
            cr.execute(
                "UPDATE smartpm_meter SET last_transfer_number = 0 WHERE id = %s", self.ids[:1]
            )

    def test_two_concurrent_runs_and_a_run_after_the_commit_grant_once(self):
        try:
            with self.registry.cursor() as cr1, self.registry.cursor() as cr2:
                env1 = api.Environment(cr1, SUPERUSER_ID, {})
                env2 = api.Environment(cr2, SUPERUSER_ID, {})
                first = self._run(env1)  # holds the meter's lock, not committed yet
                cr2.execute("SET LOCAL lock_timeout = '500ms'")
                with mute_logger("odoo.sql_db"):
                    second = self._run(env2)  # waits for the lock, gives up: skipped
                self.assertEqual(len(first["granted"]), 1)
                self.assertFalse(second["granted"] or second["already"] or second["errors"])
                cr2.rollback()
                cr1.commit()  # then the cron "crashes": its job is not marked done
            with self.registry.cursor() as cr3:
                again = self._run(api.Environment(cr3, SUPERUSER_ID, {}))
                self.assertFalse(again["granted"])
                self.assertEqual(len(again["already"]), 1)
                cr3.commit()
            self.assertEqual(self._count(), (1, 1, 1))
        finally:
            self._undo()

    def test_cron_batches_are_committed_as_they_go(self):
        try:
            with self.registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                tariffs = env["smartpm.tariff"].browse(self.ids[1])
                granted = fbe.grant_due(env, tariffs=tariffs, commit_every=1)["granted"]
                self.assertEqual(len(granted), 1)
                cr.rollback()  # the run dies after its batch: the batch stays
            self.assertEqual(self._count(), (1, 1, 1))
        finally:
            self._undo()

    def test_run_whose_snapshot_predates_the_committed_grant_grants_nothing(self):
        try:
            with self.registry.cursor() as cr1, self.registry.cursor() as cr2:
                cr2.execute("SELECT 1")  # cr2's snapshot is taken: it cannot see cr1's grant
                self._run(api.Environment(cr1, SUPERUSER_ID, {}))
                cr1.commit()
                with mute_logger("odoo.sql_db"):
                    late = self._run(api.Environment(cr2, SUPERUSER_ID, {}))
                self.assertFalse(late["granted"] or late["errors"])
                cr2.commit()
            self.assertEqual(self._count(), (1, 1, 1))
        finally:
            self._undo()


@tagged("post_install", "-at_install")
class TestFbeAccounting(PrepaymentCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tariff.write({"fbe_social": True, "fbe_kwh_month": 50.0})
        cls.meter_b.tariff_id = cls.dear

    def _report(self):
        self.env.flush_all()
        return self.env["smartpm.credit.balance.report"].search(
            [("company_id", "=", self.company.id)]
        )

    def test_grant_books_nothing_is_recognised_at_zero_and_the_report_agrees(self):
        with freeze_time(datetime(2026, 2, 27, 12, 0)):
            grant = fbe.grant_due(self.env, self.company)["granted"]
        self.assertEqual(grant.tenant_id, self.tenant)
        self._deliver(grant, date(2026, 2, 27))
        self.assertFalse(self._balance(self.liability))  # no liability, no entry at all
        self.assertFalse(
            self.env["account.move.line"].search([("move_id.ref", "ilike", grant.name)])
        )
        sale = self._sell(self.meter, 20.0, "FBE-PAID")  # 80 kWh at 0.25, on 28 February
        self._consume(self.meter, MONTH, 3.0)  # 93 kWh: the 50 free ones first, then 43 paid
        move = prepayment.recognise(self.company, today=RUN_DAY)
        self.assertEqual((grant.kwh_recognised, grant.value_recognised), (50.0, 0.0))
        self.assertAlmostEqual(sale.kwh_recognised, 43.0)
        self.assertAlmostEqual(sale.value_recognised, 10.75)
        self.assertAlmostEqual(move.amount_total, 10.75)
        self.assertAlmostEqual(self._balance(self.energy), -10.75)
        row = self._report().filtered(lambda r: r.tenant_id == self.tenant)
        self.assertAlmostEqual(row.remaining_kwh, 130.0 - 93.0)
        self.assertAlmostEqual(row.remaining_value, 20.0 - 10.75)
        self.assertAlmostEqual(row.liability_balance, row.remaining_value)
        self.assertAlmostEqual(row.difference, 0.0)
        self.assertAlmostEqual(
            sum(self._report().mapped("remaining_value")), -self._balance(self.liability)
        )


@tagged("post_install", "-at_install")
class TestFbeRpc(HttpCase):
    """A cashier, a bank, an operator and a tenant try to make free credit over XML-RPC."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tariff = cls.env["smartpm.tariff"].create(
            {"name": "RPC social", "price_per_kwh": 0.25, "fbe_social": True, "fbe_kwh_month": 9}
        )
        cls.portal = new_test_user(cls.env, "t_fbe_rpc_portal", groups="base.group_portal")
        cls.tenant = cls.portal.partner_id
        cls.tenant.is_tenant = True
        cls.meter = cls.env["smartpm.meter"].create(
            {
                "serial_number": "FBE-RPC",
                "host": "127.0.0.1",
                "port": 4100,
                "state": "active",
                "tenant_id": cls.tenant.id,
                "tariff_id": cls.tariff.id,
            }
        )
        cls.users = {
            "cashier": new_test_user(
                cls.env, "t_fbe_rpc_cash", groups="smartpm_prepay.group_cashier"
            ),
            "operator": new_test_user(
                cls.env, "t_fbe_rpc_op", groups="smartpm_prepay.group_operator"
            ),
            "bank": new_test_user(
                cls.env, "t_fbe_rpc_bank", groups="base.group_user,smartpm_prepay.group_bank_api"
            ),
            "portal": cls.portal,
        }
        cls.manager = new_test_user(cls.env, "t_fbe_rpc_mgr", groups="smartpm_prepay.group_manager")

    def _rpc(self, user, model, method, *args):
        proxy = xmlrpc.client.ServerProxy(f"{self.base_url()}/xmlrpc/2/object", allow_none=True)
        context = {"smartpm_engine": True}
        return proxy.execute_kw(
            self.env.cr.dbname, user.id, user.login, model, method, list(args), {"context": context}
        )

    def _state(self):
        env = self.env(su=True)
        env.invalidate_all()
        return (
            env["smartpm.credit.purchase"].search_count([("meter_id", "=", self.meter.id)]),
            env["smartpm.meter.job"].search_count([("meter_id", "=", self.meter.id)]),
            self.meter.sudo().last_transfer_number,
        )

    def test_no_user_but_a_manager_makes_free_credit_over_rpc(self):
        before = self._state()
        vals = {
            "meter_id": self.meter.id,
            "tenant_id": self.tenant.id,
            "currency_id": self.env.company.currency_id.id,
            "channel": "fbe",
            "external_ref": f"FBE-{self.tenant.id}-2026-12",
            "amount": 0.0,
            "kwh": 9.0,
            "state": "paid",
        }
        attempts = [
            ("smartpm.credit.purchase", "create", vals),
            ("smartpm.credit.purchase", "vend", self.meter.id, 0.0, "fbe", "FBE-RPC-1"),
            ("smartpm.tariff", "action_grant_fbe", [self.tariff.id]),
            ("smartpm.tariff", "_cron_grant_fbe"),
        ]
        for name, user in self.users.items():
            for model, method, *args in attempts:
                with (
                    self.subTest(user=name, method=method),
                    mute_logger("odoo.http"),
                    self.assertRaises(xmlrpc.client.Fault),
                ):
                    self._rpc(user, model, method, *args)
        self.assertEqual(self._state(), before)
        self._rpc(self.manager, "smartpm.tariff", "action_grant_fbe", [self.tariff.id])
        self.assertEqual(self._state(), tuple(n + 1 for n in before))  # a grant, a job, a number


@tagged("post_install", "-at_install")
class TestFbePortal(PortalCase):
    def test_grant_shows_as_free_in_the_tenants_purchases(self):
        self.tariff.write({"fbe_social": True, "fbe_kwh_month": 25.0})
        grant = fbe.grant_due(self.env, self.company, tariffs=self.tariff)["granted"]
        grant = grant.filtered(lambda p: p.tenant_id == self.tenant_a)
        self.assertEqual(len(grant), 1)
        self._login()
        response = self.url_open(f"/my/meters/{self.meter_a.id}")
        self.assertEqual(response.status_code, 200)
        row = response.text.split(f'data-reference="{grant.name}"')[1].split("</tr>")[0]
        self.assertIn("o_smartpm_free", row)
        self.assertIn("Free basic electricity", row)
        self.assertIn("25", row)
        self.assertNotIn("0.00", row.split("o_smartpm_purchase_amount")[1].split("</td>")[0])
