from psycopg2 import IntegrityError

from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import SmartpmCase


@tagged("post_install", "-at_install")
class TestMeter(SmartpmCase):
    def test_duplicate_serial_is_refused(self):
        self._meter("DUP-1")
        with mute_logger("odoo.sql_db"), self.assertRaises(IntegrityError), self.cr.savepoint():
            self._meter("dup-1")

    def test_malformed_serial_is_refused(self):
        with self.assertRaises(ValidationError):
            self._meter("a b")

    def test_reassign_closes_old_and_opens_new_assignment(self):
        alice, bob = self._tenant("Alice"), self._tenant("Bob")
        meter = self._meter("MOVE-1", tenant_id=alice.id)
        meter.tenant_id = bob
        history = meter.assignment_ids.sorted("id")
        self.assertEqual(history.tenant_id.ids, [alice.id, bob.id])
        self.assertTrue(history[0].date_end)
        self.assertFalse(history[1].date_end)
        self.assertEqual(alice.meter_count, 0)
        self.assertEqual(bob.meter_ids, meter)

    def test_writing_same_tenant_keeps_history(self):
        alice = self._tenant("Alice")
        meter = self._meter("SAME-1", tenant_id=alice.id)
        meter.write({"tenant_id": alice.id, "note": "unchanged tenant"})
        self.assertEqual(len(meter.assignment_ids), 1)

    def test_one_tenant_holds_several_meters(self):
        alice = self._tenant("Alice")
        meters = self._meter("MULTI-1", tenant_id=alice.id) | self._meter(
            "MULTI-2", tenant_id=alice.id
        )
        self.assertEqual(alice.meter_ids, meters)
        self.assertEqual(alice.meter_count, 2)

    def test_second_open_assignment_is_refused_by_database(self):
        alice, bob = self._tenant("Alice"), self._tenant("Bob")
        meter = self._meter("ONE-1", tenant_id=alice.id)
        with mute_logger("odoo.sql_db"), self.assertRaises(IntegrityError), self.cr.savepoint():
            self.env["smartpm.meter.assignment"].create({"meter_id": meter.id, "tenant_id": bob.id})
            self.env.flush_all()

    def test_meter_with_history_is_archived_not_deleted(self):
        meter = self._meter("HIST-1", tenant_id=self._tenant("Alice").id)
        with self.assertRaisesRegex(UserError, "archive or decommission"):
            meter.unlink()
        meter.action_archive()
        self.assertFalse(meter.active)
        self.assertTrue(meter.exists())

    def test_meter_without_history_can_be_deleted(self):
        meter = self._meter("NEW-1")
        meter.unlink()
        self.assertFalse(meter.exists())

    def test_decommission_releases_tenant_and_keeps_history(self):
        alice = self._tenant("Alice")
        meter = self._meter("DEC-1", tenant_id=alice.id)
        meter.action_activate()
        meter.action_decommission()
        self.assertEqual(meter.state, "decommissioned")
        self.assertFalse(meter.active)
        self.assertFalse(meter.tenant_id)
        self.assertTrue(meter.assignment_ids.date_end)
        with self.assertRaisesRegex(UserError, "decommissioned meter"):
            meter.tenant_id = alice

    def test_tcp_meter_needs_host_and_port(self):
        with self.assertRaisesRegex(ValidationError, "needs a host"):
            self._meter("TCP-1", host=False)

    def test_serial_meter_needs_device_and_uses_hdlc(self):
        with self.assertRaisesRegex(ValidationError, "needs a device"):
            self._meter("SER-1", connection_type="serial")
        meter = self._meter("SER-2", connection_type="serial", device="/dev/ttyUSB0")
        self.assertEqual(meter.framing, "hdlc")

    def test_authentication_settings_are_validated(self):
        with self.assertRaisesRegex(ValidationError, "needs a password"):
            self._meter("LLS-1", auth="lls")
        with self.assertRaisesRegex(ValidationError, "32 hexadecimal"):
            self._meter("HLS-1", auth="hls_gmac", auth_key="XYZ")
        meter = self._meter(
            "HLS-2",
            auth="hls_gmac",
            auth_key="00112233445566778899AABBCCDDEEFF",
            encryption_key="000102030405060708090A0B0C0D0E0F",
            system_title="4D4D4D0000BC614E",
        )
        self.assertEqual(meter.auth, "hls_gmac")

    def test_thresholds_are_consistent(self):
        with mute_logger("odoo.sql_db"), self.assertRaises(IntegrityError), self.cr.savepoint():
            self._meter("THR-1", low_credit_kwh=1.0, trip_kwh=2.0)
            self.env.flush_all()

    def test_meter_inherits_grid_from_transformer(self):
        meter = self._meter("GRID-1")
        self.assertEqual(meter.line_id, self.line)
        self.assertEqual(meter.site_id, self.site)
        self.assertEqual(self.transformer.meter_count, 1)
