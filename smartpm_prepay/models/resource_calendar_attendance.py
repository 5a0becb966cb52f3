from odoo import api, models

from ..services import friendly
from .res_company import FRIENDLY_DEFER


class ResourceCalendarAttendance(models.Model):
    """Hours of a calendar: the friendly hours of the companies that follow it."""

    _inherit = "resource.calendar.attendance"

    def _smartpm_push_friendly(self, calendars):
        if not self.env.context.get(FRIENDLY_DEFER):
            companies = friendly.companies_of_calendars(self.env, calendars)
            friendly.push_companies(self.env, companies)

    @api.model_create_multi
    def create(self, vals_list):
        records = super().create(vals_list)
        records._smartpm_push_friendly(records.calendar_id)
        return records

    def write(self, vals):
        calendars = self.calendar_id
        res = super().write(vals)
        self._smartpm_push_friendly(calendars | self.calendar_id)
        return res

    def unlink(self):
        calendars = self.calendar_id
        res = super().unlink()
        self._smartpm_push_friendly(calendars)
        return res
