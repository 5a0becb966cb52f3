from lxml import etree

from odoo.exceptions import AccessError
from odoo.tests import HttpCase, new_test_user, tagged

from ..services import engine
from .common import SmartpmCase

SECRET = "00112233445566778899AABBCCDDEEFF"


@tagged("post_install", "-at_install")
class TestAccess(SmartpmCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        cls.cashier = new_test_user(env, "t_cashier", groups="smartpm_prepay.group_cashier")
        cls.operator = new_test_user(env, "t_operator", groups="smartpm_prepay.group_operator")
        cls.manager = new_test_user(env, "t_manager", groups="smartpm_prepay.group_manager")
        cls.bank = new_test_user(
            env, "t_bank", groups="base.group_user,smartpm_prepay.group_bank_api"
        )
        cls.bridge = new_test_user(
            env, "t_bridge", groups="base.group_user,smartpm_prepay.group_bridge_api"
        )
        cls.plain_user = new_test_user(env, "t_plain", groups="base.group_user")
        cls.alice = cls._tenant("Alice")
        cls.bob = cls._tenant("Bob")
        cls.portal_alice = new_test_user(
            env, "t_portal_alice", name="Alice", groups="base.group_portal", partner_id=cls.alice.id
        )
        cls.meter_alice = cls._meter(
            "ACC-ALICE",
            tenant_id=cls.alice.id,
            auth="hls_gmac",
            auth_key=SECRET,
            encryption_key=SECRET,
            system_title="4D4D4D0000BC614E",
        )
        cls.meter_bob = cls._meter("ACC-BOB", tenant_id=cls.bob.id)

    def _meters_as(self, user):
        return self.env["smartpm.meter"].with_user(user)

    def test_cashier_reads_meters_but_cannot_change_them(self):
        meters = self._meters_as(self.cashier)
        self.assertEqual(meters.browse(self.meter_bob.id).serial_number, "ACC-BOB")
        with self.assertRaises(AccessError):
            meters.browse(self.meter_bob.id).write({"load_limit_w": 1000})
        with self.assertRaises(AccessError):
            meters.create({"serial_number": "CASH-1", "host": "h", "port": 1})

    def test_operator_opens_accounts_but_cannot_delete_meters(self):
        tenant = (
            self.env["res.partner"]
            .with_user(self.operator)
            .create({"name": "Op Tenant", "is_tenant": True, "id_card_number": "OP12345"})
        )
        meter = self._meters_as(self.operator).create(
            {"serial_number": "OP-1", "host": "127.0.0.1", "port": 4100, "tenant_id": tenant.id}
        )
        self.assertEqual(meter.tenant_id, tenant)
        self.assertEqual(len(meter.assignment_ids), 1)
        with self.assertRaises(AccessError):
            meter.unlink()

    def test_meter_secrets_hidden_from_operator(self):
        meter = self._meters_as(self.operator).browse(self.meter_alice.id)
        with self.assertRaises(AccessError):
            _secret = meter.auth_key
        self.assertEqual(self._meters_as(self.manager).browse(self.meter_alice.id).auth_key, SECRET)

    def test_meter_secrets_readable_by_manager_only(self):
        secrets_ = ["auth_password", "auth_key", "encryption_key", "token_key", "system_title"]
        for user in (self.cashier, self.operator, self.bank, self.bridge, self.plain_user):
            meters = self._meters_as(user)
            for name in secrets_:
                with self.assertRaises(AccessError, msg=f"{user.login} {name}"):
                    meters.browse(self.meter_alice.id).read([name])
                with self.assertRaises(AccessError, msg=f"{user.login} {name}"):
                    meters.search_read([("id", "=", self.meter_alice.id)], [name])
            self.assertFalse(set(secrets_) & set(meters.fields_get()), user.login)
        manager = self._meters_as(self.manager).browse(self.meter_alice.id)
        self.assertEqual((manager.auth_key, manager.encryption_key), (SECRET, SECRET))
        self.assertEqual(len(manager.token_key), 32)

    def _form_fields(self, user, view_xmlid):
        """Names of the fields a user's form (get_view, as the web client loads it) holds,
        with each field node's attributes."""
        view = self.env.ref(view_xmlid)
        arch = self.env[view.model].with_user(user).get_view(view.id, "form")
        tree = etree.fromstring(arch["arch"])
        return {node.get("name"): node.attrib for node in tree.iter("field")}

    def test_meter_form_shows_the_keys_to_the_manager_only(self):
        secrets_ = {"auth_password", "auth_key", "encryption_key", "token_key", "system_title"}
        for user in (self.cashier, self.operator):
            fields_ = self._form_fields(user, "smartpm_prepay.view_meter_form")
            self.assertIn("serial_number", fields_, user.login)  # the form itself is there
            self.assertFalse(secrets_ & set(fields_), user.login)
        fields_ = self._form_fields(self.manager, "smartpm_prepay.view_meter_form")
        self.assertLessEqual(secrets_, set(fields_))
        for name in ("auth_key", "encryption_key", "token_key"):
            self.assertEqual(fields_[name].get("password"), "True", name)
        self.assertNotIn("invisible", fields_["token_key"])  # whatever the association

    def test_purchase_form_shows_the_token_to_the_manager_only(self):
        for user in (self.cashier, self.operator):
            fields_ = self._form_fields(user, "smartpm_prepay.view_credit_purchase_form")
            self.assertIn("transfer_number", fields_, user.login)
            self.assertNotIn("token", fields_, user.login)
        fields_ = self._form_fields(self.manager, "smartpm_prepay.view_credit_purchase_form")
        self.assertIn("token", fields_)

    def test_bridge_cannot_write_meters(self):
        meter = self._meters_as(self.bridge).browse(self.meter_alice.id)
        with self.assertRaises(AccessError):
            meter.write({"load_limit_w": 5})

    def test_new_meters_get_random_keys_unless_given(self):
        a = self._meters_as(self.operator).create(
            {"serial_number": "RND-1", "host": "127.0.0.1", "port": 4100}
        )
        b = self._meters_as(self.manager).create(
            {"serial_number": "RND-2", "host": "127.0.0.1", "port": 4100}
        )
        keys = [m.sudo()[f] for m in (a, b) for f in ("auth_key", "encryption_key", "token_key")]
        self.assertEqual(len(set(keys)), 6)  # all different
        for key in keys:
            self.assertRegex(key, r"^[0-9A-F]{32}$")
        self.assertEqual(self.meter_alice.sudo().auth_key, SECRET)  # the vendor's, kept
        copy = b.sudo().copy()
        self.assertNotEqual(copy.token_key, b.sudo().token_key)

    def test_malformed_token_key_is_refused_with_the_serial(self):
        from odoo.exceptions import ValidationError

        with self.assertRaises(ValidationError) as err:
            self._meters_as(self.manager).browse(self.meter_bob.id).write({"token_key": "12"})
        self.assertIn("ACC-BOB", str(err.exception))

    def test_bank_reads_tariffs_but_no_meter(self):
        # the bank API looks meters up itself (tests/test_bank_machine_access.py)
        with self.assertRaises(AccessError):
            self._meters_as(self.bank).browse(self.meter_bob.id).tenant_id  # noqa: B018
        with self.assertRaises(AccessError):
            self._meters_as(self.bank).search([])
        with self.assertRaises(AccessError):
            self.env["smartpm.meter.assignment"].with_user(self.bank).search([])
        self.assertTrue(self.env["smartpm.tariff"].with_user(self.bank).has_access("read"))

    def test_internal_user_without_group_sees_no_meter(self):
        with self.assertRaises(AccessError):
            self._meters_as(self.plain_user).search([])
        with self.assertRaises(AccessError):
            self.env["smartpm.transformer"].with_user(self.plain_user).search([])

    def test_id_card_number_only_for_prepaid_staff(self):
        self.alice.sudo().id_card_number = "AL12345"
        partner = self.env["res.partner"].with_user(self.plain_user).browse(self.alice.id)
        self.assertEqual(partner.name, "Alice")
        with self.assertRaises(AccessError):
            _secret = partner.id_card_number
        self.assertEqual(
            self.env["res.partner"].with_user(self.cashier).browse(self.alice.id).id_card_number,
            "AL12345",
        )

    def test_portal_tenant_reads_only_own_meters(self):
        meters = self._meters_as(self.portal_alice)
        self.assertEqual(meters.search([]), self.meter_alice)
        with self.assertRaises(AccessError):
            meters.browse(self.meter_bob.id).serial_number  # noqa: B018
        with self.assertRaises(AccessError):
            meters.browse(self.meter_alice.id).write({"load_limit_w": 1})

    def test_meters_of_another_company_are_invisible(self):
        other = self.env["res.company"].create({"name": "Other Owner"})
        foreign = self.env["smartpm.meter"].create(
            {"serial_number": "FOREIGN-1", "host": "h", "port": 1, "company_id": other.id}
        )
        self.assertNotIn(foreign, self._meters_as(self.manager).search([]))
        self.manager.write({"company_ids": [(4, other.id)]})
        self.assertIn(
            foreign,
            self._meters_as(self.manager)
            .with_context(allowed_company_ids=[self.env.company.id, other.id])
            .search([]),
        )


class RpcFault(Exception):
    pass


@tagged("post_install", "-at_install")
class TestBridgeSecretsOverRpc(HttpCase):
    """The bridge user over RPC, as a bridge calls Odoo: no meter secret by read or
    search_read; the association keys only in the job it claimed; never the token key."""

    def setUp(self):
        super().setUp()
        self.bridge = new_test_user(
            self.env, "t_bridge_rpc", groups="base.group_user,smartpm_prepay.group_bridge_api"
        )
        self.meter, self.other = self.env["smartpm.meter"].create(
            [
                {
                    "serial_number": serial,
                    "host": "127.0.0.1",
                    "port": 4100,
                    "auth": "hls_gmac",
                    "client_address": 1,
                    "system_title": "4D4D4D0000BC614E",
                }
                for serial in ("RPC-1", "RPC-2")
            ]
        )
        engine.as_engine(self.env["smartpm.meter.job"].search([("state", "=", "pending")])).write(
            {"state": "cancelled"}
        )

    def _call(self, model, method, *args, **kw):
        """execute_kw over JSON-RPC, as meter_bridge.odoo_client calls it; RpcFault on error."""
        import json

        def rpc(service, method_, *call_args):
            body = {
                "jsonrpc": "2.0",
                "method": "call",
                "params": {"service": service, "method": method_, "args": list(call_args)},
                "id": 1,
            }
            resp = self.url_open(
                "/jsonrpc", data=json.dumps(body), headers={"Content-Type": "application/json"}
            ).json()
            if "error" in resp:
                raise RpcFault(resp["error"]["data"]["message"])
            return resp["result"]

        db = self.env.cr.dbname
        uid = rpc("common", "login", db, "t_bridge_rpc", "t_bridge_rpc")
        return rpc("object", "execute_kw", db, uid, "t_bridge_rpc", model, method, list(args), kw)

    def test_bridge_reads_no_meter_secret_and_gets_keys_only_in_its_job(self):
        for fields in (["auth_key"], ["encryption_key"], ["token_key"], ["auth_password"]):
            with self.assertRaises(RpcFault, msg=fields):
                self._call("smartpm.meter", "read", [self.meter.id], fields=fields)
            with self.assertRaises(RpcFault, msg=fields):
                self._call("smartpm.meter", "search_read", [], fields=fields)
        # the same over XML-RPC
        from xmlrpc.client import Fault

        db = self.env.cr.dbname
        uid = self.xmlrpc_common.authenticate(db, "t_bridge_rpc", "t_bridge_rpc", {})
        for method, args in (("read", [[self.meter.id]]), ("search_read", [[]])):
            for field in ("auth_key", "encryption_key", "token_key"):
                with self.assertRaises(Fault, msg=f"{method} {field}"):
                    self.xmlrpc_object.execute_kw(
                        db, uid, "t_bridge_rpc", "smartpm.meter", method, args, {"fields": [field]}
                    )
        # nor any of a meter's connection data: no access to meters at all (issue 14 §8)
        for fields in (["host", "port", "auth"], ["serial_number"]):
            with self.assertRaisesRegex(RpcFault, "not allowed to access", msg=fields):
                self._call("smartpm.meter", "search_read", [], fields=fields)
            with self.assertRaisesRegex(RpcFault, "not allowed to access", msg=fields):
                self._call("smartpm.meter", "read", [self.meter.id], fields=fields)

        self.meter.action_ping()
        claimed = self._call("smartpm.meter.job", "claim", "rpc-bridge", 10, 60)
        self.assertEqual([j["meter"]["serial_number"] for j in claimed], ["RPC-1"])
        held = claimed[0]["meter"]
        self.assertEqual(held["auth_key"], self.meter.sudo().auth_key)
        self.assertEqual(held["encryption_key"], self.meter.sudo().encryption_key)
        everything = repr(claimed).upper()
        self.assertNotIn(self.meter.sudo().token_key, everything)
        for key in ("auth_key", "encryption_key", "token_key"):
            self.assertNotIn(self.other.sudo()[key], everything)
