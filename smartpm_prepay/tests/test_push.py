"""DLMS pushes of meters in push mode (services/push.py): authenticated, decrypted and
stored by Odoo, refused when forged, replayed or unknown; heartbeats and comm-lost; the
set_push job that follows the meter's push fields. The pushes are built here with
`cryptography` the way a meter ciphers them (general-glo-ciphering, security suite 0);
the simulator's own pushes reach Odoo in tests/test_e2e_push.py."""

from datetime import datetime, timedelta

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from odoo import api
from odoo.exceptions import AccessError, ValidationError
from odoo.tests import new_test_user, tagged

from ..services import push
from .common import SmartpmCase

EKEY = "000102030405060708090A0B0C0D0E0F"
AKEY = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"
TITLE = b"PSH00001"
BRIDGE_GROUPS = "base.group_user,smartpm_prepay.group_bridge_api"


def axdr_time(t):
    return bytes([0x09, 12, t.year >> 8, t.year & 0xFF, t.month, t.day, t.isoweekday(), t.hour,
                  t.minute, t.second, 0, 0, 0, 0])  # fmt: skip


def event_body(serial, t, code, fraud=True, credit_wh=42000):
    setup = push.PUSH_FRAUD_EVENTS if fraud else push.PUSH_STANDARD_EVENTS
    return (
        bytes([0x02, 6, 0x09, 6])
        + setup
        + bytes([0x09, len(serial)])
        + serial.encode()
        + axdr_time(t)
        + bytes([0x11, code, 0x05])
        + credit_wh.to_bytes(4, "big", signed=True)
        + bytes([0x03, 1])
    )


def heartbeat_body(serial, t, credit_wh=42000, energy_wh=1234):
    return (
        bytes([0x02, 6, 0x09, 6])
        + push.PUSH_HEARTBEAT
        + bytes([0x09, len(serial)])
        + serial.encode()
        + axdr_time(t)
        + bytes([0x05])
        + credit_wh.to_bytes(4, "big", signed=True)
        + bytes([0x06])
        + energy_wh.to_bytes(4, "big")
        + bytes([0x03, 0])
    )


def cipher(body, counter, title=TITLE, ekey=EKEY, akey=AKEY):
    """A general-glo-ciphering DataNotification, as a meter sends it."""
    plain = bytes([0x0F, 0x00, 0x00, 0x00, 0x01, 0x00]) + body
    sc = 0x30
    enc = Cipher(
        algorithms.AES(bytes.fromhex(ekey)), modes.GCM(title + counter.to_bytes(4, "big"))
    ).encryptor()
    enc.authenticate_additional_data(bytes([sc]) + bytes.fromhex(akey))
    ct = enc.update(plain) + enc.finalize() + enc.tag[:12]
    rest = bytes([sc]) + counter.to_bytes(4, "big") + ct
    return bytes([0xDB, 8]) + title + bytes([len(rest)]) + rest


class PushCase(SmartpmCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.bridge = new_test_user(cls.env, "t_push_bridge", groups=BRIDGE_GROUPS)
        cls.meter = cls._push_meter(TITLE, push_heartbeat_s=900)
        cls.other = cls._meter("PSH00002", state="active")
        cls.t = datetime(2026, 11, 30, 10, 15, 7)
        cls._clear_job_queue()

    @classmethod
    def _push_meter(cls, title, **vals):
        """A meter in push mode whose serial is its system title (keys EKEY, AKEY)."""
        return cls._meter(
            title.decode(),
            state="active",
            auth="hls_gmac",
            encryption_key=EKEY,
            auth_key=AKEY,
            system_title=title.hex().upper(),
            push_enabled=True,
            push_destination="listener.example.com:4059",
            **vals,
        )

    def _send(self, *apdus, user=None):
        jobs = self.env["smartpm.meter.job"].with_user(user or self.bridge)
        return jobs.push_ingest("listener-1", [{"apdu": a.hex()} for a in apdus])

    def _alarms(self, alarm_type="cover_open"):
        return self.env["smartpm.alarm"].search(
            [("meter_id", "=", self.meter.id), ("alarm_type", "=", alarm_type)]
        )

    def _state(self):
        self.env.invalidate_all()
        m = self.meter.sudo()
        return (m.push_invocation_counter, m.push_last_at, len(m.alarm_ids), len(m.reading_ids))


@tagged("post_install", "-at_install")
class TestPushIngest(PushCase):
    def test_a_cover_open_push_is_an_alarm_and_the_meter_is_seen(self):
        [answer] = self._send(cipher(event_body("PSH00001", self.t, 40), 7))
        self.assertEqual(answer, {"ok": True, "serial": "PSH00001", "events": 1, "readings": 0})
        alarm = self._alarms()
        self.assertEqual(len(alarm), 1)
        self.assertEqual(alarm.meter_time, self.t)
        self.assertEqual(alarm.state, "new")
        self.env.invalidate_all()
        self.assertEqual(self.meter.sudo().push_invocation_counter, 7)
        self.assertEqual(self.meter.online_state, "online")
        self.assertTrue(self.meter.push_last_at)
        self.assertAlmostEqual(self.meter.credit_kwh, 42.0)

    def test_the_same_event_read_later_from_the_log_adds_nothing(self):
        self._send(cipher(event_body("PSH00001", self.t, 40), 8))
        from ..services import ingest

        new = ingest.ingest(
            self.env,
            [],
            [{"meter_id": self.meter.id, "log": "fraud", "code": 40,
              "time": self.t.isoformat() + ".37Z"}],
        )  # fmt: skip
        self.assertEqual(new["events"], 0)
        self.assertEqual(len(self._alarms()), 1)

    def test_a_batch_of_many_meters_is_one_create_each_event_once_told_once(self):
        owner = new_test_user(
            self.env, "t_push_owner", groups="smartpm_prepay.group_manager", email="o@ex.com"
        )
        owner.partner_id.mobile = "+32456010203"
        self.env["smartpm.alarm.notify.rule"].create(
            {
                "company_id": self.meter.company_id.id,
                "alarm_type": "cover_open",
                "user_ids": [(6, 0, owner.ids)],
                "notify_live": True,
                "notify_email": True,
                "notify_sms": True,
            }
        )
        titles = [f"PSB{i:05d}".encode() for i in range(4)]
        meters = self.meter
        for title in titles:
            meters |= self._push_meter(title)
        apdus = [cipher(event_body("PSH00001", self.t, 40), 20)]
        apdus += [cipher(event_body(t.decode(), self.t, 40), 20, title=t) for t in titles]
        # the meter tried again (the head end did not answer): the same event, a new counter
        apdus.append(cipher(event_body("PSB00000", self.t, 40), 21, title=titles[0]))
        Alarm = type(self.env["smartpm.alarm"])
        creates = []
        original = Alarm.create

        @api.model_create_multi
        def counting(records, vals_list):
            creates.append(len(vals_list))
            return original(records, vals_list)

        self.patch(Alarm, "create", counting)
        answers = self._send(*apdus)
        self.assertTrue(all(a["ok"] for a in answers), answers)
        self.assertEqual(creates, [5])  # one create for the batch, the repeat left out
        # the same events again in a later batch (pushed again, or read from the log)
        self._send(*(cipher(event_body(t.decode(), self.t, 40), 30, title=t) for t in titles))
        self.assertEqual(creates, [5, 0])
        alarms = self.env["smartpm.alarm"].search([("meter_id", "in", meters.ids)])
        self.assertEqual(sorted(alarms.meter_id.ids), sorted(meters.ids))
        logs = (
            self.env["smartpm.notification.log"]
            .sudo()
            .search([("res_model", "=", "smartpm.alarm"), ("res_id", "in", alarms.ids)])
        )
        self.assertEqual(len(logs), 15)  # live, e-mail, SMS: once per alarm
        self.assertEqual(
            {(lg.res_id, lg.channel) for lg in logs},
            {(a.id, c) for a in alarms for c in ("live", "email", "sms")},
        )
        self.assertEqual(
            len(self.env["sms.sms"].sudo().search([("partner_id", "=", owner.partner_id.id)])), 5
        )
        self.assertTrue(all(lg.mail_id for lg in logs if lg.channel == "email"))

    def test_a_heartbeat_stores_readings_and_moves_credit_and_relay(self):
        [answer] = self._send(cipher(heartbeat_body("PSH00001", self.t, credit_wh=-500), 9))
        self.assertTrue(answer["ok"])
        readings = self.meter.reading_ids
        self.assertEqual(
            sorted((r.obis, r.value, r.source) for r in readings),
            [("0.0.19.10.0.255", -500.0, "push"), ("1.0.1.8.0.255", 1234.0, "push")],
        )
        self.assertEqual(self.meter.relay_state, "disconnected")
        self.assertAlmostEqual(self.meter.credit_kwh, -0.5)

    def test_a_bad_mac_is_refused_and_nothing_changes(self):
        apdu = bytearray(cipher(event_body("PSH00001", self.t, 40), 10))
        apdu[-1] ^= 0x01
        before = self._state()
        [answer] = self._send(bytes(apdu))
        self.assertEqual(answer, {"ok": False, "error": push.NOT_AUTHENTICATED})
        self.assertEqual(self._state(), before)

    def test_a_push_under_other_keys_is_refused(self):
        forged = cipher(event_body("PSH00001", self.t, 40), 11, ekey=AKEY, akey=EKEY)
        before = self._state()
        self.assertFalse(self._send(forged)[0]["ok"])
        self.assertEqual(self._state(), before)

    def test_an_unknown_system_title_gets_the_same_answer_and_nothing_changes(self):
        before = self._state()
        [answer] = self._send(cipher(event_body("PSH00001", self.t, 40), 12, title=b"NOBODY00"))
        self.assertEqual(answer, {"ok": False, "error": push.NOT_AUTHENTICATED})
        self.assertEqual(self._state(), before)
        domain = [("alarm_type", "=", "cover_open"), ("meter_time", "=", self.t)]
        self.assertFalse(self.env["smartpm.alarm"].search(domain))

    def test_a_meter_not_in_push_mode_is_refused(self):
        self.meter.push_enabled = False
        [answer] = self._send(cipher(event_body("PSH00001", self.t, 40), 13))
        self.assertFalse(answer["ok"])
        self.assertFalse(self._alarms())

    def test_a_replayed_counter_is_refused(self):
        first = cipher(event_body("PSH00001", self.t, 40), 20)
        later = cipher(event_body("PSH00001", self.t + timedelta(minutes=1), 91), 19)
        answers = self._send(first, first, later)
        self.assertEqual([a["ok"] for a in answers], [True, False, False])
        self.assertEqual(answers[1]["error"], push.REPLAYED)
        self.assertEqual(len(self._alarms()), 1)
        self.assertFalse(self._alarms("over_current"))
        self.env.invalidate_all()
        self.assertEqual(self.meter.sudo().push_invocation_counter, 20)

    def test_a_push_naming_another_meter_in_its_body_is_refused(self):
        [answer] = self._send(cipher(event_body("PSH00002", self.t, 40), 30))
        self.assertFalse(answer["ok"])
        self.assertFalse(self.env["smartpm.alarm"].search([("meter_id", "=", self.other.id)]))
        self.assertFalse(self._alarms())

    def test_junk_is_answered_not_a_push(self):
        [answer] = (
            self.env["smartpm.meter.job"]
            .with_user(self.bridge)
            .push_ingest("listener-1", [{"apdu": "zz"}])
        )
        self.assertFalse(answer["ok"])

    def test_only_bridges_may_forward_pushes(self):
        cashier = new_test_user(self.env, "t_push_cashier", groups="smartpm_prepay.group_cashier")
        before = self._state()
        with self.assertRaises(AccessError):
            self._send(cipher(event_body("PSH00001", self.t, 40), 40), user=cashier)
        self.assertEqual(self._state(), before)


@tagged("post_install", "-at_install")
class TestHeartbeats(PushCase):
    def _check(self, now):
        return self.env["smartpm.meter"]._cron_check_heartbeats(now=now)

    def test_a_silent_push_meter_is_comm_lost_and_the_next_push_clears_it(self):
        self._send(cipher(heartbeat_body("PSH00001", self.t), 50))
        last = self.meter.push_last_at
        self.assertFalse(self._check(last + timedelta(seconds=900 + 119)))
        lost = self._check(last + timedelta(seconds=900 + 121))
        self.assertEqual(lost, self.meter)
        alarm = self._alarms("comm_lost")
        self.assertEqual((len(alarm), alarm.state), (1, "new"))
        self.assertEqual(self.meter.online_state, "offline")
        self.assertFalse(self._check(last + timedelta(seconds=5000)))  # one alarm, not more
        self.assertEqual(len(self._alarms("comm_lost")), 1)
        self._send(cipher(heartbeat_body("PSH00001", self.t + timedelta(minutes=30)), 51))
        self.assertEqual(self._alarms("comm_lost").state, "cleared")
        self.assertEqual(self.meter.online_state, "online")

    def test_a_meter_with_windows_may_be_silent_for_its_longest_closed_gap(self):
        self.meter.push_windows = "06:00-08:00, 12:00-13:00"  # closed from 13:00 to 06:00
        self._send(cipher(heartbeat_body("PSH00001", self.t), 70))
        last = self.meter.push_last_at
        allowed = timedelta(seconds=900 + 120, hours=17)
        self.assertFalse(self._check(last + timedelta(seconds=900 + 121)))
        self.assertFalse(self._check(last + allowed - timedelta(seconds=1)))
        self.assertEqual(self._check(last + allowed + timedelta(seconds=1)), self.meter)

    def test_the_margin_is_a_setting(self):
        self.env["ir.config_parameter"].sudo().set_param("smartpm_prepay.push_margin_s", "10")
        self._send(cipher(heartbeat_body("PSH00001", self.t), 60))
        self.assertEqual(self._check(self.meter.push_last_at + timedelta(seconds=911)), self.meter)

    def test_meters_in_push_mode_get_no_pings(self):
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE smartpm_meter SET last_seen = NULL WHERE id IN %s",
            (tuple((self.meter | self.other).ids),),
        )
        self.env.invalidate_all()
        jobs = self.env["smartpm.meter"]._cron_queue_pings()
        self.assertIn(self.other, jobs.meter_id)
        self.assertNotIn(self.meter, jobs.meter_id)


@tagged("post_install", "-at_install")
class TestPushSetupJob(SmartpmCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.meter = cls._meter(
            "PSH00010",
            state="active",
            auth="hls_gmac",
            system_title="5053483030303130",
        )
        cls._clear_job_queue()

    def _jobs(self, state="pending"):
        return self.env["smartpm.meter.job"].search(
            [("meter_id", "=", self.meter.id), ("job_type", "=", "set_push"), ("state", "=", state)]
        )

    def test_turning_push_on_queues_set_push_and_a_change_supersedes_it(self):
        self.meter.write({"push_enabled": True, "push_destination": "10.0.0.5:4059"})
        job = self._jobs()
        self.assertEqual(
            job.payload,
            {"destination": "10.0.0.5:4059", "heartbeat_s": 900, "retries": 10,
             "repetition_delay_s": 30, "randomisation_s": 0, "windows": []},
        )  # fmt: skip
        self.assertTrue(self.meter.push_enabled_at)
        self.meter.push_heartbeat_s = 300
        self.assertEqual(self._jobs().payload["heartbeat_s"], 300)
        self.assertEqual(len(self._jobs()), 1)
        self.assertEqual(job.state, "cancelled")
        self.meter.push_enabled = False
        self.assertEqual(self._jobs().payload["destination"], "")
        self.assertEqual(self._jobs().payload["heartbeat_s"], 0)

    def test_communication_windows_are_set_by_set_push(self):
        self.meter.write(
            {
                "push_enabled": True,
                "push_destination": "10.0.0.5:4059",
                "push_windows": "18:00-20:00; 06:00-08:00, 23:30-24:00",
            }
        )
        self.assertEqual(self._jobs().payload["windows"], [[360, 480], [1080, 1200], [1410, 1440]])
        job = self._jobs()
        self.meter.push_windows = ""  # any time again: a new job, the pending one superseded
        self.assertEqual(self._jobs().payload["windows"], [])
        self.assertEqual(job.state, "cancelled")
        self.assertEqual(
            push.format_windows([[360, 480], [1410, 1440]]), "06:00-08:00, 23:30-24:00"
        )

    def test_bad_communication_windows_are_refused_and_nothing_is_queued(self):
        self.meter.write({"push_enabled": True, "push_destination": "10.0.0.5:4059"})
        before = self._jobs()
        for bad in (
            "22:00-02:00",  # across midnight: two windows
            "06:00-08:00, 07:00-09:00",  # overlapping
            "6h-8h",
            "08:00-08:00",
            "24:00-24:30",
            ", ".join(f"{h:02d}:00-{h:02d}:30" for h in range(9)),  # nine
        ):
            with self.assertRaises(ValidationError) as exc:
                self.meter.write({"push_windows": bad})
            self.assertIn("PSH00010", str(exc.exception))
            self.assertFalse(self.meter.push_windows)
            self.assertEqual(self._jobs(), before)

    def test_a_meter_created_in_push_mode_is_told_at_once(self):
        meter = self._meter(
            "PSH00013",
            state="active",
            auth="hls_gmac",
            system_title="5053483030303133",
            push_enabled=True,
            push_destination="10.0.0.5:4059",
        )
        job = self.env["smartpm.meter.job"].search(
            [("meter_id", "=", meter.id), ("job_type", "=", "set_push")]
        )
        self.assertEqual(job.payload["destination"], "10.0.0.5:4059")
        self.assertTrue(meter.push_enabled_at)

    def test_two_meters_in_push_mode_cannot_share_a_system_title(self):
        self.meter.write({"push_enabled": True, "push_destination": "10.0.0.5:4059"})
        twin = self._meter(
            "PSH00014", state="active", auth="hls_gmac", system_title="5053483030303130"
        )
        with self.assertRaises(ValidationError) as exc:
            twin.write({"push_enabled": True, "push_destination": "10.0.0.5:4059"})
        self.assertIn("PSH00010", str(exc.exception))
        self.assertFalse(twin.push_enabled)

    def test_an_unchanged_write_queues_nothing(self):
        self.meter.write({"push_enabled": True, "push_destination": "10.0.0.5:4059"})
        self._jobs().job_type  # noqa: B018
        before = self._jobs()
        self.meter.write({"push_destination": "10.0.0.5:4059"})
        self.assertEqual(self._jobs(), before)

    def test_push_mode_needs_keys_a_system_title_and_a_destination(self):
        with self.assertRaises(ValidationError):
            self.meter.write({"push_enabled": True, "push_destination": "no port"})
        plain = self._meter("PSH00011", state="active")
        with self.assertRaises(ValidationError):
            plain.write({"push_enabled": True, "push_destination": "10.0.0.5:4059"})
        with self.assertRaises(ValidationError):
            self.meter.write({"push_heartbeat_s": -1})
        self.assertFalse(self._jobs())

    def test_event_logs_of_push_meters_are_read_daily_only(self):
        self.meter.write({"push_enabled": True, "push_destination": "10.0.0.5:4059"})
        polled = self._meter("PSH00012", state="active")
        jobs = self.env["smartpm.meter"]._cron_queue_event_reads()
        reads = jobs.filtered(lambda j: j.job_type == "read_events")
        self.assertIn(polled, reads.meter_id)
        mine = reads.filtered(lambda j: j.meter_id == self.meter)
        self.assertEqual(len(mine), 1)
        self.assertIn("events:push:1440:", mine.idempotency_key)
        again = self.env["smartpm.meter"]._cron_queue_event_reads()
        self.assertNotIn(self.meter, again.meter_id)
