from datetime import timedelta

from odoo import api, fields, models

from ..models.alarm import THEFT_TYPES
from ..services import local_time

PURCHASE_MODEL = "smartpm.credit.purchase"
SOLD_STATES = ("paid", "queued", "delivered")
# Credit that is not a sale: free basic electricity grants and credit moved between meters.
NOT_SALES = ("fbe", "transfer")
CHART_DAYS = 30  # the charts show the last 30 local days, today included
OPEN_ALARM_STATES = ("new", "acknowledged")


class SmartpmDashboard(models.TransientModel):
    """The owner's figures of the day, computed when the dashboard opens."""

    _name = "smartpm.dashboard"
    _description = "Owner dashboard"

    company_id = fields.Many2one("res.company", default=lambda self: self.env.company)
    currency_id = fields.Many2one(related="company_id.currency_id")
    has_sales = fields.Boolean(compute="_compute_figures")
    sales_today_amount = fields.Monetary(string="Sales today", compute="_compute_figures")
    sales_today_count = fields.Integer(string="Purchases today", compute="_compute_figures")
    sold_month_kwh = fields.Float(
        string="Energy sold this month (kWh)", compute="_compute_figures", digits=(16, 1)
    )
    consumed_month_kwh = fields.Float(
        string="Energy consumed this month (kWh)", compute="_compute_figures", digits=(16, 1)
    )
    meters_active = fields.Integer(string="Meters in service", compute="_compute_figures")
    meters_offline = fields.Integer(string="Meters offline", compute="_compute_figures")
    meters_never_seen = fields.Integer(string="Never answered", compute="_compute_figures")
    alarms_open = fields.Integer(string="Open alarms", compute="_compute_figures")
    alarms_theft = fields.Integer(string="Theft alarms open", compute="_compute_figures")

    @api.depends("company_id")
    def _compute_display_name(self):
        # the breadcrumb's title, not "smartpm.dashboard,1"
        for dash in self:
            dash.display_name = self.env._("Dashboard")

    def _local_bounds(self):
        """UTC start of today and of this month, in the company's time zone."""
        company = self.company_id or self.env.company
        today = local_time.local_today(company)
        month = today.replace(day=1)
        return (
            today,
            local_time.day_start_utc(company, today),
            month,
            local_time.day_start_utc(company, month),
        )

    @api.depends("company_id")
    def _compute_figures(self):
        for dash in self:
            company = dash.company_id or self.env.company
            today, today_utc, month, month_utc = dash._local_bounds()
            Meter = self.env["smartpm.meter"]
            Alarm = self.env["smartpm.alarm"]
            in_service = [
                ("company_id", "=", company.id),
                ("state", "in", ("active", "disconnected")),
            ]
            dash.meters_active = Meter.search_count(in_service)
            dash.meters_offline = Meter.search_count(
                in_service + [("online_state", "=", "offline")]
            )
            dash.meters_never_seen = Meter.search_count(in_service + [("last_seen", "=", False)])
            open_alarms = [
                ("company_id", "=", company.id),
                ("state", "in", OPEN_ALARM_STATES),
            ]
            dash.alarms_open = Alarm.search_count(open_alarms)
            dash.alarms_theft = Alarm.search_count(
                open_alarms + [("alarm_type", "in", THEFT_TYPES)]
            )
            consumed = self.env["smartpm.consumption.daily"]._read_group(
                [
                    ("company_id", "=", company.id),
                    ("day", ">=", month),
                    ("is_check_meter", "=", False),
                ],
                [],
                ["kwh:sum"],
            )
            dash.consumed_month_kwh = consumed[0][0] or 0.0
            # The sales model comes with the selling module; the tile waits for it.
            dash.has_sales = PURCHASE_MODEL in self.env
            dash.sales_today_amount = dash.sales_today_count = dash.sold_month_kwh = 0
            if dash.has_sales:
                Purchase = self.env[PURCHASE_MODEL]
                # Fields of docs/ARCHITECTURE; company only if the model has one.
                sold = [("state", "in", SOLD_STATES), ("channel", "not in", NOT_SALES)]
                if "company_id" in Purchase._fields:
                    sold.append(("company_id", "=", company.id))
                # by the sale's date, as the sales chart
                amount, count = Purchase._read_group(
                    sold + [("date", ">=", today_utc)], [], ["amount:sum", "__count"]
                )[0]
                dash.sales_today_amount = amount or 0.0
                dash.sales_today_count = count
                dash.sold_month_kwh = (
                    Purchase._read_group(sold + [("date", ">=", month_utc)], [], ["kwh:sum"])[0][0]
                    or 0.0
                )

    @api.model
    def action_open(self):
        # the offline figure is of now, not of the last ping run
        self.env["smartpm.meter"]._mark_never_seen_offline()
        dash = self.create({})
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Dashboard"),
            "res_model": self._name,
            "res_id": dash.id,
            "view_mode": "form",
            "target": "current",
            "context": {"form_view_initial_mode": "readonly"},
        }

    def action_refresh(self):
        return self.action_open()

    def _open(self, xmlid, domain, context=None):
        action = self.env["ir.actions.act_window"]._for_xml_id(xmlid)
        action["domain"] = domain
        if context is not None:
            action["context"] = context
        return action

    def action_view_offline(self):
        # the list's own filters, shown as facets: the count there is the count here
        return self._open(
            "smartpm_prepay.action_meter",
            [],
            {"search_default_filter_offline": 1, "search_default_filter_in_service": 1},
        )

    def action_view_alarms(self):
        return self._open("smartpm_prepay.action_alarm", [("state", "in", OPEN_ALARM_STATES)], {})

    def action_view_consumption(self):
        _today, _t, month, _m = self._local_bounds()
        return self._open(
            "smartpm_prepay.action_consumption_daily",
            [("day", ">=", month), ("is_check_meter", "=", False)],
        )

    def action_view_sales(self):
        if PURCHASE_MODEL not in self.env:
            return False
        _today, today_utc, _m, _mu = self._local_bounds()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Sales today"),
            "res_model": PURCHASE_MODEL,
            "view_mode": "list,form",
            "domain": [("date", ">=", today_utc), ("state", "in", SOLD_STATES)],
        }

    # ---------------------------------------------------------------- charts
    def _chart_start(self):
        """The first local day of the charts and its UTC start."""
        today, today_utc, _m, _mu = self._local_bounds()
        first = today - timedelta(days=CHART_DAYS - 1)
        return first, today_utc - timedelta(days=CHART_DAYS - 1)

    def action_chart_sales(self):
        """Sales of the last 30 days per day and channel (the dashboard's first chart)."""
        company = self.company_id or self.env.company
        _first, start_utc = self._chart_start()
        return self._open(
            "smartpm_prepay.action_dashboard_sales",
            [
                ("state", "in", SOLD_STATES),
                ("channel", "not in", NOT_SALES),
                ("company_id", "=", company.id),
                ("date", ">=", start_utc),
            ],
        )

    def action_chart_consumption(self):
        company = self.company_id or self.env.company
        first, _start_utc = self._chart_start()
        return self._open(
            "smartpm_prepay.action_dashboard_consumption",
            [
                ("company_id", "=", company.id),
                ("day", ">=", first),
                ("is_check_meter", "=", False),
            ],
        )

    def action_chart_alarms(self):
        company = self.company_id or self.env.company
        return self._open(
            "smartpm_prepay.action_dashboard_alarms",
            [("company_id", "=", company.id), ("state", "in", OPEN_ALARM_STATES)],
        )
