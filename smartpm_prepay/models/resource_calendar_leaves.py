from datetime import datetime, time, timedelta

import pytz

from odoo import api, models

from ..services import calendars, friendly, local_time
from .res_company import FRIENDLY_DEFER


class ResourceCalendarLeaves(models.Model):
    """Time off: the global ones (no resource) are the public holidays of the friendly
    schedule."""

    _inherit = "resource.calendar.leaves"

    def _smartpm_push_friendly(self, companies):
        if not self.env.context.get(FRIENDLY_DEFER):
            calendars.push_companies(self.env, companies)  # TOU: holidays as special days

    @api.model_create_multi
    def create(self, vals_list):
        leaves = super().create(vals_list)
        leaves._smartpm_push_friendly(friendly.companies_of_leaves(self.env, leaves))
        return leaves

    def write(self, vals):
        before = friendly.companies_of_leaves(self.env, self)
        res = super().write(vals)
        self._smartpm_push_friendly(before | friendly.companies_of_leaves(self.env, self))
        return res

    def unlink(self):
        companies = friendly.companies_of_leaves(self.env, self)
        res = super().unlink()
        self._smartpm_push_friendly(companies)
        return res

    @api.model
    def _demo_public_holiday(self, calendar_id, name):
        """Demo data (demo/tou_demo.xml): a public holiday of the calendar's company on the
        next Wednesday after today, the whole local day of the company's time zone."""
        calendar = self.env["resource.calendar"].browse(calendar_id)
        company = calendar.company_id or self.env.company
        today = local_time.local_today(company)
        day = today + timedelta(days=(2 - today.weekday()) % 7 or 7)
        tz = local_time.company_tz(company)

        def utc(local_day):
            start = tz.localize(datetime.combine(local_day, time.min))
            return start.astimezone(pytz.utc).replace(tzinfo=None)

        return self.create(
            {
                "name": name,
                "calendar_id": calendar.id,
                "company_id": company.id,
                "date_from": utc(day),
                "date_to": utc(day + timedelta(days=1)),
                "time_type": "leave",
            }
        )
