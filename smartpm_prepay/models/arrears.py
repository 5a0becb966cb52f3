from odoo import api, models

# alarm type -> mail template (xml id) sent to the tenant
TENANT_MAIL_TEMPLATES = {
    "low_credit": "smartpm_prepay.mail_template_low_credit",
    "zero_credit": "smartpm_prepay.mail_template_zero_credit",
}


class SmartpmAlarm(models.Model):
    """Arrears control: the tenant hears about low and zero credit by e-mail."""

    _inherit = "smartpm.alarm"

    @api.model_create_multi
    def create(self, vals_list):
        alarms = super().create(vals_list)
        alarms._notify_tenant()
        return alarms

    def _notify_tenant(self):
        for alarm in self.sudo():
            xmlid = TENANT_MAIL_TEMPLATES.get(alarm.alarm_type)
            tenant = alarm.meter_id.tenant_id
            if not xmlid or not tenant.email:
                continue
            template = self.env.ref(xmlid, raise_if_not_found=False)
            if template:
                # queued, sent by the mail cron: a mail server outage never blocks ingest
                template.sudo().send_mail(alarm.id, force_send=False)
