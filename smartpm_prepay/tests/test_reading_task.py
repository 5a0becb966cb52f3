from odoo.exceptions import UserError
from odoo.tests import tagged

from .stats_common import StatsCase


@tagged("post_install", "-at_install")
class TestReadingTask(StatsCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.other_transformer = cls.env["smartpm.transformer"].create(
            {"name": "TR-B", "line_id": cls.line.id}
        )
        cls.m1 = cls._meter("TASK-1", state="active")
        cls.m2 = cls._meter("TASK-2", state="active")
        cls.elsewhere = cls._meter(
            "TASK-3", state="active", transformer_id=cls.other_transformer.id
        )
        cls.billing = cls.env.ref("smartpm_prepay.scheme_billing")
        cls.profile = cls.env.ref("smartpm_prepay.scheme_load_profile")

    def _task(self, scheme=None, **vals):
        return (
            self.env["smartpm.reading.task"]
            .with_user(self.operator)
            .create(
                {
                    "name": "Month-end read",
                    "transformer_ids": [(6, 0, self.transformer.ids)],
                    "scheme_id": (scheme or self.billing).id,
                    **vals,
                }
            )
        )

    def _started(self, scheme=None):
        task = self._task(scheme)
        task.action_start()
        return task.sudo()

    def test_meters_are_picked_by_transformer(self):
        task = self._task()
        self.assertEqual(task.meter_ids, self.m1 | self.m2)

    def test_meters_are_picked_by_tenant_or_line(self):
        tenant = self._tenant("Picked")
        self.elsewhere.tenant_id = tenant
        task = self._task(transformer_ids=[(5, 0, 0)], tenant_ids=[(6, 0, tenant.ids)])
        self.assertEqual(task.meter_ids, self.elsewhere)
        task.write({"tenant_ids": [(5, 0, 0)], "line_ids": [(6, 0, self.line.ids)]})
        self.assertEqual(task.meter_ids, self.m1 | self.m2 | self.elsewhere)

    def test_start_creates_one_read_job_per_meter_with_the_scheme(self):
        task = self._started()
        self.assertEqual(task.state, "running")
        self.assertEqual(task.job_ids.meter_id, self.m1 | self.m2)
        job = task.job_ids[0]
        self.assertEqual(job.job_type, "read")
        self.assertEqual(job.payload["task_id"], task.id)
        self.assertEqual(
            [o["obis"] for o in job.payload["objects"]], self.billing.object_ids.mapped("obis")
        )
        self.assertNotIn("from", job.payload)

    def test_start_without_objects_is_refused(self):
        task = self._task(scheme=None)
        task.object_ids = [(5, 0, 0)]
        with self.assertRaises(UserError):
            task.action_start()
        self.assertFalse(task.job_ids)

    def test_profile_scheme_sends_its_time_range(self):
        task = self._started(self.profile)
        payload = task.job_ids[0].payload
        self.assertEqual(payload["objects"], [{"obis": "1.0.99.1.0.255", "ic": 7, "attribute": 2}])
        self.assertTrue(payload["from"] < payload["to"])

    def test_results_show_on_the_task_and_are_not_stored(self):
        task = self._started()
        job = task.job_ids.filtered(lambda j: j.meter_id == self.m1)
        self._complete(
            job,
            {
                "readings": [
                    {
                        "obis": "1.0.1.8.0.255",
                        "value": 123456,
                        "unit": "Wh",
                        "time": "2026-11-20T10:00:00Z",
                    },
                    {
                        "obis": "0.0.96.3.10.255",
                        "value": True,
                        "unit": "",
                        "time": "2026-11-20T10:00:00Z",
                    },
                ],
                "errors": {"1.0.2.8.0.255": "object-undefined"},
            },
        )
        results = task.result_ids
        energy = results.filtered(lambda r: r.obis == "1.0.1.8.0.255")
        self.assertEqual(energy.value, 123456)
        self.assertEqual(energy.label, "Active energy import (+A)")
        relay = results.filtered(lambda r: r.obis == "0.0.96.3.10.255")
        self.assertEqual(relay.value_display, "Connected")
        self.assertEqual(relay.label, "Relay output state")
        self.assertEqual(energy.value_display, "123,456 Wh")
        failed = results.filtered(lambda r: r.state == "error")
        self.assertEqual(failed.error, "object-undefined")
        self.assertFalse(self.env["smartpm.reading"].search([("meter_id", "=", self.m1.id)]))
        self.assertEqual(task.unsaved_count, 2)
        self.assertEqual(self.m1.online_state, "online")

    def test_save_data_stores_the_values_once(self):
        task = self._started()
        job = task.job_ids.filtered(lambda j: j.meter_id == self.m1)
        self._complete(
            job,
            {
                "readings": [
                    {
                        "obis": "1.0.1.8.0.255",
                        "value": 5000,
                        "unit": "Wh",
                        "time": "2026-11-20T10:00:00Z",
                    }
                ]
            },
        )
        task.with_user(self.operator).action_save_data()
        readings = self.env["smartpm.reading"].search([("meter_id", "=", self.m1.id)])
        self.assertEqual(readings.mapped("value"), [5000])
        self.assertEqual(readings.source, "task")
        self.assertTrue(task.result_ids.saved)
        self.assertEqual(task.unsaved_count, 0)
        with self.assertRaises(UserError):
            task.action_save_data()

    def test_failed_meter_shows_its_reason_and_task_finishes(self):
        task = self._started()
        ok = task.job_ids.filtered(lambda j: j.meter_id == self.m1)
        ko = task.job_ids.filtered(lambda j: j.meter_id == self.m2)
        self._complete(ok, {"readings": []})
        self.assertEqual(task.state, "running")
        self._fail(ko, "connection refused")
        failure = task.result_ids.filtered(lambda r: r.meter_id == self.m2)
        self.assertEqual(failure.state, "error")
        self.assertIn("connection refused", failure.error)
        self.assertEqual(task.state, "done")
        self.assertEqual(task.job_failed_count, 1)

    def test_profile_rows_become_results_per_capture(self):
        task = self._started(self.profile)
        job = task.job_ids.filtered(lambda j: j.meter_id == self.m1)
        self._complete(
            job,
            {
                "readings": [],
                "errors": {},
                "profiles": {
                    "1.0.99.1.0.255": [
                        ["2026-11-20T10:00:00Z", 1000, 0],
                        ["2026-11-20T10:15:00Z", 1250, 0],
                    ]
                },
            },
        )
        imports = task.result_ids.filtered(lambda r: r.obis == "1.0.1.8.0.255")
        self.assertEqual(imports.mapped("value"), [1000, 1250])
        self.assertEqual(len(task.result_ids.filtered(lambda r: r.obis == "1.0.2.8.0.255")), 2)
        self.assertFalse(self.env["smartpm.reading"].search([("meter_id", "=", self.m1.id)]))

    def test_cashier_cannot_save_data(self):
        from odoo.exceptions import AccessError
        from odoo.tests import new_test_user

        cashier = new_test_user(self.env, "t_cash_task", groups="smartpm_prepay.group_cashier")
        task = self._started()
        self._complete(
            task.job_ids[0],
            {
                "readings": [
                    {
                        "obis": "1.0.1.8.0.255",
                        "value": 1,
                        "unit": "Wh",
                        "time": "2026-11-20T10:00:00Z",
                    }
                ]
            },
        )
        with self.assertRaises(AccessError):
            task.result_ids.with_user(cashier).action_save()
        self.assertFalse(
            self.env["smartpm.reading"].search(
                [("source", "=", "task"), ("meter_id", "in", self.m1.ids + self.m2.ids)]
            )
        )

    def test_zero_is_a_value_and_the_clock_is_readable(self):
        task = self._started()
        job = task.job_ids.filtered(lambda j: j.meter_id == self.m1)
        self._complete(
            job,
            {
                "readings": [
                    {
                        "obis": "1.0.2.8.0.255",
                        "value": 0,
                        "unit": "Wh",
                        "time": "2026-11-20T10:00:00Z",
                    },
                    {
                        "obis": "0.0.1.0.0.255",
                        "value": "07ea0b1a0407342c00000000",
                        "unit": "",
                        "time": "2026-11-20T10:00:00Z",
                    },
                ]
            },
        )
        export = task.result_ids.filtered(lambda r: r.obis == "1.0.2.8.0.255")
        self.assertTrue(export.is_numeric)
        self.assertEqual(export.value_text, "0")
        clock = task.result_ids.filtered(lambda r: r.obis == "0.0.1.0.0.255")
        self.assertEqual(clock.value_text, "2026-11-26 07:52:44")
        self.assertFalse(clock.is_numeric)
        self.assertEqual(task.unsaved_count, 1)

    def _energy(self, job, value):
        self._complete(
            job,
            {
                "readings": [
                    {
                        "obis": "1.0.1.8.0.255",
                        "value": value,
                        "unit": "Wh",
                        "time": "2026-11-20T10:00:00Z",
                    }
                ]
            },
        )

    def test_read_again_counts_the_new_run_only(self):
        task = self._started()
        for job in task.job_ids:
            self._energy(job, 1000)
        self.assertEqual(task.state, "done")
        self.assertEqual((task.job_count, task.job_done_count), (2, 2))
        task.with_user(self.operator).action_read_again()
        self.assertEqual(task.state, "running")
        self.assertEqual(task.run, 2)
        self.assertEqual(len(task.job_ids), 4, "the first run's jobs are kept")
        self.assertEqual((task.job_count, task.job_done_count, task.job_failed_count), (2, 0, 0))
        self.assertFalse(task.current_result_ids)
        second = task.job_ids.filtered(lambda j: j.task_run == 2)
        self._energy(second.filtered(lambda j: j.meter_id == self.m1), 2000)
        self.assertEqual((task.job_done_count, task.progress), (1, 50.0))
        self._fail(second.filtered(lambda j: j.meter_id == self.m2), "timeout")
        self.assertEqual(task.state, "done")
        self.assertEqual((task.job_count, task.job_done_count, task.job_failed_count), (2, 1, 1))
        shown = task.current_result_ids
        self.assertEqual(shown.mapped("run"), [2, 2])
        self.assertEqual(shown.filtered(lambda r: r.state == "ok").mapped("value"), [2000])
        self.assertEqual(len(task.result_ids), 4, "earlier runs stay in the task results")
        self.assertEqual(task.unsaved_count, 1)
        task.with_user(self.operator).action_save_data()
        saved = self.env["smartpm.reading"].search([("meter_id", "in", (self.m1 | self.m2).ids)])
        self.assertEqual(saved.mapped("value"), [2000], "only the shown run is saved")

    def test_read_again_is_refused_while_running_and_to_a_cashier(self):
        from odoo.exceptions import AccessError
        from odoo.tests import new_test_user

        task = self._started()
        with self.assertRaises(UserError):
            task.with_user(self.operator).action_read_again()
        for job in task.job_ids:
            self._energy(job, 10)
        cashier = new_test_user(self.env, "t_cash_again", groups="smartpm_prepay.group_cashier")
        with self.assertRaises(AccessError):
            task.with_user(cashier).action_read_again()
        self.assertEqual((task.run, len(task.job_ids), task.state), (1, 2, "done"))

    def test_values_are_shown_formatted_in_the_users_time_zone(self):
        task = self._started()
        job = task.job_ids.filtered(lambda j: j.meter_id == self.m1)
        self._complete(
            job,
            {
                "readings": [
                    {
                        "obis": "0.0.1.0.0.255",
                        "value": "2026-12-01T13:20:59.300000Z",
                        "unit": "",
                        "time": "2026-12-01T13:20:59Z",
                    },
                    {"obis": "0.0.96.3.10.255", "value": False, "time": "2026-12-01T13:20:59Z"},
                    {"obis": "0.0.19.10.0.255", "value": 36267, "time": "2026-12-01T13:20:59Z"},
                    {
                        "obis": "1.0.32.7.0.255",
                        "value": 230.1,
                        "unit": "V",
                        "time": "2026-12-01T13:20:59Z",
                    },
                ]
            },
        )
        results = task.result_ids.with_context(tz="Africa/Lagos", lang="en_US")
        clock = results.filtered(lambda r: r.obis == "0.0.1.0.0.255")
        # Lagos is UTC+1; babel may put a narrow no-break space before PM
        self.assertEqual(" ".join(clock.value_display.split()), "Dec 1, 2026, 2:20:59 PM")
        self.assertEqual(clock.label, "Clock")
        relay = results.filtered(lambda r: r.obis == "0.0.96.3.10.255")
        self.assertEqual(relay.value_display, "Disconnected")
        credit = results.filtered(lambda r: r.obis == "0.0.19.10.0.255")
        self.assertEqual(credit.value_display, "36.267 kWh")
        self.assertAlmostEqual(self.m1.credit_kwh, 36.267, msg="as the meter form shows it")
        voltage = results.filtered(lambda r: r.obis == "1.0.32.7.0.255")
        self.assertEqual((voltage.label, voltage.value_display), ("Voltage L1", "230.1 V"))

    def test_readings_name_their_obis_code(self):
        from ..services import ingest

        ingest.ingest(
            self.env,
            [
                {"meter_id": self.m1.id, "obis": o, "value": 1, "unit": "Wh", "time": t}
                for o, t in [
                    ("1.0.1.8.0.255", "2026-11-20T10:00:00Z"),
                    ("9.9.9.9.9.9", "2026-11-20T10:00:00Z"),
                ]
            ],
            [],
        )
        readings = self.env["smartpm.reading"].search([("meter_id", "=", self.m1.id)])
        names = dict(zip(readings.mapped("obis"), readings.mapped("obis_name"), strict=True))
        self.assertEqual(
            names, {"1.0.1.8.0.255": "Active energy import (+A)", "9.9.9.9.9.9": "9.9.9.9.9.9"}
        )
