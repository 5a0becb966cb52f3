"""Meter profiles (issue 19 §3): validation that names the profile, the object map in the
jobs the bridge claims, the SmartPM profile as every meter's default, and who may do what."""

import contextlib

from odoo import Command
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import new_test_user, tagged

from ..services import meter_profile
from .common import SmartpmCase

VENDOR_CODES = {
    "credit": "0.128.96.50.0.255",
    "relay": "0.1.96.3.10.255",
    "token_gateway": "0.128.96.51.0.255",
    "limiter": "0.1.17.0.0.255",
}


@tagged("post_install", "-at_install")
class TestMeterProfile(SmartpmCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Profile = cls.env["smartpm.meter.profile"]
        cls.smartpm = cls.env.ref("smartpm_prepay.meter_profile_smartpm")
        cls.cashier = new_test_user(
            cls.env, "t_prof_cashier", groups="smartpm_prepay.group_cashier"
        )
        cls.operator = new_test_user(cls.env, "t_prof_op", groups="smartpm_prepay.group_operator")
        cls.bridge = new_test_user(
            cls.env, "t_prof_bridge", groups="base.group_user,smartpm_prepay.group_bridge_api"
        )
        cls._clear_job_queue()

    def _vendor(self, name="Vendor PM-3", **vals):
        lines = []
        for line in meter_profile.smartpm_lines():
            line = dict(line, obis=VENDOR_CODES.get(line["function"], line["obis"]))
            lines.append(Command.create(line))
        return self.Profile.create(
            {"name": name, "hls_challenge_length": 16, "object_ids": lines, **vals}
        )

    @contextlib.contextmanager
    def _refused(self, pattern):
        """A ValidationError whose message matches ``pattern``; what the block wrote is rolled
        back (Odoo's assertRaises, with its savepoint)."""
        with self.assertRaises(ValidationError) as cm:
            yield cm
        self.assertRegex(str(cm.exception), pattern)

    # ---------------------------------------------------------------- defaults
    def test_smartpm_profile_holds_the_contract_and_is_every_meters_default(self):
        codes = {o.function: o.obis for o in self.smartpm.object_ids}
        self.assertEqual(codes["credit"], "0.0.19.10.0.255")
        self.assertEqual(codes["relay"], "0.0.96.3.10.255")
        self.assertEqual(
            len(self.smartpm.object_ids.filtered(lambda o: o.function == "push_setup")), 3
        )
        meter = self._meter("PROF-DEF-1")
        self.assertEqual(meter.profile_id, self.smartpm)
        self.assertFalse(self.env["smartpm.meter"].search_count([("profile_id", "=", False)]))

    def test_an_upgrade_adds_a_new_function_once_and_never_a_removed_line_again(self):
        def special_days():
            return self.smartpm.object_ids.filtered(lambda o: o.function == "tou_special_days")

        # a profile made before the contract had special days: the upgrade adds the line
        special_days().unlink()
        self.smartpm.offered_functions = False
        self.Profile._add_new_smartpm_functions()  # what data/meter_profile_data.xml runs
        self.assertEqual(special_days().obis, "0.0.11.0.0.255")
        # the owner removes it on purpose: the next upgrades leave it out
        special_days().unlink()
        self.Profile._add_new_smartpm_functions()
        self.Profile._add_new_smartpm_functions()
        self.assertFalse(special_days())
        self.assertIn("credit", self.smartpm.object_ids.mapped("function"))

    def test_a_new_profile_starts_from_the_smartpm_map(self):
        profile = self.Profile.create({"name": "Blank start"})
        self.assertEqual(
            sorted(profile._object_lines(), key=str),
            sorted(self.smartpm._object_lines(), key=str),
        )

    def test_a_meter_of_a_profile_takes_its_connection_defaults(self):
        profile = self._vendor(framing="hdlc", server_physical_address=33)
        meter = self._meter("PROF-DEF-2", profile_id=profile.id)
        self.assertEqual((meter.framing, meter.server_physical_address), ("hdlc", 33))
        own = self._meter("PROF-DEF-3", profile_id=profile.id, framing="wrapper")
        self.assertEqual(own.framing, "wrapper")  # what the meter says wins

    # ---------------------------------------------------------------- validation
    def test_malformed_obis_is_refused_naming_the_profile(self):
        profile = self._vendor("Vendor Bad OBIS")
        credit = profile.object_ids.filtered(lambda o: o.function == "credit")
        with self._refused(r"(?s)Vendor Bad OBIS.*Credit.*'0\.0\.19\.300\.0\.255'") as cm:
            credit.write({"obis": "0.0.19.300.0.255"})
        self.assertNotIn("missing", str(cm.exception))  # the code is wrong, not the line
        credit.invalidate_recordset()
        self.assertEqual(credit.obis, VENDOR_CODES["credit"])

    def test_missing_required_object_is_refused(self):
        profile = self._vendor("Vendor No Relay")
        relay = profile.object_ids.filtered(lambda o: o.function == "relay")
        with self._refused(r"(?s)Vendor No Relay.*Relay.*missing"):
            relay.unlink()
        self.assertTrue(relay.exists())
        with self._refused("(?s)Vendor Lean.*Token gateway.*missing"):
            self.Profile.create(
                {
                    "name": "Vendor Lean",
                    "object_ids": [
                        Command.create({"function": f, "obis": o, "ic": ic})
                        for f, o, ic in (
                            ("credit", "0.0.19.10.0.255", 112),
                            ("relay", "0.0.96.3.10.255", 70),
                            ("clock", "0.0.1.0.0.255", 8),
                        )
                    ],
                }
            )

    def test_wrong_class_twice_listed_and_shared_codes_are_refused(self):
        profile = self._vendor("Vendor Clash")
        credit = profile.object_ids.filtered(lambda o: o.function == "credit")
        with self._refused("interface class 112"):
            credit.write({"ic": 3})
        with self._refused("both at 0.1.96.3.10.255"):
            credit.write({"obis": VENDOR_CODES["relay"]})
        with self._refused("listed twice"):
            profile.write(
                {
                    "object_ids": [
                        Command.create({"function": "credit", "obis": "0.9.9.9.9.255", "ic": 112})
                    ]
                }
            )
        with self._refused("8 to 64"):
            profile.write({"hls_challenge_length": 65})
        profile.invalidate_recordset()
        self.assertEqual((credit.obis, credit.ic), (VENDOR_CODES["credit"], 112))
        self.assertEqual(len(profile.object_ids.filtered(lambda o: o.function == "credit")), 1)
        self.assertEqual(profile.hls_challenge_length, 16)

    # ---------------------------------------------------------------- payload
    def test_claimed_job_carries_the_profiles_map_and_challenge_length(self):
        profile = self._vendor()
        meter = self._meter("PROF-JOB-1", profile_id=profile.id, state="active")
        meter._enqueue_job("disconnect", {})
        (job,) = self.env["smartpm.meter.job"].with_user(self.bridge).claim("b-prof", 5, 60)
        sent = job["meter"]
        self.assertEqual(sent["profile"], "Vendor PM-3")
        self.assertEqual(sent["hls_challenge_length"], 16)
        self.assertEqual(sent["token_format"], "smartpm")
        self.assertEqual(sent["object_map"]["relay"], {"obis": "0.1.96.3.10.255", "ic": 70})
        self.assertEqual(
            sent["object_map"]["credit"], {"obis": "0.128.96.50.0.255", "ic": 112, "attribute": 2}
        )
        self.assertEqual(len(sent["object_map"]["push_setup"]), 3)

    def test_jobs_of_one_claim_each_carry_their_own_profiles_map(self):
        vendor = self._vendor()
        meters = [
            self._meter(f"PROF-JOB-M{n}", profile_id=profile.id, state="active")
            for n, profile in enumerate((vendor, self.smartpm, vendor, self.smartpm))
        ]
        for meter in meters:
            meter._enqueue_job("disconnect", {})
        jobs = self.env["smartpm.meter.job"].with_user(self.bridge).claim("b-prof", 10, 60)
        by_serial = {j["meter"]["serial_number"]: j["meter"] for j in jobs}
        for n, profile in enumerate((vendor, self.smartpm, vendor, self.smartpm)):
            sent = by_serial[f"PROF-JOB-M{n}"]
            self.assertEqual(sent["profile"], profile.name)
            self.assertEqual(sent["object_map"], meter_profile.object_map(profile._object_lines()))
        self.assertEqual(by_serial["PROF-JOB-M0"]["object_map"]["relay"]["obis"], "0.1.96.3.10.255")
        self.assertEqual(by_serial["PROF-JOB-M1"]["object_map"]["relay"]["obis"], "0.0.96.3.10.255")

    def test_a_per_claim_answer_carries_each_map_once_and_every_job_its_key(self):
        """Two profiles, five jobs: two maps in the answer, the first job of each key holds
        it, and each job's key resolves to its own profile's map."""
        vendor = self._vendor()
        profiles = (vendor, self.smartpm, vendor, self.smartpm, vendor)
        for n, profile in enumerate(profiles):
            meter = self._meter(f"PROF-PC-{n}", profile_id=profile.id, state="active")
            meter._enqueue_job("disconnect", {})
        jobs = (
            self.env["smartpm.meter.job"]
            .with_user(self.bridge)
            .claim("b-prof", 10, 60, {"object_maps": "per_claim"})
        )
        self.assertEqual(len(jobs), 5)
        maps = {}  # what a bridge knows, reading the answer in order
        for job in jobs:
            sent = job["meter"]
            key = sent["object_map_key"]
            if "object_map" in sent:
                self.assertNotIn(key, maps, "a map is sent once per claim")
                maps[key] = sent["object_map"]
            self.assertIn(key, maps, "a job's map comes with the first job of its key")
        self.assertEqual(len(maps), 2)
        self.assertEqual(sum("object_map" in j["meter"] for j in jobs), 2)
        by_serial = {j["meter"]["serial_number"]: j["meter"] for j in jobs}
        for n, profile in enumerate(profiles):
            sent = by_serial[f"PROF-PC-{n}"]
            self.assertEqual(sent["profile"], profile.name)
            self.assertEqual(
                maps[sent["object_map_key"]], meter_profile.object_map(profile._object_lines())
            )
        self.assertEqual(
            maps[by_serial["PROF-PC-0"]["object_map_key"]]["relay"]["obis"], "0.1.96.3.10.255"
        )
        self.assertEqual(
            maps[by_serial["PROF-PC-1"]["object_map_key"]]["relay"]["obis"], "0.0.96.3.10.255"
        )

    def test_a_profile_edited_gets_a_new_map_key(self):
        profile = self._vendor()
        Job = self.env["smartpm.meter.job"].with_user(self.bridge)
        self._meter("PROF-PC-K1", profile_id=profile.id, state="active")._enqueue_job("ping", {})
        (first,) = Job.claim("b-prof", 5, 60, {"object_maps": "per_claim"})
        relay = profile.object_ids.filtered(lambda o: o.function == "relay")
        relay.obis = "0.2.96.3.10.255"
        self._meter("PROF-PC-K2", profile_id=profile.id, state="active")._enqueue_job("ping", {})
        (second,) = Job.claim("b-prof", 5, 60, {"object_maps": "per_claim"})
        self.assertNotEqual(first["meter"]["object_map_key"], second["meter"]["object_map_key"])
        self.assertEqual(second["meter"]["object_map"]["relay"]["obis"], "0.2.96.3.10.255")

    def test_claim_options_other_than_known_ones_are_refused_and_nothing_is_claimed(self):
        meter = self._meter("PROF-PC-BAD", state="active")
        job = meter._enqueue_job("ping", {})
        Job = self.env["smartpm.meter.job"].with_user(self.bridge)
        for options, pattern in (
            (["object_maps"], "options must be a dict"),
            ({"object_map": "per_claim"}, "unknown option 'object_map'"),
            ({"object_maps": "per_meter"}, "object_maps takes per_job, per_claim"),
        ):
            with self.assertRaisesRegex(UserError, pattern):
                Job.claim("b-prof", 5, 60, options)
            job.invalidate_recordset()
            self.assertEqual((job.state, job.attempt_count, job.bridge_id), ("pending", 0, False))

    def test_a_meter_without_profile_sends_no_map(self):
        meter = self._meter("PROF-JOB-2", state="active")
        meter.profile_id = False
        values = meter.sudo()._prepare_bridge_values()
        self.assertNotIn("object_map", values)
        self.assertNotIn("hls_challenge_length", values)  # the bridge's default (32)

    # ---------------------------------------------------------------- access
    def test_cashier_and_operator_read_profiles_but_cannot_change_them(self):
        profile = self._vendor("Vendor Locked")
        for user in (self.cashier, self.operator):
            mine = profile.with_user(user)
            self.assertEqual(mine.name, "Vendor Locked")
            with self.assertRaises(AccessError):
                mine.write({"hls_challenge_length": 8})
            with self.assertRaises(AccessError):
                mine.object_ids[:1].write({"obis": "0.0.0.0.0.255"})
            with self.assertRaises(AccessError):
                self.Profile.with_user(user).create({"name": "Mine"})
            with self.assertRaises(AccessError):
                mine.unlink()
        profile.invalidate_recordset()
        self.assertEqual(profile.hls_challenge_length, 16)
        self.assertTrue(profile.exists())

    def test_the_owner_manages_profiles(self):
        manager = new_test_user(self.env, "t_prof_owner", groups="smartpm_prepay.group_manager")
        profile = self.Profile.with_user(manager).create({"name": "Owner's model"})
        self.assertEqual(len(profile.object_ids), len(self.smartpm.object_ids))
        credit = profile.object_ids.filtered(lambda o: o.function == "credit")
        credit.write({"obis": "0.128.96.50.0.255"})
        profile.write({"hls_challenge_length": 8})
        meter = self._meter("PROF-OWN-1", profile_id=profile.id)
        values = meter.sudo()._prepare_bridge_values()
        self.assertEqual(values["object_map"]["credit"]["obis"], "0.128.96.50.0.255")
        self.assertEqual(values["hls_challenge_length"], 8)

    def test_another_companys_profile_is_invisible(self):
        other = self.env["res.company"].create({"name": "Other Co (profiles)"})
        profile = self._vendor("Vendor Other Co", company_id=other.id)
        manager = new_test_user(
            self.env,
            "t_prof_mgr",
            groups="smartpm_prepay.group_manager",
            company_id=self.env.company.id,
        )
        found = self.Profile.with_user(manager).search([("name", "=", "Vendor Other Co")])
        self.assertFalse(found)
        self.assertTrue(profile.exists())
