"""Issue 14 §3: no credit without a payment document. The bare vend RPC is closed, and a
purchase's money, energy, token, transfer number, state and links, and a job's type,
payload, meter, state, attempts and lease are written by the engine only: every group is
tried, the Administrator included, with the engine's context keys sent as plain values."""

import xmlrpc.client

from odoo import fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import HttpCase, new_test_user, tagged

from ..services import engine
from ..services.vending import vend
from .common import SmartpmCase

# what an RPC caller can put in its context: plain values of the engine's keys
FORGED_CONTEXT = {"smartpm_engine": True, "smartpm_vending": True, "smartpm_job_engine": True}
PURCHASE_FIELDS = (
    "amount",
    "amount_untaxed",
    "amount_tax",
    "kwh",
    "price_per_kwh",
    "month_kwh_before",
    "tier_breakdown",
    "tariff_id",
    "meter_id",
    "tenant_id",
    "token",
    "transfer_number",
    "state",
    "job_id",
    "invoice_id",
    "credit_note_id",
    "date_delivered",
    "date",
)
JOB_FIELDS = (
    "job_type",
    "payload",
    "meter_id",
    "state",
    "attempt_count",
    "max_attempts",
    "lease_until",
    "bridge_id",
    "next_attempt_at",
)


class EngineOnlyCase:
    """A sold meter, its delivery job, another meter, and one real user per group."""

    @classmethod
    def _setup_engine_case(cls, env):
        cls.tariff = env["smartpm.tariff"].create({"name": "Engine", "price_per_kwh": 0.25})
        cls.tenant_user = new_test_user(env, "t_eng_portal", groups="base.group_portal")
        cls.tenant = cls.tenant_user.partner_id
        cls.tenant.is_tenant = True
        cls.meter, cls.other_meter = env["smartpm.meter"].create(
            [
                {
                    "serial_number": serial,
                    "host": "127.0.0.1",
                    "port": 4100,
                    "state": "active",
                    "tenant_id": cls.tenant.id,
                    "tariff_id": cls.tariff.id,
                }
                for serial in ("ENG-1", "ENG-2")
            ]
        )
        cls.purchase = vend(env, cls.meter, 10.0, "backoffice", "ENG-SALE-1")
        cls.job = cls.purchase.job_id
        cls.other_job = vend(env, cls.other_meter, 10.0, "backoffice", "ENG-SALE-2").job_id
        cls.users = {
            "cashier": new_test_user(env, "t_eng_cashier", groups="smartpm_prepay.group_cashier"),
            "operator": new_test_user(
                env, "t_eng_operator", groups="smartpm_prepay.group_operator"
            ),
            "manager": new_test_user(env, "t_eng_manager", groups="smartpm_prepay.group_manager"),
            "bank": new_test_user(
                env, "t_eng_bank", groups="base.group_user,smartpm_prepay.group_bank_api"
            ),
            "bridge": new_test_user(
                env, "t_eng_bridge", groups="base.group_user,smartpm_prepay.group_bridge_api"
            ),
            "portal": cls.tenant_user,
            "admin": env.ref("base.user_admin"),
        }
        env.ref("base.user_admin").groups_id += env.ref("smartpm_prepay.group_manager")

    def _purchase_values(self):
        purchase = self.purchase.sudo()
        return {name: purchase[name] for name in PURCHASE_FIELDS}

    def _job_values(self):
        return {name: self.job.sudo()[name] for name in JOB_FIELDS}

    def _counts(self):
        env = self.env(su=True)
        return (
            env["smartpm.credit.purchase"].search_count([]),
            env["smartpm.meter.job"].search_count([("job_type", "=", "add_credit")]),
            self.meter.sudo().last_transfer_number,
        )

    def _new_values(self):
        """A value for each engine field, other than the record's."""
        env = self.env(su=True)
        now = fields.Datetime.now()
        return {
            "purchase": {
                "amount": 999.0,
                "amount_untaxed": 999.0,
                "amount_tax": 1.0,
                "kwh": 5000.0,
                "price_per_kwh": 0.0001,
                "month_kwh_before": 0.0,
                "tier_breakdown": [{"kwh": 5000.0, "price_per_kwh": 0.0001, "amount": 0.5}],
                "tariff_id": env["smartpm.tariff"]
                .create({"name": "Free", "price_per_kwh": 0.01})
                .id,
                "meter_id": self.other_meter.id,
                "tenant_id": env["res.partner"].create({"name": "Someone"}).id,
                "token": "00" * 16,
                "transfer_number": 4242,
                "state": "delivered",
                "job_id": self.other_job.id,
                "invoice_id": env["account.move"].search([], limit=1).id or False,
                "credit_note_id": env["account.move"].search([], limit=1).id or False,
                "date_delivered": now,
                "date": fields.Datetime.subtract(now, days=400),
            },
            "job": {
                "job_type": "set_thresholds",
                "payload": {"token": "00" * 16, "transfer_number": 4242, "kwh": 5000.0},
                "meter_id": self.other_meter.id,
                "state": "pending",
                "attempt_count": 0,
                "max_attempts": 99,
                "lease_until": fields.Datetime.add(now, days=1),
                "bridge_id": "mine",
                "next_attempt_at": fields.Datetime.subtract(now, days=1),
            },
        }

    def _credit_job_vals(self):
        return {
            "meter_id": self.meter.id,
            "job_type": "add_credit",
            "payload": {"token": "11" * 16, "transfer_number": 4242, "kwh": 5000.0},
        }

    def _purchase_vals(self):
        return {
            "meter_id": self.meter.id,
            "tenant_id": self.tenant.id,
            "currency_id": self.tariff.currency_id.id,
            "amount": 1.0,
            "kwh": 5000.0,
            "channel": "backoffice",
            "external_ref": "FORGED",
            "state": "paid",
            "transfer_number": 4242,
        }


@tagged("post_install", "-at_install")
class TestEngineOnly(EngineOnlyCase, SmartpmCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._clear_job_queue()
        cls._setup_engine_case(cls.env)

    def _as(self, model, login):
        return self.env[model].with_user(self.users[login]).with_context(**FORGED_CONTEXT)

    def test_bare_vend_is_refused_for_every_group(self):
        before = self._counts()
        for login in self.users:
            for channel in ("pos", "backoffice", "bank_xmlrpc", "portal"):
                with self.assertRaisesRegex(AccessError, "bare RPC call", msg=login):
                    self._as("smartpm.credit.purchase", login).vend(
                        self.meter.id, 10.0, channel, f"RPC-{login}-{channel}"
                    )
        self.assertEqual(self._counts(), before)

    def test_purchase_create_is_refused_for_every_group(self):
        before = self._counts()
        for login in self.users:
            with self.assertRaises(AccessError, msg=login):
                self._as("smartpm.credit.purchase", login).create(self._purchase_vals())
        # even the superuser, with every engine key as a plain value
        with self.assertRaisesRegex(AccessError, "paid sale only"):
            self.env["smartpm.credit.purchase"].with_context(**FORGED_CONTEXT).create(
                self._purchase_vals()
            )
        self.assertEqual(self._counts(), before)

    def test_each_engine_field_of_a_purchase_is_refused_for_every_group(self):
        before, counts = self._purchase_values(), self._counts()
        new = self._new_values()["purchase"]
        for login in self.users:
            purchase = self.purchase.with_user(self.users[login]).with_context(**FORGED_CONTEXT)
            for name in PURCHASE_FIELDS:
                with self.assertRaises(AccessError, msg=f"{login} {name}"):
                    purchase.write({name: new[name]})
        self.assertEqual(self._purchase_values(), before)
        self.assertEqual(self._counts(), counts)

    def test_engine_guard_itself_refuses_those_who_may_write_purchases(self):
        """Operators, managers and the Administrator have write access to purchases: the
        refusal is the engine guard's, naming the fields and the purchase."""
        for login in ("operator", "manager", "admin"):
            purchase = self.purchase.with_user(self.users[login]).with_context(**FORGED_CONTEXT)
            with self.assertRaisesRegex(AccessError, "state.*engine only") as err:
                purchase.write({"state": "delivered", "kwh": 5000.0})
            self.assertIn(self.purchase.name, str(err.exception))
        self.assertEqual(self.purchase.state, "queued")

    def test_purchase_fields_the_form_shows_read_only_are_all_the_engines(self):
        protected = self.env["smartpm.credit.purchase"]._engine_fields()
        self.assertLessEqual(set(PURCHASE_FIELDS), protected)
        self.assertTrue(
            {"channel", "external_ref", "bank_reference", "pos_order_line_id"} <= protected
        )

    def test_credit_job_create_is_refused_for_every_group(self):
        before = self._counts()
        for login in self.users:
            with self.assertRaises(AccessError, msg=login):
                self._as("smartpm.meter.job", login).create(self._credit_job_vals())
        with self.assertRaisesRegex(AccessError, "queued by Odoo only"):
            self.env["smartpm.meter.job"].with_context(**FORGED_CONTEXT).create(
                self._credit_job_vals()
            )
        self.assertEqual(self._counts(), before)

    def test_each_engine_field_of_a_job_is_refused_for_every_group(self):
        before, counts = self._job_values(), self._counts()
        new = self._new_values()["job"]
        for login in self.users:
            job = self.job.with_user(self.users[login]).with_context(**FORGED_CONTEXT)
            for name in JOB_FIELDS:
                with self.assertRaises(AccessError, msg=f"{login} {name}"):
                    job.write({name: new[name]})
        self.assertEqual(self._job_values(), before)
        self.assertEqual(self._counts(), counts)

    def test_meter_transfer_number_is_the_engines(self):
        """Moved back, the next sale would reuse a transfer number; moved on, it would skip."""
        before = self._counts()
        for login in ("operator", "manager", "admin"):
            meter = self.meter.with_user(self.users[login]).with_context(**FORGED_CONTEXT)
            with self.assertRaisesRegex(AccessError, "last_transfer_number.*engine only"):
                meter.write({"last_transfer_number": 0})
        with self.assertRaisesRegex(AccessError, "engine only"):
            self.meter.sudo().write({"last_transfer_number": 0})
        self.assertEqual(self._counts(), before)
        # the meter's other fields stay the operator's
        self.meter.with_user(self.users["operator"]).write({"note": "cabinet 3"})
        self.assertEqual(self.meter.note, "cabinet 3")

    def test_credit_jobs_are_never_deleted(self):
        """Deleting a pending delivery would leave a paid sale queued for ever."""
        before, counts = self._job_values(), self._counts()
        for login in ("manager", "admin"):
            with self.assertRaisesRegex(UserError, "never deleted"):
                self.job.with_user(self.users[login]).unlink()
        with self.assertRaisesRegex(UserError, "never deleted"):
            self.job.sudo().unlink()
        self.assertTrue(self.job.exists())
        self.assertEqual(self._job_values(), before)
        self.assertEqual(self._counts(), counts)
        # a ping is no money: a manager may still delete it
        ping = engine.create(
            self.env["smartpm.meter.job"], [{"meter_id": self.meter.id, "job_type": "ping"}]
        )
        ping.with_user(self.users["manager"]).unlink()
        self.assertFalse(ping.exists())

    def test_operator_queues_only_commands_of_the_meters_buttons(self):
        Job = self._as("smartpm.meter.job", "operator")
        ping = Job.create({"meter_id": self.other_meter.id, "job_type": "ping"})
        read = Job.create(
            {
                "meter_id": self.other_meter.id,
                "job_type": "read",
                "payload": {"objects": [{"obis": "1.0.1.8.0.255", "ic": 3, "attribute": 2}]},
            }
        )
        self.assertEqual((ping.state, read.state), ("pending", "pending"))
        ping.priority = 5  # the one field an operator may change
        refusals = [
            ({"job_type": "set_thresholds", "payload": {"low_credit_kwh": 0}}, "queued by Odoo"),
            ({"job_type": "set_load_limit"}, "queued by Odoo"),
            ({"job_type": "disconnect", "payload": {"token": "00"}}, "no payload"),
            ({"job_type": "ping", "idempotency_key": "purchase-1"}, "engine only"),
            ({"job_type": "ping", "state": "done"}, "engine only"),
        ]
        before = self.env["smartpm.meter.job"].search_count([])
        for vals, message in refusals:
            with self.assertRaisesRegex(AccessError, message, msg=vals):
                Job.create({"meter_id": self.other_meter.id, **vals})
        self.assertEqual(self.env["smartpm.meter.job"].search_count([]), before)
        with self.assertRaises(AccessError):  # a cashier reads jobs only
            self._as("smartpm.meter.job", "cashier").create(
                {"meter_id": self.other_meter.id, "job_type": "ping"}
            )

    def _last_job(self, meter):
        return self.env["smartpm.meter.job"].search([("meter_id", "=", meter.id)], limit=1)

    def test_buttons_still_run_as_the_engine(self):
        operator = self.users["operator"]
        meter = self.other_meter.with_user(operator)
        for button, job_type in (
            ("action_ping", "ping"),
            ("action_read_now", "read"),
            ("action_disconnect", "disconnect"),
            ("action_reconnect", "reconnect"),
        ):
            getattr(meter, button)()
            self.assertEqual(self._last_job(self.other_meter).job_type, job_type, button)
        job = self._last_job(self.other_meter).with_user(operator)
        job.action_cancel()
        self.assertEqual(job.state, "cancelled")
        job.action_retry()
        self.assertEqual(job.state, "pending")
        with self.assertRaises(AccessError):  # a cashier may not cancel a delivery
            self.job.with_user(self.users["cashier"]).action_cancel()
        self.assertEqual(self.job.state, "pending")
        self.purchase.with_user(operator).action_reverse()
        self.assertEqual((self.purchase.state, self.job.state), ("reversed", "cancelled"))

    def test_records_the_engine_created_carry_no_mark(self):
        job = engine.create(
            self.env["smartpm.meter.job"], {"meter_id": self.meter.id, "job_type": "ping"}
        )
        self.assertFalse(engine.is_engine(job.env))
        with self.assertRaises(AccessError):
            job.write({"state": "done"})
        self.assertFalse(engine.is_engine(self.purchase.env))


@tagged("post_install", "-at_install")
class TestEngineOnlyXmlrpc(EngineOnlyCase, HttpCase):
    """The same attempts over Odoo's real XML-RPC endpoint, with each group's login."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        engine.as_engine(
            cls.env["smartpm.meter.job"].search([("state", "in", ("pending", "claimed"))])
        ).write({"state": "cancelled"})
        cls._setup_engine_case(cls.env)
        cls.job.invalidate_recordset()

    def _rpc(self, login, model, method, *args):
        password = "admin" if login == "admin" else self.users[login].login
        uid = self.users[login].id
        proxy = xmlrpc.client.ServerProxy(f"{self.base_url()}/xmlrpc/2/object", allow_none=True)
        return proxy.execute_kw(
            self.env.cr.dbname,
            uid,
            password,
            model,
            method,
            list(args),
            {"context": FORGED_CONTEXT},
        )

    def _assert_refused(self, login, model, method, *args):
        with self.assertRaises(xmlrpc.client.Fault, msg=f"{login} {model}.{method}") as err:
            self._rpc(login, model, method, *args)
        fault = err.exception.faultString
        self.assertNotIn("Traceback", fault)
        return fault

    def test_every_group_is_refused_over_xmlrpc_and_nothing_changes(self):
        purchase_before, job_before, counts = (
            self._purchase_values(),
            self._job_values(),
            self._counts(),
        )
        new = self._new_values()
        for login in self.users:
            fault = self._assert_refused(
                login, "smartpm.credit.purchase", "vend", self.meter.id, 10.0, "pos", f"X-{login}"
            )
            self.assertIn("bare RPC call", fault)
            self._assert_refused(login, "smartpm.credit.purchase", "create", self._purchase_vals())
            for name in ("state", "kwh", "amount", "token", "transfer_number", "job_id"):
                self._assert_refused(
                    login,
                    "smartpm.credit.purchase",
                    "write",
                    [self.purchase.id],
                    {name: new["purchase"][name]},
                )
            self._assert_refused(login, "smartpm.meter.job", "create", self._credit_job_vals())
            for name in ("payload", "state", "job_type", "meter_id"):
                self._assert_refused(
                    login, "smartpm.meter.job", "write", [self.job.id], {name: new["job"][name]}
                )
        for login in ("manager", "admin"):
            fault = self._assert_refused(
                login,
                "smartpm.credit.purchase",
                "write",
                [self.purchase.id],
                {"state": "delivered"},
            )
            self.assertIn("engine only", fault)
            fault = self._assert_refused(
                login, "smartpm.meter.job", "write", [self.job.id], {"payload": {"token": "00"}}
            )
            self.assertIn("engine only", fault)
        self.purchase.invalidate_recordset()
        self.job.invalidate_recordset()
        self.assertEqual(self._purchase_values(), purchase_before)
        self.assertEqual(self._job_values(), job_before)
        self.assertEqual(self._counts(), counts)
