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
