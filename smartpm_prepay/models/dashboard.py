from datetime import datetime, time

import pytz

from odoo import _, api, fields, models

PURCHASE_MODEL = "smartpm.credit.purchase"
SOLD_STATES = ("paid", "queued", "delivered")


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
    alarms_open = fields.Integer(string="Open alarms", compute="_compute_figures")
    alarms_theft = fields.Integer(string="Theft alarms open", compute="_compute_figures")

    def _local_bounds(self):
        """UTC start of today and of this month, in the company's time zone."""
        tz = pytz.timezone(
            self.env["smartpm.consumption.daily"]._company_tz(self.company_id or self.env.company)
        )
        today = datetime.now(tz).date()

        def utc(day):
            return (
                tz.localize(datetime.combine(day, time.min))
                .astimezone(pytz.utc)
                .replace(tzinfo=None)
            )

        return today, utc(today), today.replace(day=1), utc(today.replace(day=1))

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
            open_alarms = [
                ("company_id", "=", company.id),
                ("state", "in", ("new", "acknowledged")),
            ]
            dash.alarms_open = Alarm.search_count(open_alarms)
            dash.alarms_theft = Alarm.search_count(
                open_alarms
                + [
                    (
                        "alarm_type",
                        "in",
                        ("cover_open", "reverse_connection", "over_current", "energy_imbalance"),
                    )
                ]
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
                sold = [("state", "in", SOLD_STATES)]
                if "company_id" in Purchase._fields:
                    sold.append(("company_id", "=", company.id))
                amount, count = Purchase._read_group(
                    sold + [("create_date", ">=", today_utc)], [], ["amount:sum", "__count"]
                )[0]
                dash.sales_today_amount = amount or 0.0
                dash.sales_today_count = count
                dash.sold_month_kwh = (
                    Purchase._read_group(
                        sold + [("create_date", ">=", month_utc)], [], ["kwh:sum"]
                    )[0][0]
                    or 0.0
                )

    @api.model
    def action_open(self):
        dash = self.create({})
        return {
            "type": "ir.actions.act_window",
            "name": _("Dashboard"),
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
        return self._open(
            "smartpm_prepay.action_meter",
            [("online_state", "=", "offline"), ("state", "in", ("active", "disconnected"))],
            {},
        )

    def action_view_alarms(self):
        return self._open(
            "smartpm_prepay.action_alarm", [("state", "in", ("new", "acknowledged"))], {}
        )

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
            "name": _("Sales today"),
            "res_model": PURCHASE_MODEL,
            "view_mode": "list,form",
            "domain": [("create_date", ">=", today_utc), ("state", "in", SOLD_STATES)],
        }
