from odoo import api, fields, models

ALARM_TYPES = [
    ("cover_open", "Cover opened"),
    ("over_current", "Over-current"),
    ("reverse_connection", "Reverse connection"),
    ("low_credit", "Low credit"),
    ("zero_credit", "Zero credit"),
    ("credit_trip", "Credit trip"),
    ("load_trip", "Load trip"),
    ("comm_lost", "Communication lost"),
    ("energy_imbalance", "Energy imbalance"),
]


class SmartpmAlarm(models.Model):
    """An event from a meter or from analysis. The workflow (acknowledge, confirm theft)
    comes with the theft-detection issue; here alarms are stored with type and times."""

    _name = "smartpm.alarm"
    _description = "Meter alarm"
    _inherit = ["mail.thread"]
    _order = "meter_time desc, id desc"
    _check_company_auto = True

    meter_id = fields.Many2one(
        "smartpm.meter", required=True, index=True, ondelete="cascade", check_company=True
    )
    company_id = fields.Many2one(related="meter_id.company_id", store=True, index=True)
    tenant_id = fields.Many2one(related="meter_id.tenant_id", store=True)
    alarm_type = fields.Selection(ALARM_TYPES, required=True, index=True)
    event_code = fields.Integer()
    meter_time = fields.Datetime(string="Time on the meter", required=True)
    received_at = fields.Datetime(default=fields.Datetime.now, required=True)
    state = fields.Selection(
        [
            ("new", "New"),
            ("acknowledged", "Acknowledged"),
            ("confirmed", "Confirmed"),
            ("dismissed", "Dismissed"),
        ],
        default="new",
        required=True,
        index=True,
        tracking=True,
    )
    description = fields.Text()

    _sql_constraints = [
        (
            "meter_event_uniq",
            "unique(meter_id, alarm_type, meter_time)",
            "This meter event is stored already.",
        ),
    ]

    @api.model
    def _create_from_events(self, alarms):
        """Create alarms for events not stored yet; return how many were new."""
        if not alarms:
            return 0
        self.env.flush_all()
        self.env.cr.execute(
            """
            SELECT meter_id, alarm_type, meter_time FROM smartpm_alarm
             WHERE meter_id = ANY(%s)
            """,
            (list({a["meter_id"] for a in alarms}),),
        )
        seen = set(self.env.cr.fetchall())
        fresh = []
        for alarm in alarms:
            key = (alarm["meter_id"], alarm["alarm_type"], alarm["meter_time"])
            if key not in seen:
                seen.add(key)
                fresh.append(alarm)
        self.create(fresh)
        return len(fresh)
