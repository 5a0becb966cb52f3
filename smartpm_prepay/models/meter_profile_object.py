from odoo import api, fields, models

from ..services import meter_profile, tou


class SmartpmMeterProfileObject(models.Model):
    """One line of a meter profile's object map: a function at an OBIS code."""

    _name = "smartpm.meter.profile.object"
    _description = "Meter profile object"
    _order = "profile_id, sequence, id"

    profile_id = fields.Many2one(
        "smartpm.meter.profile", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="profile_id.company_id", store=True)
    sequence = fields.Integer(default=10)
    function = fields.Selection(
        meter_profile.function_selection(),
        required=True,
        help="What the object does for Odoo: the bridge looks here to find the meter's "
        "credit, relay, logs...",
    )
    obis = fields.Char(
        string="OBIS code",
        required=True,
        help="Six numbers 0-255 with dots (A.B.C.D.E.F), from the vendor's object list, "
        "e.g. 0.0.19.10.0.255.",
    )
    ic = fields.Integer(
        string="Interface class",
        required=True,
        help="The COSEM interface class of the object (the vendor's object list says it): "
        "Credit 112, Disconnect control 70, Limiter 71, Token gateway 115, Clock 8, "
        "Profile generic 7, Charge 113, Activity calendar 20, Push setup 40, Data 1.",
    )
    attribute = fields.Integer(
        help="Credit, limiter and clock only: the attribute that holds the value (credit "
        "2 current_credit_amount, limiter 3 threshold_active, clock 2 time). 0: the usual.",
    )
    contract_obis = fields.Char(
        string="SmartPM code",
        compute="_compute_contract_obis",
        help="Where the SmartPM meter (and the simulator) holds this function.",
    )

    @api.depends("function")
    def _compute_contract_obis(self):
        for line in self:
            spec = meter_profile.FUNCTIONS.get(line.function)
            line.contract_obis = (spec[1] or "0.x.25.9.0.255") if spec else False

    @api.onchange("function")
    def _onchange_function(self):
        """A new line starts at the function's class and the SmartPM code."""
        spec = meter_profile.FUNCTIONS.get(self.function)
        if spec:
            self.ic = spec[2][0]
            self.attribute = spec[3] or 0
            if not self.obis and spec[1]:
                self.obis = spec[1]

    @api.constrains("function", "obis", "ic", "attribute")
    def _check_profile(self):
        self.profile_id._check_object_map()

    def _special_days_profiles(self):
        return self.filtered(lambda o: o.function == tou.SPECIAL_DAYS_FUNCTION).profile_id

    def write(self, vals):
        losing = self._special_days_profiles() if "function" in vals else self.profile_id.browse()
        res = super().write(vals)
        losing._check_special_days_in_use()
        return res

    def unlink(self):
        profiles = self.profile_id
        losing = self._special_days_profiles()
        res = super().unlink()
        profiles.exists()._check_object_map()  # a required object taken out is refused
        losing.exists()._check_special_days_in_use()  # so are holidays meters still need
        return res
