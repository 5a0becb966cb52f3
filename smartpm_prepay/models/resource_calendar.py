from odoo import models

from ..services import calendars, friendly
from .res_company import FRIENDLY_DEFER


class ResourceCalendar(models.Model):
    _inherit = "resource.calendar"

    def write(self, vals):
        """A calendar form saved (its hours rewritten line by line) pushes the friendly
        schedule of the companies that follow it once."""
        res = super(ResourceCalendar, self.with_context(**{FRIENDLY_DEFER: True})).write(vals)
        if not self.env.context.get(FRIENDLY_DEFER):
            companies = friendly.companies_of_calendars(self.env, self)
            calendars.push_companies(self.env, companies)  # TOU: its public holidays too
        return res
