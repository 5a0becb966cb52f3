from odoo import fields, models

CHANNELS = [("live", "Live notification"), ("email", "E-mail"), ("sms", "SMS")]


class SmartpmNotificationLog(models.Model):
    """One notification told to one person on one channel for one event: the trail, and
    the guard that nothing is sent twice (services/notify.py claims the row first, under
    the unique key, and sends only if the row is new). Written by the engine only."""

    _name = "smartpm.notification.log"
    _description = "Notification sent"
    _order = "id desc"
    _rec_name = "event_key"

    company_id = fields.Many2one("res.company", readonly=True, index=True)
    event_key = fields.Char(
        required=True,
        readonly=True,
        help="The event told: the meter event (meter, alarm type, time on the meter), the "
        "delivered purchase or the reconnection job. The same event is told once.",
    )
    audience = fields.Selection(
        [("owner", "Owner's staff"), ("tenant", "Tenant")], required=True, readonly=True
    )
    kind = fields.Char(readonly=True, help="What was told (an alarm type, purchase_delivered...).")
    channel = fields.Selection(CHANNELS, required=True, readonly=True)
    partner_id = fields.Many2one(
        "res.partner", string="Recipient", required=True, readonly=True, ondelete="cascade"
    )
    res_model = fields.Char(string="Document model", readonly=True)
    res_id = fields.Many2oneReference(
        string="Document", model_field="res_model", readonly=True, help="The record told of."
    )
    state = fields.Selection(
        [("queued", "Queued"), ("skipped", "Not sent")],
        required=True,
        readonly=True,
        help="Queued: handed to the mail or SMS queue (or to the live bus). Not sent: see "
        "the note (no e-mail address, no phone number, template archived).",
    )
    note = fields.Char(readonly=True)
    mail_id = fields.Many2one("mail.mail", string="E-mail", readonly=True, ondelete="set null")
    sms_id = fields.Many2one("sms.sms", string="SMS", readonly=True, ondelete="set null")

    _sql_constraints = [
        (
            "event_channel_partner_uniq",
            "unique(event_key, channel, partner_id)",
            "This event was told to this recipient on this channel already.",
        ),
    ]
