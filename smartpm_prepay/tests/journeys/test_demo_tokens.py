"""Issue 14 on the demo: the demo's meters are locked with their own keys, every demo sale
carries a token signed with its meter's key, and only the owner reads keys and tokens."""

import hashlib
import hmac

from odoo.exceptions import AccessError
from odoo.tests import tagged

from ...services import credit_token
from .common import DemoJourneyCase

# The demo's keys are derived as meter_sim/security.py does (demo only): the same here,
# so that the figures the simulator holds are compared with what Odoo holds.
DEMO_KEY_SEED = b"smartpm-demo"


def simulator_key(purpose, serial):
    return hmac.new(DEMO_KEY_SEED, f"{purpose}:{serial}".encode(), hashlib.sha256).digest()[:16]


@tagged("post_install", "-at_install")
class TestDemoTokens(DemoJourneyCase):
    def test_owner_sees_locked_meters_holding_the_simulators_keys(self):
        meters = (
            self.env["smartpm.meter"]
            .with_user(self.owner)
            .search([("serial_number", "=like", "SIM0____")])
        )
        self.assertEqual(len(meters), 25)  # SIM00001-SIM00025 (scripts/demo.sh)
        for meter in meters:
            self.assertEqual((meter.auth, meter.client_address), ("hls_gmac", 1))
            for field, purpose in (
                ("auth_key", "authentication_key"),
                ("encryption_key", "encryption_key"),
                ("token_key", "token_key"),
            ):
                self.assertEqual(
                    bytes.fromhex(meter[field]),
                    simulator_key(purpose, meter.serial_number),
                    f"{meter.serial_number} {field}",
                )
            self.assertEqual(len({meter.auth_key, meter.encryption_key, meter.token_key}), 3)

    def test_every_demo_sale_carries_a_token_its_meter_verifies(self):
        purchases = self.env["smartpm.credit.purchase"].with_user(self.owner).search([])
        self.assertTrue(purchases)
        for p in purchases:
            raw = bytes.fromhex(p.token)
            key = simulator_key("token_key", p.meter_id.serial_number)
            self.assertTrue(credit_token.verify(key, p.meter_id.serial_number, raw), p.name)
            number, wh, _tag, _mac = credit_token.parse(raw)
            # the token, the purchase and the delivery job say the same, unit for unit
            self.assertEqual(number, p.transfer_number)
            self.assertEqual(wh, round(p.kwh * 1000))
            self.assertEqual(p.job_id.sudo().payload["token"], p.token)

    def test_cashier_reads_no_token_and_no_meter_key(self):
        purchase = self.env["smartpm.credit.purchase"].search([], limit=1)
        meter = purchase.meter_id
        for model, record, fields in (
            ("smartpm.credit.purchase", purchase, ["token"]),
            ("smartpm.meter", meter, ["token_key"]),
            ("smartpm.meter", meter, ["auth_key"]),
            ("smartpm.meter", meter, ["encryption_key"]),
        ):
            with self.assertRaises(AccessError, msg=f"{model} {fields}"):
                self.env[model].with_user(self.cashier).browse(record.id).read(fields)
        # the cashier still reads what the till needs
        self.assertEqual(
            self.env["smartpm.credit.purchase"].with_user(self.cashier).browse(purchase.id).name,
            purchase.name,
        )
