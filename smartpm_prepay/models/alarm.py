from odoo import api, fields, models
from odoo.exceptions import UserError

from ..services import friendly, notify, tenant_periods

ALARM_TYPES = [
    ("cover_open", "Cover opened"),
    ("over_current", "Over-current"),
    ("reverse_connection", "Reverse connection"),
    ("low_credit", "Low credit"),
    ("zero_credit", "Zero credit"),
    ("credit_trip", "Credit trip"),
    ("load_trip", "Load trip"),
    ("load_reconnected", "Load trip: reconnected by itself"),
    ("load_lockout", "Load trip: locked out"),
    ("friendly_deferred", "Friendly period: trip deferred"),
    ("comm_lost", "Communication lost"),
    ("energy_imbalance", "Energy imbalance"),
    # the meter refused a credit token (fraud log, docs/meter-contract.md)
    ("token_forged", "Forged credit token"),
    ("token_other_meter", "Credit token of another meter"),
    ("token_cancelled", "Credit token of a reversed sale"),
    # found by a clock synchronisation (sync_clock job): beyond the company's tolerance
    ("clock_drift", "Clock drift"),
]
# Routine prepayment events: kept as alarms for the trail, but nobody has to act on them.
ROUTINE_TYPES = {"low_credit", "zero_credit", "load_reconnected", "friendly_deferred"}
# Load-trip recovery: these move the meter's relay and load-trip state (meter.py)
LOAD_TRIP_TYPES = ("load_trip", "load_reconnected", "load_lockout")
# Tampering and theft: the dashboard's theft count (the alarm list's "Tampering and theft"
# filter lists the same types)
THEFT_TYPES = (
    "cover_open",
    "reverse_connection",
    "over_current",
    "energy_imbalance",
    "token_forged",
    "token_other_meter",
    "token_cancelled",
)
OPEN_STATES = ("new", "acknowledged")


class SmartpmAlarm(models.Model):
    """An event from a meter or from analysis (communication, energy balance).

    Workflow: new -> acknowledged -> confirmed (theft) or dismissed. Alarms raised by a
    condition that can end by itself (communication lost) are *cleared* when it ends.
    Every alarm someone must look at gets a to-do activity for the property manager.
    """

    _name = "smartpm.alarm"
    _description = "Meter alarm"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "meter_time desc, id desc"
    _check_company_auto = True

    meter_id = fields.Many2one(
        "smartpm.meter", required=True, index=True, ondelete="cascade", check_company=True
    )
    company_id = fields.Many2one(related="meter_id.company_id", store=True, index=True)
    # the tenant holding the meter at the alarm's time on the meter (services/tenant_periods),
    # not the meter's tenant of today: a new tenant never inherits the old tenant's alarms
    tenant_id = fields.Many2one("res.partner", readonly=True, index=True)
    transformer_id = fields.Many2one(
        "smartpm.transformer",
        compute="_compute_transformer_id",
        store=True,
        readonly=False,
        index=True,
    )
    line_id = fields.Many2one(related="transformer_id.line_id", store=True)
    site_id = fields.Many2one(related="transformer_id.site_id", store=True)
    alarm_type = fields.Selection(ALARM_TYPES, required=True, index=True, tracking=True)
    event_code = fields.Integer()
    meter_time = fields.Datetime(string="Time on the meter", required=True)
    received_at = fields.Datetime(default=fields.Datetime.now, required=True)
    state = fields.Selection(
        [
            ("new", "New"),
            ("acknowledged", "Acknowledged"),
            ("confirmed", "Confirmed theft"),
            ("dismissed", "Dismissed"),
            ("cleared", "Cleared"),
        ],
        default="new",
        required=True,
        index=True,
        tracking=True,
    )
    is_open = fields.Boolean(compute="_compute_is_open", search="_search_is_open")
    description = fields.Text()
    # Energy balance: the period and the energy that went missing.
    period_start = fields.Datetime()
    period_end = fields.Datetime()
    missing_kwh = fields.Float(string="Missing energy (kWh)", digits=(16, 3))
    loss_pct = fields.Float(string="Loss (%)", digits=(16, 2))
    date_closed = fields.Datetime(readonly=True, copy=False)
    closed_by_id = fields.Many2one("res.users", readonly=True, copy=False)
    resolution = fields.Text(help="What the inspection found.")
    clock_drift_s = fields.Float(
        string="Clock drift (s)",
        digits=(16, 1),
        readonly=True,
        help="Clock drift alarm: the meter's clock less UTC when it was synchronised, in "
        "seconds (positive: the meter ran ahead).",
    )
    notification_count = fields.Integer(
        compute="_compute_notification_count",
        help="Notifications sent of this alarm (live, e-mail, SMS, to staff and tenant).",
    )

    _sql_constraints = [
        (
            "meter_event_uniq",
            "unique(meter_id, alarm_type, meter_time)",
            "This meter event is stored already.",
        ),
    ]

    @api.depends("meter_id")
    def _compute_transformer_id(self):
        for alarm in self:
            if not alarm.transformer_id:
                alarm.transformer_id = alarm.meter_id.transformer_id

    def _compute_notification_count(self):
        Log = self.env["smartpm.notification.log"].sudo()
        for alarm in self:
            alarm.notification_count = (
                Log.search_count([("event_key", "=", notify.alarm_key(alarm))]) if alarm.id else 0
            )

    def action_view_notifications(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "smartpm_prepay.action_notification_log"
        )
        action["domain"] = [("event_key", "=", notify.alarm_key(self))]
        return action

    @api.depends("state")
    def _compute_is_open(self):
        for alarm in self:
            alarm.is_open = alarm.state in OPEN_STATES

    def _search_is_open(self, operator, value):
        if operator not in ("=", "!=") or not isinstance(value, bool):
            raise UserError(self.env._("Unsupported search on open alarms."))
        positive = (operator == "=") == value
        return [("state", "in" if positive else "not in", OPEN_STATES)]

    @api.depends("alarm_type", "meter_id")
    def _compute_display_name(self):
        labels = dict(ALARM_TYPES)
        for alarm in self:
            alarm.display_name = (
                f"{labels.get(alarm.alarm_type, '')} - {alarm.meter_id.serial_number or ''}"
            )

    def _auto_init(self):
        # the tenant used to be the meter's current one (a stored related field): set it
        # once from the assignments when upgrading from there
        self.env.cr.execute(
            "SELECT related FROM ir_model_fields WHERE model = %s AND name = 'tenant_id'",
            (self._name,),
        )
        row = self.env.cr.fetchone()
        res = super()._auto_init()
        if row and row[0]:
            tenant_periods.refresh_timed(self.env, self._table)
        return res

    # ---------------------------------------------------------------- create
    @api.model_create_multi
    def create(self, vals_list):
        alarms = super().create(vals_list)
        alarms.flush_recordset()
        tenant_periods.refresh_timed(self.env, self._table, ids=alarms.ids)
        alarms.invalidate_recordset(["tenant_id"])
        alarms.filtered(lambda a: a.alarm_type not in ROUTINE_TYPES)._schedule_manager_activity()
        # told at once (services/notify.py): whatever made the alarm, the ingest of a
        # bridge's events (read or pushed), a ping's analysis or a clock sync
        notify.alarms_created(alarms)
        notify.tenant_alarms(alarms)
        load = alarms.filtered(lambda a: a.alarm_type in LOAD_TRIP_TYPES)
        if load:
            self.env["smartpm.meter"]._smartpm_apply_load_alarms(load)
        friendly.on_alarms(alarms)
        return alarms

    @api.model
    def _create_from_events(self, alarms):
        """Create alarms for events not stored yet (the key of ``meter_event_uniq``), in one
        create for the batch; return how many were new."""
        if not alarms:
            return 0
        self.env.flush_all()
        # only the batch's own keys are looked up (the unique index), not every alarm of
        # its meters: the cost of a batch does not grow with the meters' history
        self.env.cr.execute(
            """
            SELECT a.meter_id, a.alarm_type, a.meter_time
              FROM unnest(%s::int[], %s::varchar[], %s::timestamp[]) AS k(meter_id, t, at)
              JOIN smartpm_alarm a
                ON a.meter_id = k.meter_id AND a.alarm_type = k.t AND a.meter_time = k.at
            """,
            [
                [a["meter_id"] for a in alarms],
                [a["alarm_type"] for a in alarms],
                [a["meter_time"] for a in alarms],
            ],
        )
        seen = set(self.env.cr.fetchall())
        fresh = []
        descriptions = self._get_event_descriptions()
        for alarm in alarms:
            key = (alarm["meter_id"], alarm["alarm_type"], alarm["meter_time"])
            if key not in seen:
                seen.add(key)
                if not alarm.get("description") and alarm["alarm_type"] in descriptions:
                    alarm = {**alarm, "description": descriptions[alarm["alarm_type"]]}
                fresh.append(alarm)
        self.create(fresh)
        return len(fresh)

    def _get_event_descriptions(self):
        """What the owner should know of an alarm type raised from a meter's event, where
        the type's name does not say it all."""
        return {
            "load_reconnected": self.env._(
                "The meter closed its relay by itself, the reconnect delay after a load trip."
            ),
            "load_lockout": self.env._(
                "The meter tripped on its load limit again after reconnecting by itself as "
                "many times as allowed in an hour: its relay stays open. Ask the tenant to "
                "reduce the load, then press Reconnect on the meter."
            ),
            "friendly_deferred": self.env._(
                "The credit reached the trip threshold inside a friendly period (friendly "
                "hours or a public holiday of the company's settings): the meter keeps the "
                "power on, the credit going below zero down to the friendly limit, and trips "
                "when the period ends unless the tenant buys credit. The tenant is told."
            ),
            "token_forged": self.env._(
                "The meter refused a credit token that was not signed with its token key: "
                "a forged or altered token, or the token key held in Odoo is not the "
                "meter's. No credit was added."
            ),
            "token_other_meter": self.env._(
                "The meter refused a credit token minted for another meter: check the "
                "meter's connection (host, port) in Odoo, or someone entered another "
                "meter's token. No credit was added."
            ),
            "token_cancelled": self.env._(
                "The meter refused the credit token of a transfer it had cancelled when "
                "its sale was reversed (the money was given back): someone replayed a "
                "token or a bridge sent it late. No credit was added."
            ),
        }

    def _get_manager_user(self):
        """The property manager: the site's, else the company's alarm recipient."""
        self.ensure_one()
        site = self.site_id or self.meter_id.site_id
        return site.manager_id or self.company_id.smartpm_alarm_user_id

    def _schedule_manager_activity(self):
        """A to-do for the property manager of each alarm: one create for the batch (what
        ``activity_schedule`` makes, with each alarm's own summary)."""
        if self.env.context.get("mail_activity_automation_skip"):
            return
        labels = dict(ALARM_TYPES)
        todo = self.env.ref("mail.mail_activity_data_todo")
        model_id = self.env["ir.model"]._get(self._name).id
        deadline = fields.Date.context_today(self)
        vals_list = []
        for alarm in self.sudo():
            user = alarm._get_manager_user()
            if not user:
                continue
            vals_list.append(
                {
                    "activity_type_id": todo.id,
                    "summary": self.env._(
                        "%(type)s on meter %(meter)s",
                        type=labels.get(alarm.alarm_type),
                        meter=alarm.meter_id.serial_number,
                    ),
                    "automated": True,
                    "note": alarm.description or todo.default_note,
                    "date_deadline": deadline,
                    "res_model_id": model_id,
                    "res_id": alarm.id,
                    "user_id": user.id,
                }
            )
        self.env["mail.activity"].sudo().create(vals_list)

    # ---------------------------------------------------------------- workflow
    def _check_state(self, allowed, action):
        wrong = self.filtered(lambda a: a.state not in allowed)
        if wrong:
            raise UserError(
                self.env._(
                    "Cannot %(action)s alarm(s) %(names)s in their current state.",
                    action=action,
                    names=", ".join(wrong.mapped("display_name")),
                )
            )

    def _close(self, state, message):
        self.write(
            {"state": state, "date_closed": fields.Datetime.now(), "closed_by_id": self.env.uid}
        )
        for alarm in self:
            alarm.activity_ids.action_feedback(feedback=message)
            if not alarm.activity_ids and message:
                alarm.message_post(body=message)

    def action_acknowledge(self):
        self._check_state(("new",), self.env._("acknowledge"))
        self.write({"state": "acknowledged"})
        for alarm in self:
            alarm.message_post(body=self.env._("Acknowledged: an inspection is on its way."))

    def action_confirm_theft(self):
        self._check_state(OPEN_STATES, self.env._("confirm"))
        self._close("confirmed", self.env._("Theft confirmed on the spot."))
        # The meter's own chatter keeps the trail when the alarm is long archived.
        for alarm in self:
            alarm.meter_id.message_post(
                body=self.env._("Theft confirmed: %(alarm)s", alarm=alarm.display_name)
            )

    def action_dismiss(self):
        self._check_state(OPEN_STATES, self.env._("dismiss"))
        self._close("dismissed", self.env._("Dismissed: no theft found."))

    def action_reopen(self):
        self._check_state(("confirmed", "dismissed", "cleared"), self.env._("reopen"))
        self.write({"state": "new", "date_closed": False, "closed_by_id": False})
        self._schedule_manager_activity()

    def _clear(self, message):
        """The condition ended by itself (the meter answers again)."""
        self._close("cleared", message)
