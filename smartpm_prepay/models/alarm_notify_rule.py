from odoo import api, fields, models

from .alarm import ALARM_TYPES


class SmartpmAlarmNotifyRule(models.Model):
    """Who hears of an alarm type at once, and how: a live notification in the back
    office, an e-mail, an SMS (services/notify.py). One rule per alarm type and company; an
    alarm type without an active rule gets its to-do activity only."""

    _name = "smartpm.alarm.notify.rule"
    _description = "Alarm notification rule"
    _order = "company_id, alarm_type"
    _check_company_auto = True

    active = fields.Boolean(default=True, help="Archive the rule to stop its notifications.")
    company_id = fields.Many2one(
        "res.company",
        required=True,
        index=True,
        default=lambda self: self.env.company,
        help="The rule applies to the alarms of this company's meters.",
    )
    alarm_type = fields.Selection(
        ALARM_TYPES, required=True, help="The alarms this rule tells the responsible users of."
    )
    user_ids = fields.Many2many(
        "res.users",
        string="Responsible users",
        domain=[("share", "=", False)],
        help="Internal users told of every alarm of this type. Empty: the alarm's property "
        "manager (the property's manager, else the company's alarm recipient of the "
        "settings).",
    )
    notify_live = fields.Boolean(
        string="Live notification",
        default=True,
        help="A notification pops up at once in the back office of each responsible user "
        "who has Odoo open (alarm list, dashboard or any other page).",
    )
    notify_email = fields.Boolean(
        string="E-mail",
        default=True,
        help="An e-mail to each responsible user (queued, sent by the mail queue).",
    )
    notify_sms = fields.Boolean(
        string="SMS",
        default=False,
        help="An SMS to each responsible user's mobile (else phone) number, through the SMS "
        "provider Odoo is set up with.",
    )
    mail_template_id = fields.Many2one(
        "mail.template",
        string="E-mail template",
        domain=[("model", "=", "smartpm.alarm")],
        help="Empty: the standard alarm e-mail (Prepaid electricity: alarm, to the owner).",
    )
    sms_template_id = fields.Many2one(
        "sms.template",
        string="SMS template",
        domain=[("model", "=", "smartpm.alarm")],
        help="Empty: the standard alarm SMS (Prepaid electricity: alarm, to the owner).",
    )

    _sql_constraints = [
        (
            "company_type_uniq",
            "unique(company_id, alarm_type)",
            "Each alarm type has one notification rule per company: edit the existing one.",
        ),
    ]

    @api.depends("alarm_type")
    def _compute_display_name(self):
        labels = dict(ALARM_TYPES)
        for rule in self:
            rule.display_name = labels.get(rule.alarm_type, "")

    def _get_recipients(self, alarm):
        """The users this rule tells of ``alarm``: its responsible users, else the alarm's
        property manager; only users who may see the alarm's company."""
        self.ensure_one()
        users = self.user_ids or alarm._get_manager_user()
        return users.filtered(lambda u: alarm.company_id in u.company_ids and u.active)
