"""The owner's journey (``admin``) on the demo's data, in the browser: the dashboard, Top
consumers and a reading task read twice. The test plays only the meter bridge (with the
demo's bridge login, as ``scripts/bridge_user.py`` makes it), reporting what meters answer.
"""

from datetime import timedelta

from dateutil.relativedelta import relativedelta
from lxml import etree

from odoo import fields
from odoo.tests import tagged
from odoo.tools.safe_eval import safe_eval

from .common import RETRY_LATER, DemoBridgeMixin, DemoJourneyCase

OBIS_CLOCK = "0.0.1.0.0.255"
OBIS_IMPORT = "1.0.1.8.0.255"
OBIS_EXPORT = "1.0.2.8.0.255"
OBIS_CREDIT = "0.0.19.10.0.255"
OBIS_RELAY = "0.0.96.3.10.255"


@tagged("post_install", "-at_install")
class TestOwnerJourney(DemoBridgeMixin, DemoJourneyCase):
    def _search_filter_domain(self, *names):
        arch = etree.fromstring(
            self.env["smartpm.meter"]
            .with_user(self.owner)
            .get_view(self.env.ref("smartpm_prepay.view_meter_search").id, "search")["arch"]
        )
        domain = []
        for name in names:
            node = arch.find(f".//filter[@name='{name}']")
            domain += safe_eval(node.get("domain"))
        return domain

    # ------------------------------------------------------------------ dashboard
    def test_owner_dashboard_counts_the_meter_that_never_answered(self):
        check_meter = self.env.ref("smartpm_prepay.demo_check_meter_1")
        self.assertFalse(check_meter.last_seen, "the demo's check meter has no simulator")
        # the owner pings it; nothing answers on its port
        check_meter.with_user(self.owner).action_ping()
        self._bridge_runs(lambda job: "connection refused" if job.meter_id == check_meter else None)
        self.assertEqual(check_meter.online_state, "offline")

        Dashboard = self.env["smartpm.dashboard"].with_user(self.owner)
        dash = Dashboard.browse(Dashboard.action_open()["res_id"])
        listed = (
            self.env["smartpm.meter"]
            .with_user(self.owner)
            .search(self._search_filter_domain("filter_offline", "filter_in_service"))
        )
        self.assertIn(check_meter, listed)
        self.assertEqual(dash.meters_offline, len(listed))
        self.assertEqual(dash.display_name, "Dashboard")
        self.start_tour(
            "/odoo/action-smartpm_prepay.action_dashboard", "smartpm_owner_dashboard", login="admin"
        )

    def test_owner_top_consumers_opens_on_the_last_30_days(self):
        Daily = self.env["smartpm.consumption.daily"].with_user(self.owner)
        arch = etree.fromstring(
            Daily.get_view(
                self.env.ref("smartpm_prepay.view_consumption_daily_search").id, "search"
            )["arch"]
        )
        node = arch.find(".//filter[@name='filter_last_30_days']")
        today = fields.Date.context_today(Daily)
        domain = safe_eval(
            node.get("domain"), {"context_today": lambda: today, "relativedelta": relativedelta}
        )
        self.assertEqual(domain, [("day", ">=", str(today - timedelta(days=29)))])
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "smartpm_prepay.action_top_consumers"
        )
        self.assertIn("'search_default_filter_last_30_days': 1", action["context"])
        # real data in that period, each tenant's figure the sum of its days
        groups = Daily.with_context(smartpm_top_groups=20).web_read_group(
            domain + [("is_check_meter", "=", False)], ["kwh:sum"], ["tenant_id"]
        )["groups"]
        self.assertTrue(groups and groups[0]["kwh"] > 0)
        first = groups[0]
        days = Daily.search(
            domain + [("is_check_meter", "=", False), ("tenant_id", "=", first["tenant_id"][0])]
        )
        self.assertAlmostEqual(first["kwh"], sum(days.mapped("kwh")), places=3)
        self.start_tour(
            "/odoo/action-smartpm_prepay.action_top_consumers",
            "smartpm_owner_top_consumers",
            login="admin",
        )

    # ------------------------------------------------------------------ reading task
    def test_owner_reads_a_transformer_twice(self):
        transformer = self.env["smartpm.transformer"].search([("name", "=", "TR-02")])
        meters = self.env["smartpm.meter"].search(
            [("transformer_id", "=", transformer.id), ("state", "!=", "decommissioned")]
        )
        self.assertTrue(meters)
        self.start_tour(
            "/odoo/action-smartpm_prepay.action_reading_task",
            "smartpm_owner_reading_task_start",
            login="admin",
        )
        task = self.env["smartpm.reading.task"].search([("name", "=", "Owner journey read")])
        self.assertEqual((task.state, task.run, task.user_id), ("running", 1, self.owner))
        self.assertEqual(task.meter_ids, meters)

        now = fields.Datetime.now().replace(microsecond=0)
        answers = {}

        def meter_answers(job):
            if job.task_id != task:
                if job.meter_id not in meters:
                    return None
                # the demo's queued threshold settings on those meters: read back as sent
                if job.job_type == "set_thresholds":
                    return dict(job.payload)
                # anything else queued for them is put off (retried later): the meters are
                # free for the owner's reading
                return RETRY_LATER
            if job.task_run == 2 and job.meter_id == meters[-1]:
                return "timeout: no answer from the meter"
            index = list(meters).index(job.meter_id) + 1
            time = (now + timedelta(seconds=job.task_run)).isoformat() + "Z"
            values = {
                OBIS_CLOCK: (now + timedelta(milliseconds=300)).isoformat() + "+00:00",
                OBIS_IMPORT: 100000 * index + job.task_run,
                OBIS_EXPORT: 0,
                OBIS_CREDIT: 5000 * index,
                OBIS_RELAY: True,
            }
            answers[job.task_run, job.meter_id] = values
            return {
                "readings": [
                    {
                        "obis": o,
                        "value": v,
                        "unit": "Wh" if o.startswith("1.0.") else "",
                        "time": time,
                    }
                    for o, v in values.items()
                ],
                "errors": {},
                "profiles": {},
            }

        self._bridge_runs(meter_answers)
        self.assertEqual(task.state, "done")
        self.assertEqual((task.job_count, task.job_done_count), (len(meters), len(meters)))
        # what the task shows is what each meter answered, and what the meter form holds
        for meter in meters:
            shown = task.current_result_ids.filtered(lambda r, m=meter: r.meter_id == m)
            sent = answers[1, meter]
            self.assertEqual(
                shown.filtered(lambda r: r.obis == OBIS_IMPORT).value, sent[OBIS_IMPORT]
            )
            credit = shown.filtered(lambda r: r.obis == OBIS_CREDIT).value
            self.assertAlmostEqual(meter.credit_kwh * 1000, credit, places=3)
            self.assertEqual(meter.relay_state, "connected")
            self.assertEqual(meter.online_state, "online")
        self.start_tour(
            f"/odoo/action-smartpm_prepay.action_reading_task/{task.id}",
            "smartpm_owner_reading_task_results",
            login="admin",
        )
        self.assertEqual((task.state, task.run), ("running", 2))

        self._bridge_runs(meter_answers)
        self.assertEqual(task.state, "done")
        self.assertEqual(
            (task.job_count, task.job_done_count, task.job_failed_count),
            (len(meters), len(meters) - 1, 1),
        )
        self.start_tour(
            f"/odoo/action-smartpm_prepay.action_reading_task/{task.id}",
            "smartpm_owner_reading_task_run2",
            login="admin",
        )
        shown = task.current_result_ids.filtered(lambda r: r.obis == OBIS_IMPORT)
        self.assertEqual(
            sorted(shown.mapped("value")),
            sorted(answers[2, m][OBIS_IMPORT] for m in meters[:-1]),
            "only run 2's values are shown",
        )
