"""Tenant portal: take emergency credit on one's own meter (issue 17 §1).

A POST with the form's CSRF token; the take is queued through services/emergency.py, which
makes one job per meter however often the button is pressed. Any other tenant's meter id
is a 404, as on the meter page."""

from urllib.parse import urlencode

from odoo import http
from odoo.exceptions import UserError
from odoo.http import request

from ..services import emergency
from .portal import SmartpmMeterPortal


class SmartpmEmergencyPortal(SmartpmMeterPortal):
    @http.route(
        ["/my/meters/<int:meter_id>/emergency"],
        type="http",
        auth="user",
        methods=["POST"],
        website=True,
    )
    def portal_my_meter_emergency(self, meter_id, **kwargs):
        meter = self._get_own_meter(meter_id)
        url = f"/my/meters/{meter.id}"
        try:
            emergency.take(
                meter.sudo(), request.env._("tenant portal, %(user)s", user=request.env.user.name)
            )
        except UserError as e:
            return request.redirect(f"{url}?{urlencode({'error': e.args[0]})}")
        return request.redirect(f"{url}?{urlencode({'emergency': 'requested'})}")
