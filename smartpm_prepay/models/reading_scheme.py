from odoo import api, fields, models


class SmartpmReadingScheme(models.Model):
    """A named list of OBIS objects read together (billing, instantaneous, profile...)."""

    _name = "smartpm.reading.scheme"
    _description = "Reading scheme"
    _order = "sequence, name"

    name = fields.Char(required=True, translate=True)
    code = fields.Char(help="Technical name used by the scheduled readings.")
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)
    object_ids = fields.Many2many("smartpm.obis.object", string="OBIS objects", required=True)
    has_profile = fields.Boolean(compute="_compute_has_profile")
    profile_days = fields.Integer(
        string="Profile range (days)",
        default=1,
        help="Profiles and logs are read for this many days back from now.",
    )
    description = fields.Text(translate=True)

    _sql_constraints = [
        ("code_uniq", "unique(code)", "A scheme code is unique."),
        (
            "profile_days_positive",
            "CHECK(profile_days > 0)",
            "The profile range is 1 day at least.",
        ),
    ]

    @api.depends("object_ids.is_profile")
    def _compute_has_profile(self):
        for scheme in self:
            scheme.has_profile = any(scheme.object_ids.mapped("is_profile"))
