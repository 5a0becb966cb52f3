from odoo import api, models

from ..services import friendly
from .res_company import FRIENDLY_DEFER


class ResourceCalendarLeaves(models.Model):
    """Time off: the global ones (no resource) are the public holidays of the friendly
    schedule."""

    _inherit = "resource.calendar.leaves"

    def _smartpm_push_friendly(self, companies):
        if not self.env.context.get(FRIENDLY_DEFER):
            friendly.push_companies(self.env, companies)

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
