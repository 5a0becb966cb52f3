from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged

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
            meter.auth_key  # noqa: B018
        self.assertEqual(self._meters_as(self.manager).browse(self.meter_alice.id).auth_key, SECRET)

    def test_bridge_reads_meter_secrets_but_cannot_write_meters(self):
        meter = self._meters_as(self.bridge).browse(self.meter_alice.id)
        self.assertEqual(meter.encryption_key, SECRET)
        with self.assertRaises(AccessError):
            meter.write({"load_limit_w": 5})

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
            partner.id_card_number  # noqa: B018
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
