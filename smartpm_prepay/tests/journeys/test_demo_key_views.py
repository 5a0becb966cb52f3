"""Issue 14 follow-up on the demo: the meter and purchase forms as the demo's users open them.
The owner sees the meter's keys (token key included) and a sale's credit token, the very
values Odoo signs and the meter holds; the cashier's forms hold none of them. A meter the
owner enters with the vendor's keys only is the HLS-GMAC management client."""

from lxml import etree

from odoo.tests import Form, tagged

from .common import DemoJourneyCase

SECRETS = {"auth_password", "auth_key", "encryption_key", "token_key", "system_title"}


@tagged("post_install", "-at_install")
class TestDemoKeyViews(DemoJourneyCase):
    def _open_form(self, user, model, record_id):
        """What the web client gets when `user` opens the record's form: the view's field
        names and the values web_read returns for them."""
        records = self.env[model].with_user(user)
        arch = etree.fromstring(records.get_view(view_type="form")["arch"])
        names = {
            node.get("name")
            for node in arch.iter("field")
            if node.get("name") in records._fields
            and not any(a.tag in ("list", "kanban") for a in node.iterancestors())
        }
        values = records.browse(record_id).web_read({name: {} for name in names})[0]
        return names, values

    def test_cashier_opens_the_demo_meter_and_sale_without_keys_or_token(self):
        meter = self.env.ref("smartpm_prepay.demo_meter_01")
        names, values = self._open_form(self.cashier, "smartpm.meter", meter.id)
        self.assertEqual(values["serial_number"], "SIM00001")
        self.assertFalse(SECRETS & names)
        self.assertFalse(SECRETS & set(values))
        sale = self.env["smartpm.credit.purchase"].search(
            [("meter_id", "=", meter.id), ("token", "!=", False)], limit=1
        )
        self.assertTrue(sale, "the demo has a sale on SIM00001")
        names, values = self._open_form(self.cashier, "smartpm.credit.purchase", sale.id)
        self.assertEqual(values["transfer_number"], sale.transfer_number)
        self.assertNotIn("token", names)
        self.assertNotIn("token", values)

    def test_owner_sees_the_keys_and_token_odoo_signs_with(self):
        meter = self.env.ref("smartpm_prepay.demo_meter_01")
        names, values = self._open_form(self.owner, "smartpm.meter", meter.id)
        self.assertLessEqual(SECRETS - {"auth_password"}, names)
        held = meter.sudo()
        self.assertEqual(values["token_key"], held.token_key)
        self.assertEqual(bytes.fromhex(values["token_key"]), meter._get_token_key())
        self.assertEqual(
            (values["auth_key"], values["encryption_key"]), (held.auth_key, held.encryption_key)
        )
        sale = self.env["smartpm.credit.purchase"].search(
            [("meter_id", "=", meter.id), ("token", "!=", False)], limit=1
        )
        names, values = self._open_form(self.owner, "smartpm.credit.purchase", sale.id)
        self.assertEqual(values["token"], sale.sudo().token)
        # the token on screen is the sale's: its transfer number and energy, unit for unit
        token = bytes.fromhex(values["token"])
        self.assertEqual(int.from_bytes(token[0:4], "big"), values["transfer_number"])
        self.assertEqual(int.from_bytes(token[4:8], "big"), round(sale.kwh * 1000))

    def test_owner_enters_a_meter_with_the_vendors_keys_only(self):
        form = Form(self.env["smartpm.meter"].with_user(self.owner))
        form.serial_number = "VENDOR-01"
        form.host = "127.0.0.1"
        form.port = 4190
        form.auth_key = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"
        form.encryption_key = "000102030405060708090A0B0C0D0E0F"
        form.token_key = "00112233445566778899AABBCCDDEEFF"
        meter = form.save()
        self.assertEqual((meter.auth, meter.client_address), ("hls_gmac", 1))
        bridge = meter.sudo()._prepare_bridge_values()
        self.assertEqual(bridge["auth_key"], "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
        self.assertEqual(bridge["encryption_key"], "000102030405060708090A0B0C0D0E0F")
        self.assertIsNone(bridge["system_title"])
        self.assertEqual(meter._get_token_key().hex().upper(), "00112233445566778899AABBCCDDEEFF")
