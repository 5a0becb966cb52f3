from odoo import fields, models


class ResCompany(models.Model):
    _inherit = "res.company"

    smartpm_alarm_user_id = fields.Many2one(
        "res.users",
        string="Alarm recipient",
        help="Gets a to-do for every alarm of a property that names no manager.",
    )
    smartpm_comm_lost_pings = fields.Integer(
        string="Missed pings before communication lost",
        default=3,
        help="A meter that misses this many pings in a row raises a communication-lost alarm.",
    )
    smartpm_ping_interval_min = fields.Integer(
        string="Ping interval (minutes)",
        default=60,
        help="Meters not heard from for this long are pinged.",
    )
    smartpm_event_interval_min = fields.Integer(
        string="Event-log collection every (minutes)",
        default=240,
        help="How often meters' event logs are read for tampering alarms (cover opened, "
        "reverse connection...). Shorter finds theft sooner and costs more meter traffic.",
    )

    _sql_constraints = [
        (
            "smartpm_comm_lost_pings_positive",
            "CHECK(smartpm_comm_lost_pings IS NULL OR smartpm_comm_lost_pings > 0)",
            "The number of missed pings must be at least 1.",
        ),
        (
            "smartpm_ping_interval_positive",
            "CHECK(smartpm_ping_interval_min IS NULL OR smartpm_ping_interval_min > 0)",
            "The ping interval must be at least one minute.",
        ),
    ]


class SmartpmSite(models.Model):
    _inherit = "smartpm.site"

    manager_id = fields.Many2one(
        "res.users",
        string="Property manager",
        help="Gets a to-do for every alarm of this property.",
    )
