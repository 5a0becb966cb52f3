"""Screens of the owner (``admin``) that no other journey opens, in the browser, on the
demo's data: a time-of-use tariff's form (versions, bands, seasons, band hours), the
standing-charge list (the demo's tariff given a daily charge, Odoo's daily job collecting
it, the bridge clearing amina's credit), the alarm notification rules, and Synchronise
clock on a meter (a job queued, shown in the meter's jobs)."""

from odoo import Command, fields
from odoo.tests import Form, tagged

from ...services import local_time, standing_charge, statement
from .common import RETRY_LATER, DemoBridgeMixin, DemoJourneyCase

MENU_ACTIONS = (
    "smartpm_prepay.action_tariff",
    "smartpm_prepay.action_standing_charge",
    "smartpm_prepay.action_alarm_notify_rule",
    "smartpm_prepay.action_meter",
    "smartpm_prepay.action_job",
)


@tagged("post_install", "-at_install")
class TestOwnerScreensJourney(DemoBridgeMixin, DemoJourneyCase):
    BRIDGE = "journey-owner-screens-bridge"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.meter = cls.env.ref("smartpm_prepay.demo_meter_01")
        cls.tenant = cls.meter.tenant_id
        cls.company = cls.meter.company_id

    def _owner_menu_actions(self):
        menus = self.env["ir.ui.menu"].with_user(self.owner).load_menus(debug=False)
        return {m["action"] for m in menus.values() if isinstance(m, dict) and m.get("action")}

    def test_the_owner_has_a_menu_to_each_screen(self):
        actions = self._owner_menu_actions()
        for xmlid in MENU_ACTIONS:
            action = self.env.ref(xmlid)
            self.assertIn(f"{action._name},{action.id}", actions, xmlid)

    # ------------------------------------------------------------------ time of use
    def _owner_makes_a_tou_tariff(self):
        """As the owner's form makes one: the tariff, then a version's bands and seasons,
        then their hours (the hours pick saved bands and seasons)."""
        env = self.env(user=self.owner)
        with Form(env["smartpm.tariff"]) as form:
            form.name = "Time of use (journey)"
            form.price_per_kwh = 0.2
        tariff = form.save()
        version = env["smartpm.tariff.tou.version"].create(
            {
                "tariff_id": tariff.id,
                "date_start": fields.Date.today(),
                "band_ids": [
                    Command.create({"name": "Off-peak", "rate": 1, "price_per_kwh": 0.10}),
                    Command.create({"name": "Peak", "rate": 2, "price_per_kwh": 0.40}),
                ],
                "season_ids": [
                    Command.create({"name": "Summer", "start_month": "4", "start_day": 1}),
                    Command.create({"name": "Winter", "start_month": "10", "start_day": 1}),
                ],
            }
        )
        off, peak = version.band_ids.sorted("rate")
        summer, winter = version.season_ids.sorted("start_month_int")
        version.write(
            {
                "rule_ids": [
                    Command.create(
                        {"season_id": summer.id, "band_id": off.id, "start_hour": 0, "end_hour": 17}
                    ),
                    Command.create(
                        {
                            "season_id": summer.id,
                            "band_id": peak.id,
                            "start_hour": 17,
                            "end_hour": 21,
                        }
                    ),
                    Command.create(
                        {
                            "season_id": summer.id,
                            "band_id": off.id,
                            "start_hour": 21,
                            "end_hour": 24,
                        }
                    ),
                    Command.create(
                        {"season_id": winter.id, "band_id": off.id, "start_hour": 0, "end_hour": 24}
                    ),
                ]
            }
        )
        tariff.pricing_mode = "tou"
        return tariff, version

    def test_owner_opens_a_tou_tariff_with_its_versions_bands_and_seasons(self):
        tariff, version = self._owner_makes_a_tou_tariff()
        self.start_tour(
            f"/odoo/action-smartpm_prepay.action_tariff/{tariff.id}",
            "smartpm_owner_tou_tariff",
            login="admin",
        )
        # what the owner saw is what the version holds (read from the tour's page)
        bands = self.env["smartpm.tariff.band"].search([("version_id", "=", version.id)])
        self.assertEqual(len(bands), 2)
        rules = version.rule_ids
        self.assertEqual(len(rules), 4)
        self.assertEqual(tariff.tou_version_ids, version)

    # ------------------------------------------------------------------ standing charges
    def _collect_amina_charge(self):
        """The owner gives amina's tariff a daily charge; Odoo's daily job charges every
        meter of it; the bridge clears amina's meter (the others' stay queued)."""
        tariff = self.meter._get_tariff()
        with Form(tariff.with_user(self.owner)) as form:
            form.standing_charge_amount = 0.5
            form.standing_charge_period = "day"
        queued = standing_charge.collect_due(self.env, self.company)["queued"]
        charge = queued.filtered(lambda c: c.meter_id == self.meter)
        self.assertEqual(len(charge), 1)
        credit = self.meter.credit_kwh

        def answer(job):
            if job.meter_id != self.meter:
                return None
            if job != charge.job_id:
                return RETRY_LATER
            return {
                "transfer_number": charge.transfer_number,
                "already_applied": False,
                "cleared_kwh": charge.kwh,
                "credit_kwh": credit - charge.kwh,
                "relay": "connected",
            }

        self._bridge_runs(answer)
        self.assertEqual(charge.state, "collected")
        return charge, queued - charge

    def test_owner_lists_the_standing_charges_the_statement_shows(self):
        charge, others = self._collect_amina_charge()
        self.assertTrue(others, "the demo's other meters on the tariff are charged too")
        Charge = self.env["smartpm.standing.charge"].with_user(self.owner)
        today = local_time.local_today(self.company)
        month = today.replace(day=1)
        # the list as the owner filters it: amina, collected, this month
        listed = Charge.search(
            [
                ("tenant_id", "=", self.tenant.id),
                ("state", "=", "collected"),
                ("period_start", ">=", month),
                ("period_start", "<=", today),
            ]
        )
        self.assertEqual(listed, charge)
        st = statement.tenant_statement(self.env(user=self.owner), self.tenant, month, today)
        lines = [x for s in st["meters"] for x in s["lines"] if x["kind"] == "standing_charge"]
        self.assertEqual([x["standing_charge_id"] for x in lines], listed.ids)
        for line, row in zip(lines, listed, strict=True):
            self.assertAlmostEqual(-line["kwh"] + line["uncovered_kwh"], row.kwh, places=3)
            self.assertAlmostEqual(line["amount"], row.amount, places=2)
            self.assertAlmostEqual(-line["value"], row.value, places=2)
        self.assertTrue(statement.is_balanced(st))
        self.start_tour(
            "/odoo/action-smartpm_prepay.action_standing_charge",
            "smartpm_owner_standing_charges",
            login="admin",
        )

    # ------------------------------------------------------------------ alarm rules
    def test_owner_opens_the_alarm_notification_rules(self):
        rules = self.env["smartpm.alarm.notify.rule"].with_user(self.owner).search([])
        self.assertIn(self.env.ref("smartpm_prepay.notify_rule_cover_open"), rules)
        self.start_tour(
            "/odoo/action-smartpm_prepay.action_alarm_notify_rule",
            "smartpm_owner_alarm_rules",
            login="admin",
        )

    # ------------------------------------------------------------------ clock
    def test_owner_synchronises_a_meters_clock(self):
        Job = self.env["smartpm.meter.job"]
        before = Job.search([("meter_id", "=", self.meter.id)])
        self.start_tour(
            f"/odoo/action-smartpm_prepay.action_meter/{self.meter.id}",
            "smartpm_owner_sync_clock",
            login="admin",
        )
        job = Job.search([("meter_id", "=", self.meter.id)]) - before
        self.assertEqual(len(job), 1)
        self.assertEqual((job.job_type, job.state), ("sync_clock", "pending"))
        self.assertFalse(job.payload, "a clock synchronisation carries no payload")
        self.assertEqual(job.create_uid, self.owner)
        # the owner sees it in the meter's jobs with their own rights
        seen = Job.with_user(self.owner).search(self.meter.action_view_jobs()["domain"])
        self.assertIn(job, seen)
