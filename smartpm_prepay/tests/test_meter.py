from datetime import timedelta

from lxml import etree
from psycopg2 import IntegrityError

from odoo import fields
from odoo.exceptions import UserError, ValidationError
from odoo.tests import Form, tagged
from odoo.tools import mute_logger
from odoo.tools.safe_eval import safe_eval

from .common import SmartpmCase


@tagged("post_install", "-at_install")
class TestMeter(SmartpmCase):
    def test_duplicate_serial_is_refused_naming_its_tenant(self):
        alice = self._tenant("Alice")
        self._meter("DUP-1", tenant_id=alice.id)
        with self.assertRaisesRegex(
            ValidationError,
            rf"^Meter DUP-1 is already registered for Alice \({alice.tenant_number}\)\.$",
        ):
            self._meter("dup-1")
        self.assertEqual(
            self.env["smartpm.meter"].search_count([("serial_number", "=", "DUP-1")]), 1
        )
        other = self._meter("DUP-2")
        with self.assertRaisesRegex(ValidationError, "Meter DUP-1 is already registered for"):
            other.serial_number = " dup-1 "
        self.assertEqual(other.serial_number, "DUP-2")

    def test_duplicate_serial_of_an_archived_meter_is_named_too(self):
        self._meter("DUP-3").action_archive()
        with self.assertRaisesRegex(
            ValidationError, r"Meter DUP-3 is already registered \(archived\)"
        ):
            self._meter("DUP-3")

    def test_duplicate_serial_warns_where_it_is_typed(self):
        alice = self._tenant("Alice")
        self._meter("DUP-4", tenant_id=alice.id)
        new = self.env["smartpm.meter"].new({"serial_number": "dup-4"})
        warning = new._onchange_serial_number()["warning"]
        self.assertEqual(
            warning["message"],
            f"Meter DUP-4 is already registered for Alice ({alice.tenant_number}).",
        )
        self.assertFalse(
            self.env["smartpm.meter"].new({"serial_number": "FREE-9"})._onchange_serial_number()
        )

    def test_database_still_refuses_a_duplicate_serial(self):
        meter = self._meter("DUP-5")
        self._meter("DUP-6")
        self.env.flush_all()
        with mute_logger("odoo.sql_db"), self.assertRaises(IntegrityError), self.cr.savepoint():
            self.env.cr.execute(
                "UPDATE smartpm_meter SET serial_number = 'DUP-6' WHERE id = %s", (meter.id,)
            )

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

    def test_new_meter_is_the_management_client_with_hls_and_random_keys(self):
        """Locked meters take commands only through HLS-GMAC on the management client: a
        meter created with its link only is configured so, and what the bridge gets for it
        holds the keys (the meter's system title comes from the meter itself)."""
        meter = self._meter("NEW-1")
        self.assertEqual((meter.auth, meter.client_address), ("hls_gmac", 1))
        self.assertFalse(meter.system_title)
        bridge = meter.sudo()._prepare_bridge_values()
        self.assertEqual((bridge["auth"], bridge["client_address"]), ("hls_gmac", 1))
        self.assertEqual(bridge["auth_key"], meter.sudo().auth_key)
        self.assertEqual(bridge["encryption_key"], meter.sudo().encryption_key)
        self.assertRegex(bridge["auth_key"], r"^[0-9A-F]{32}$")
        self.assertNotEqual(bridge["auth_key"], bridge["encryption_key"])
        self.assertIsNone(bridge["system_title"])
        self.assertEqual(bridge["invocation_counter"], "0")
        self.assertNotIn("token_key", bridge)

    def test_vendor_keys_entered_make_the_meter_commandable(self):
        vendor = {
            "auth_key": "d0d1d2d3d4d5d6d7d8d9dadbdcdddedf",
            "encryption_key": "000102030405060708090A0B0C0D0E0F",
        }
        meter = self._meter("NEW-2", **vendor)
        bridge = meter.sudo()._prepare_bridge_values()
        self.assertEqual(bridge["auth_key"].upper(), vendor["auth_key"].upper())
        self.assertEqual(bridge["encryption_key"], vendor["encryption_key"])
        self.assertEqual((bridge["auth"], bridge["client_address"]), ("hls_gmac", 1))

    def test_meter_without_authentication_is_the_public_client(self):
        meter = self._meter("PUB-1", auth="none")
        self.assertEqual(meter.client_address, 16)

    def test_hls_without_a_key_is_refused_naming_the_meter_and_the_key(self):
        meter = self._meter("HLS-3")
        before = meter.sudo().read(["auth_key", "encryption_key"])[0]
        with (
            self.assertRaisesRegex(
                ValidationError, r"^Meter HLS-3: HLS-GMAC needs the meter's Authentication key"
            ) as err,
            self.cr.savepoint(),
        ):
            meter.write({"auth_key": False})
        self.assertIn("it is empty", str(err.exception))
        with (
            self.assertRaisesRegex(
                ValidationError, r"Meter HLS-3: .*Encryption key.*12 characters long"
            ),
            self.cr.savepoint(),
        ):
            meter.write({"encryption_key": "000102030405"})
        with self.assertRaisesRegex(ValidationError, "Meter HLS-4: HLS-GMAC needs"):
            self._meter("HLS-4", encryption_key="")
        self.assertEqual(meter.sudo().read(["auth_key", "encryption_key"])[0], before)

    def test_authentication_on_the_public_client_is_refused(self):
        meter = self._meter("HLS-5")
        with (
            self.assertRaisesRegex(
                ValidationError, r"^Meter HLS-5: the public client \(16\) never authenticates"
            ),
            self.cr.savepoint(),
        ):
            meter.client_address = 16
        self.assertEqual(meter.client_address, 1)
        with self.assertRaisesRegex(ValidationError, "Meter LLS-2: the public client"):
            self._meter("LLS-2", auth="lls", auth_password="secret12", client_address=16)

    def test_system_title_is_optional_but_checked_when_given(self):
        meter = self._meter("TITLE-1")
        with self.assertRaisesRegex(ValidationError, "Meter TITLE-1: the meter system title"):
            meter.system_title = "SIM00001"
        meter.system_title = "53494d3030303031"
        self.assertEqual(meter.sudo()._prepare_bridge_values()["system_title"], "53494d3030303031")

    def test_choosing_authentication_in_the_form_moves_off_the_public_client(self):
        form = Form(self.env["smartpm.meter"])
        form.serial_number = "FORM-HLS"
        form.host = "127.0.0.1"
        form.port = 4100
        self.assertEqual((form.auth, form.client_address), ("hls_gmac", 1))
        form.auth = "none"
        form.client_address = 16
        form.auth = "hls_gmac"
        self.assertEqual(form.client_address, 1)
        meter = form.save()
        self.assertEqual((meter.auth, meter.client_address), ("hls_gmac", 1))

    def test_thresholds_are_consistent(self):
        with mute_logger("odoo.sql_db"), self.assertRaises(IntegrityError), self.cr.savepoint():
            self._meter("THR-1", low_credit_kwh=1.0, trip_kwh=2.0)
            self.env.flush_all()

    def test_meter_inherits_grid_from_transformer(self):
        meter = self._meter("GRID-1")
        self.assertEqual(meter.line_id, self.line)
        self.assertEqual(meter.site_id, self.site)
        self.assertEqual(self.transformer.meter_count, 1)

    def test_activation_date_is_set_once(self):
        meter = self._meter("ACT-1")
        self.assertEqual(meter.state, "draft")
        self.assertFalse(meter.date_activated)
        meter.action_activate()
        first = meter.date_activated
        self.assertTrue(first)
        meter.write({"state": "disconnected"})
        meter.write({"state": "active"})
        self.assertEqual(meter.date_activated, first)


@tagged("post_install", "-at_install")
class TestMeterOnlineState(SmartpmCase):
    """A meter that never answered is offline once it has been in service for longer than
    the offline threshold (the company's ping interval times its pings in a row)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.company.write({"smartpm_ping_interval_min": 60, "smartpm_comm_lost_pings": 3})

    def _aged(self, meter, hours):
        meter.date_activated = fields.Datetime.now() - timedelta(hours=hours)
        return meter

    def test_never_answered_meter_past_the_threshold_is_offline(self):
        Meter = self.env["smartpm.meter"]
        old = self._aged(self._meter("NEVER-1", state="active"), 4)
        recent = self._aged(self._meter("NEVER-2", state="active"), 2)
        seen = self._aged(self._meter("NEVER-3", state="active"), 4)
        seen.sudo().write({"online_state": "online", "last_seen": fields.Datetime.now()})
        draft = self._meter("NEVER-4")
        draft.date_activated = fields.Datetime.now() - timedelta(hours=4)
        self.assertEqual(old.online_state, "unknown")
        marked = Meter._mark_never_seen_offline()
        self.assertEqual(marked & (old | recent | seen | draft), old)
        self.assertEqual(old.online_state, "offline")
        self.assertEqual(recent.online_state, "unknown")
        self.assertEqual(seen.online_state, "online")
        self.assertEqual(draft.online_state, "unknown", "a draft meter is not in service")
        # the list's Offline filter shows it
        self.assertIn(old, Meter.search([("online_state", "=", "offline")]))

    def test_ping_cron_and_dashboard_count_never_answered_meters(self):
        dashboard = self.env["smartpm.dashboard"]
        before = dashboard.browse(dashboard.action_open()["res_id"])
        offline_before, never_before = before.meters_offline, before.meters_never_seen
        meter = self._aged(self._meter("NEVER-5", state="active"), 4)
        self.assertEqual(meter.online_state, "unknown")
        after = dashboard.browse(dashboard.action_open()["res_id"])
        self.assertEqual(meter.online_state, "offline")
        self.assertEqual(after.meters_offline, offline_before + 1)
        self.assertEqual(after.meters_never_seen, never_before + 1)
        offline = self.env["smartpm.meter"].search_count(
            [("online_state", "=", "offline"), ("state", "in", ("active", "disconnected"))]
        )
        self.assertEqual(after.meters_offline, offline)
        late = self._aged(self._meter("NEVER-6", state="active"), 5)
        self.env["smartpm.meter"]._cron_queue_pings()
        self.assertEqual(late.online_state, "offline")

    def test_meter_that_answers_is_online_again(self):
        from ..services import job_results

        meter = self._aged(self._meter("NEVER-7", state="active"), 4)
        self.env["smartpm.meter"]._mark_never_seen_offline()
        self.assertEqual(meter.online_state, "offline")
        job = meter._enqueue_job("ping", {})
        job_results.apply_result(job, {"relay": "connected"})
        self.assertEqual(meter.online_state, "online")
        self.assertTrue(meter.last_seen)

    def test_first_missed_ping_of_a_never_seen_meter_makes_it_offline(self):
        fresh = self._meter("NEVER-8", state="active")
        known = self._meter("NEVER-9", state="active")
        known.sudo().write({"online_state": "online", "last_seen": fields.Datetime.now()})
        (fresh | known)._register_missed_ping()
        self.assertEqual(fresh.online_state, "offline")
        self.assertEqual(known.online_state, "online", "a known meter has its missed pings")
        self.assertFalse(
            self.env["smartpm.alarm"].search([("meter_id", "in", (fresh | known).ids)]),
            "the comm-lost alarm waits for the company's limit",
        )


@tagged("post_install", "-at_install")
class TestMeterForm(SmartpmCase):
    """What the meter form offers, from its own view expressions (as the owner sees it)."""

    def _arch(self):
        owner = self.env.ref("base.user_admin")
        return (
            self.env["smartpm.meter"]
            .with_user(owner)
            .get_view(self.env.ref("smartpm_prepay.view_meter_form").id, "form")["arch"]
        )

    def _buttons(self, meter_values):
        arch = self._arch()
        header = etree.fromstring(arch).find(".//header")
        shown = []
        for button in header.iter("button"):
            expr = button.get("invisible")
            values = dict.fromkeys(self.env["smartpm.meter"]._fields, False)
            if not expr or not safe_eval(expr, {**values, "context": {}, **meter_values}):
                shown.append(button.get("name"))
        return shown

    def test_relay_buttons_follow_the_relay_state(self):
        base = {"id": 7, "state": "active"}
        connected = self._buttons({**base, "relay_state": "connected"})
        self.assertIn("action_disconnect", connected)
        self.assertNotIn("action_reconnect", connected)
        disconnected = self._buttons(
            {**base, "state": "disconnected", "relay_state": "disconnected"}
        )
        self.assertIn("action_reconnect", disconnected)
        self.assertNotIn("action_disconnect", disconnected)
        unknown = self._buttons({**base, "relay_state": "unknown"})
        self.assertIn("action_disconnect", unknown)
        self.assertIn("action_reconnect", unknown)

    def test_no_action_before_the_meter_exists(self):
        for state in ("draft", "active"):
            # a tenant is already chosen in the dialog of a new tenant's meter
            unsaved = {"id": False, "state": state, "relay_state": "unknown", "tenant_id": 5}
            self.assertEqual(self._buttons(unsaved), [])
        saved = self._buttons(
            {"id": 3, "state": "active", "relay_state": "unknown", "tenant_id": 5}
        )
        self.assertIn("action_sell_credit", saved)
        draft = self._buttons({"id": 3, "state": "draft", "relay_state": "unknown"})
        self.assertIn("action_activate", draft)
        self.assertNotIn("action_disconnect", draft)

    def test_draft_meter_says_it_must_be_activated(self):
        banner = etree.fromstring(self._arch()).find(".//div[@name='draft_banner']")
        self.assertIn("until it is activated", "".join(banner.itertext()))
        self.assertFalse(safe_eval(banner.get("invisible"), {"id": 3, "state": "draft"}))
        self.assertTrue(safe_eval(banner.get("invisible"), {"id": 3, "state": "active"}))
        self.assertTrue(safe_eval(banner.get("invisible"), {"id": False, "state": "draft"}))

    def test_identifiers_are_shown_without_thousands_separators(self):
        arch = etree.fromstring(self._arch())
        for name in ("port", "baudrate", "client_address", "server_logical_address"):
            node = arch.find(f".//field[@name='{name}']")
            options = safe_eval(node.get("options"), {"false": False, "true": True})
            self.assertEqual(options, {"enable_formatting": False}, name)

    def test_meter_dialog_of_a_new_tenant_shows_the_tenant(self):
        form = Form(
            self.env["res.partner"].with_context(default_is_tenant=True),
            view="smartpm_prepay.view_tenant_form",
        )
        form.name = "Dialog Tenant"
        with form.meter_ids.new() as meter:
            meter.serial_number = "DLG-1"
            meter.host = "127.0.0.1"
            self.assertEqual(meter.tenant_label, "Dialog Tenant (number given on save)")
        tenant = form.save()
        self.assertEqual(tenant.meter_ids.tenant_label, f"Dialog Tenant ({tenant.tenant_number})")
