from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..services.obis import OBIS_RE, PROFILE_IC


class SmartpmObisObject(models.Model):
    """One COSEM object attribute a reading can ask for (docs/meter-contract.md)."""

    _name = "smartpm.obis.object"
    _description = "OBIS object"
    _order = "sequence, obis"
    _rec_names_search = ["name", "obis"]

    name = fields.Char(string="Label", required=True, translate=True)
    obis = fields.Char(string="OBIS", required=True)
    ic = fields.Integer(string="Interface class", required=True, default=3)
    attribute = fields.Integer(required=True, default=2)
    unit = fields.Char()
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)
    is_profile = fields.Boolean(compute="_compute_is_profile", store=True)
    capture_obis = fields.Char(
        string="Captured values",
        help="For a profile: the OBIS codes of its value columns after the clock, "
        "comma-separated (e.g. 1.0.1.8.0.255,1.0.2.8.0.255).",
    )

    _sql_constraints = [
        ("obis_attr_uniq", "unique(obis, attribute)", "This OBIS attribute exists already."),
    ]

    @api.depends("ic", "attribute")
    def _compute_is_profile(self):
        for obj in self:
            obj.is_profile = obj.ic == PROFILE_IC and obj.attribute == 2

    @api.constrains("obis", "capture_obis")
    def _check_obis(self):
        for obj in self:
            codes = [obj.obis] + [
                c.strip() for c in (obj.capture_obis or "").split(",") if c.strip()
            ]
            for code in codes:
                if not OBIS_RE.match(code or ""):
                    raise ValidationError(
                        self.env._("%(code)s is not an OBIS code like 1.0.1.8.0.255.", code=code)
                    )

    @api.depends("name", "obis")
    def _compute_display_name(self):
        for obj in self:
            obj.display_name = f"{obj.name} ({obj.obis})"

    @api.model
    def _names_by_obis(self, codes=None):
        """{OBIS code: label} of the known objects (attribute 2 first: the value)."""
        domain = [("obis", "in", list(codes))] if codes is not None else []
        objects = self.sudo().with_context(active_test=False).search(domain)
        names = {}
        for obj in objects.sorted(lambda o: (o.attribute != 2, o.sequence, o.id)):
            names.setdefault(obj.obis, obj.name)
        return names

    def _prepare_job_object(self):
        self.ensure_one()
        return {"obis": self.obis, "ic": self.ic, "attribute": self.attribute}

    def _capture_columns(self):
        self.ensure_one()
        return [c.strip() for c in (self.capture_obis or "").split(",") if c.strip()]
