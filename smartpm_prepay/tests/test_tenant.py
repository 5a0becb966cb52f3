from odoo import Command
from odoo.exceptions import UserError, ValidationError
from odoo.tests import Form, tagged

from .common import SmartpmCase


@tagged("post_install", "-at_install")
class TestTenant(SmartpmCase):
    def test_account_opening_on_both_pages_assigns_number_and_meter(self):
        form = Form(
            self.env["res.partner"].with_context(default_is_tenant=True),
            view="smartpm_prepay.view_tenant_form",
        )
        # page "Basic customer information"
        form.name = "Ada Tenant"
        form.street = "1 Main Street"
        form.phone = "+1 555 0100"
        form.mobile = "+1 555 0199"
        form.email = "ada@example.com"
        form.id_card_number = " ab 12345 "
        # page "Customer meter information"
        with form.meter_ids.new() as meter:
            meter.serial_number = "sp-0001"
            meter.host = "127.0.0.1"
            meter.port = 4100
        tenant = form.save()

        self.assertTrue(tenant.is_tenant)
        self.assertRegex(tenant.tenant_number, r"^T\d{6}$")
        self.assertEqual(tenant.id_card_number, "AB12345")
        self.assertEqual(tenant.meter_ids.serial_number, "SP-0001")
        self.assertEqual(tenant.meter_assignment_ids.meter_id, tenant.meter_ids)
        self.assertFalse(tenant.meter_assignment_ids.date_end)

    def test_tenant_numbers_are_distinct(self):
        first, second = self._tenant("One"), self._tenant("Two")
        self.assertTrue(first.tenant_number)
        self.assertNotEqual(first.tenant_number, second.tenant_number)

    def test_failed_save_does_not_consume_a_tenant_number(self):
        def number(tenant):
            return int(tenant.tenant_number[1:])

        holder = self._tenant("Holder", id_card_number="ID900001")
        self._meter("GAP-1", tenant_id=holder.id)
        # refused: an ID card of another tenant, then a meter registered already
        # (each save is one request: a refused one is rolled back, as the savepoint does here)
        with (
            self.assertRaisesRegex(ValidationError, "already registered for Holder"),
            self.cr.savepoint(),
        ):
            self._tenant("Refused One", id_card_number="ID900001")
        with (
            self.assertRaisesRegex(ValidationError, "Meter GAP-1 is already registered"),
            self.cr.savepoint(),
        ):
            self._tenant(
                "Refused Two",
                meter_ids=[Command.create({"serial_number": "gap-1", "host": "127.0.0.1"})],
            )
        self.assertFalse(self.env["res.partner"].search([("name", "like", "Refused")]))
        accepted = self._tenant("Accepted")
        self.assertEqual(number(accepted), number(holder) + 1)

    def test_partner_becoming_tenant_gets_a_number(self):
        partner = self.env["res.partner"].create({"name": "Later Tenant"})
        self.assertFalse(partner.tenant_number)
        partner.is_tenant = True
        self.assertTrue(partner.tenant_number)

    def test_malformed_id_card_is_refused(self):
        for bad in ("AB1", "AB#12345", "X" * 25):
            with self.subTest(bad=bad), self.assertRaises(ValidationError):
                self._tenant("Bad Card", id_card_number=bad)

    def test_duplicate_id_card_in_same_company_is_refused(self):
        self._tenant("First", id_card_number="ID778899")
        with self.assertRaisesRegex(ValidationError, "already registered for First"):
            self._tenant("Second", id_card_number="id 778899")

    def test_same_id_card_in_another_company_is_allowed(self):
        other = self.env["res.company"].create({"name": "Other Owner"})
        self._tenant("Here", id_card_number="ID445566")
        there = self._tenant("There", id_card_number="ID445566", company_id=other.id)
        self.assertEqual(there.id_card_number, "ID445566")

    def test_archiving_tenant_with_meter_is_refused(self):
        tenant = self._tenant("Holder")
        self._meter("HOLD-1", tenant_id=tenant.id)
        with self.assertRaisesRegex(UserError, "still hold meters"):
            tenant.action_archive()
        self.assertTrue(tenant.active)

    def test_tenant_with_history_cannot_be_deleted(self):
        tenant = self._tenant("Former")
        meter = self._meter("FORM-1", tenant_id=tenant.id)
        meter.tenant_id = False
        with self.assertRaisesRegex(UserError, "archive it instead"):
            tenant.unlink()
        tenant.action_archive()
        self.assertFalse(tenant.active)
