from odoo.tests import HttpCase, tagged


@tagged("post_install", "-at_install")
class TestStatisticsUi(HttpCase):
    """The web client renders the new screens without a JavaScript error."""

    def _open(self, path, selector):
        self.browser_js(
            path,
            "console.log('test successful')",
            ready=f"!!document.querySelector('{selector}')",
            login="admin",
            timeout=90,
        )

    def test_reading_task_form_opens(self):
        self._open("/odoo/action-smartpm_prepay.action_reading_task/new", ".o_form_view")

    def test_consumption_pivot_and_top_consumers_open(self):
        self._open("/odoo/action-smartpm_prepay.action_consumption_daily", ".o_pivot_view")
        self._open("/odoo/action-smartpm_prepay.action_top_consumers", ".o_graph_view")

    def test_load_curve_and_energy_balance_open(self):
        self._open("/odoo/action-smartpm_prepay.action_load_curve", ".o_graph_view")
        self._open("/odoo/action-smartpm_prepay.action_energy_balance", ".o_list_view")

    def test_alarm_kanban_and_dashboard_open(self):
        self._open("/odoo/action-smartpm_prepay.action_alarm?view_type=kanban", ".o_kanban_view")
        self._open("/odoo/action-smartpm_prepay.action_dashboard", ".o_form_view")

    def test_alarm_and_task_forms_with_data_open(self):
        site = self.env["smartpm.site"].create({"name": "UI Court"})
        line = self.env["smartpm.line"].create({"name": "UI line", "site_id": site.id})
        transformer = self.env["smartpm.transformer"].create({"name": "UI-TR", "line_id": line.id})
        meter = self.env["smartpm.meter"].create(
            {
                "serial_number": "UI-1",
                "host": "127.0.0.1",
                "port": 4100,
                "state": "active",
                "transformer_id": transformer.id,
            }
        )
        alarm = self.env["smartpm.alarm"].create(
            {
                "meter_id": meter.id,
                "alarm_type": "energy_imbalance",
                "meter_time": "2026-03-01 00:00:00",
                "missing_kwh": 6.0,
                "loss_pct": 30.0,
            }
        )
        self._open(
            f"/odoo/action-smartpm_prepay.action_alarm/{alarm.id}",
            ".o_form_view .o_statusbar_buttons",
        )
        task = self.env["smartpm.reading.task"].create(
            {
                "name": "UI task",
                "meter_ids": [(6, 0, meter.ids)],
                "scheme_id": self.env.ref("smartpm_prepay.scheme_billing").id,
            }
        )
        task.action_start()
        self.env["smartpm.reading.task.result"].create(
            [
                {
                    "task_id": task.id,
                    "meter_id": meter.id,
                    "obis": "1.0.1.8.0.255",
                    "raw_value": "1000",
                    "unit": "Wh",
                    "reading_time": "2026-03-01 00:00:00",
                },
                {"task_id": task.id, "meter_id": meter.id, "state": "error", "error": "timeout"},
            ]
        )
        self._open(
            f"/odoo/action-smartpm_prepay.action_reading_task/{task.id}", ".o_form_view .o_notebook"
        )
