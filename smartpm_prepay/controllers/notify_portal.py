"""Tenant portal: how the tenant is told of credit, trips, reconnections and delivered
purchases (/my/notifications, linked from /my/account and the portal home).

Only the logged-in tenant's own preferences are read and written: the partner comes from
the session, never from the form (a posted partner id is ignored)."""

from odoo import http
from odoo.http import request

PREFERENCE_FIELDS = ("smartpm_notify_email", "smartpm_notify_sms")


class SmartpmNotifyPortal(http.Controller):
    def _get_notify_partner(self):
        # the tenant record (the commercial partner: a contact of a tenant company shares it)
        return request.env.user.partner_id.commercial_partner_id

    def _notify_errors(self, partner, values):
        errors = []
        if values["smartpm_notify_email"] and not partner.email:
            errors.append(
                request.env._(
                    "Add your e-mail address in your account details to be told by e-mail."
                )
            )
        if values["smartpm_notify_sms"] and not (partner.mobile or partner.phone):
            errors.append(
                request.env._("Add your phone number in your account details to be told by SMS.")
            )
        return errors

    @http.route(
        "/my/notifications", type="http", auth="user", website=True, methods=["GET", "POST"]
    )
    def portal_my_notifications(self, **post):
        partner = self._get_notify_partner()
        errors, saved = [], False
        if request.httprequest.method == "POST":
            values = {name: bool(post.get(name)) for name in PREFERENCE_FIELDS}
            errors = self._notify_errors(partner.sudo(), values)
            if not errors:
                # sudo: portal users may not write partners; the partner is the session's
                partner.sudo().write(values)
                saved = True
        partner = partner.sudo()
        return request.render(
            "smartpm_prepay.portal_my_notifications",
            {
                "page_name": "notifications",
                "partner": partner,
                "errors": errors,
                "saved": saved,
                "notify_email": bool(post.get("smartpm_notify_email"))
                if errors
                else partner.smartpm_notify_email,
                "notify_sms": bool(post.get("smartpm_notify_sms"))
                if errors
                else partner.smartpm_notify_sms,
            },
        )
