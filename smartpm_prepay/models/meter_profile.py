from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..services import meter_profile, tou


class SmartpmMeterProfile(models.Model):
    """One meter model's DLMS set-up: addresses, framing, authentication and its object map
    (which OBIS code holds credit, the relay, the logs...), so that another vendor's meter
    is configuration, not code (docs/meter-contract.md "Meter profiles")."""

    _name = "smartpm.meter.profile"
    _description = "Meter profile"
    _order = "sequence, name"
    _check_company_auto = True

    name = fields.Char(
        required=True, help="The meter model, as on its nameplate, e.g. 'SmartPM 1100Net'."
    )
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one(
        "res.company",
        index=True,
        help="Leave empty to share the profile between companies.",
    )
    note = fields.Text(help="Where the object map comes from (the vendor's object list...).")
    framing = fields.Selection(
        [("wrapper", "IEC 62056-47 wrapper"), ("hdlc", "HDLC")],
        default="wrapper",
        required=True,
        help="Default framing of a new meter of this model (serial connections use HDLC).",
    )
    client_address = fields.Integer(
        default=1,
        help="Default DLMS client address of a new meter: 1 = management (credit and relay "
        "commands), 16 = public client (identification only).",
    )
    server_logical_address = fields.Integer(
        default=1, help="Default DLMS server logical address of a new meter."
    )
    server_physical_address = fields.Integer(
        default=17, help="Default HDLC server physical address of a new meter."
    )
    auth = fields.Selection(
        [("none", "None"), ("lls", "Low (password)"), ("hls_gmac", "High (HLS-GMAC)")],
        string="Authentication",
        default="hls_gmac",
        required=True,
        help="Default authentication of a new meter of this model.",
    )
    hls_challenge_length = fields.Integer(
        string="HLS challenge (bytes)",
        default=32,
        help="Bytes of the challenge the bridge sends the meter in HLS-GMAC (8 to 64). Most "
        "meters take 32; some vendors want 8 or 16.",
    )
    token_format = fields.Selection(
        [("smartpm", "SmartPM (AES-CMAC signed, kWh or money)")],
        default="smartpm",
        required=True,
        help="How Odoo mints this model's credit tokens (docs/meter-contract.md).",
    )
    object_ids = fields.One2many(
        "smartpm.meter.profile.object",
        "profile_id",
        string="Object map",
        copy=True,
        help="Which OBIS code holds each function on this meter model. Credit, relay, token "
        "gateway and clock are required; a function left out is not on the meter: its jobs "
        "fail with a clear error.",
    )
    meter_count = fields.Integer(compute="_compute_meter_count")
    offered_functions = fields.Char(
        readonly=True,
        copy=False,
        help="Technical: the contract's newer functions a module upgrade has already added "
        "to this profile (comma-separated). One the owner removed is not added again.",
    )

    _sql_constraints = [
        (
            "challenge_range",
            "CHECK(hls_challenge_length BETWEEN 8 AND 64)",
            "The HLS challenge is 8 to 64 bytes.",
        ),
    ]

    @api.model
    def default_get(self, fields_list):
        vals = super().default_get(fields_list)
        if "object_ids" in fields_list and not vals.get("object_ids"):
            # a new profile starts from the SmartPM map: a vendor's differs in a few codes
            vals["object_ids"] = [
                fields.Command.create(line) for line in meter_profile.smartpm_lines()
            ]
        return vals

    @api.model
    def _add_new_smartpm_functions(self):
        """Install and upgrade: the SmartPM profile (kept by noupdate) gets the contract's
        functions added since it was made (the meters and the simulator have them), e.g.
        the calendar's special days; a line the owner changed or removed stays as it is
        once present, and a function is added once only: one the owner removed on purpose
        stays removed at the next upgrade (``offered_functions`` keeps what was offered)."""
        profile = self.env.ref("smartpm_prepay.meter_profile_smartpm", raise_if_not_found=False)
        if not profile:
            return
        offered = set((profile.offered_functions or "").split(",")) - {""}
        have = set(profile.object_ids.mapped("function"))
        new = [
            fields.Command.create(line)
            for line in meter_profile.smartpm_lines()
            if line["function"] in meter_profile.ADDED_FUNCTIONS
            and line["function"] not in have | offered
        ]
        vals = {"offered_functions": ",".join(sorted(offered | set(meter_profile.ADDED_FUNCTIONS)))}
        if new:
            vals["object_ids"] = new
        if vals["offered_functions"] != profile.offered_functions or new:
            profile.write(vals)

    def _compute_meter_count(self):
        counts = dict(
            self.env["smartpm.meter"]._read_group(
                [("profile_id", "in", self.ids)], ["profile_id"], ["__count"]
            )
        )
        for profile in self:
            profile.meter_count = counts.get(profile, 0)

    def _object_lines(self):
        self.ensure_one()
        return [
            {"function": o.function, "obis": o.obis, "ic": o.ic, "attribute": o.attribute}
            for o in self.object_ids.sorted(lambda o: (o.sequence, o.id))
        ]

    @api.constrains("object_ids", "hls_challenge_length", "client_address")
    def _check_object_map(self):
        for profile in self:
            if not (
                meter_profile.CHALLENGE_MIN
                <= profile.hls_challenge_length
                <= meter_profile.CHALLENGE_MAX
            ):
                raise ValidationError(
                    self.env._(
                        "Meter profile %(name)s: the HLS challenge is 8 to 64 bytes.",
                        name=profile.name,
                    )
                )
            if not 0 < profile.client_address <= 0x7F:
                raise ValidationError(
                    self.env._(
                        "Meter profile %(name)s: the DLMS client address is 1 to 127.",
                        name=profile.name,
                    )
                )
            found = meter_profile.problems(profile.env, profile._object_lines())
            if found:
                raise ValidationError(
                    self.env._("Meter profile %(name)s:", name=profile.name)
                    + "\n"
                    + "\n".join(f"- {problem}" for problem in found)
                )

    def _check_special_days_in_use(self):
        """A profile that no longer lists the calendar's special days table while money-mode
        meters of it are on a tariff charging public holidays otherwise than as the weekday
        is refused: those meters would be charged the holidays as weekdays, no one told."""
        for profile in self.filtered(
            lambda p: tou.SPECIAL_DAYS_FUNCTION not in p.object_ids.mapped("function")
        ):
            meters = (
                self.env["smartpm.meter"]
                .sudo()
                .search(
                    [
                        ("profile_id", "=", profile.id),
                        ("credit_mode", "=", "money"),
                        ("state", "!=", "decommissioned"),
                    ]
                )
            )
            by_tariff = {}
            for meter in meters:
                tariff = meter._get_tariff()
                by_tariff[tariff] = by_tariff.get(tariff, meters.browse()) | meter
            for tariff, users in by_tariff.items():
                if not tariff or not tou.charges_holidays(tariff):
                    continue
                raise ValidationError(
                    self.env._(
                        "Meter profile %(profile)s must keep its line 'Calendar special days "
                        "(holidays)': meter %(meters)s in money mode uses this profile on "
                        "tariff %(tariff)s, which charges public holidays otherwise than as "
                        "the weekday. Move the meters to another profile or charge the "
                        "holidays as the weekday first.",
                        profile=profile.name,
                        meters=", ".join(users.mapped("serial_number")),
                        tariff=tariff.name,
                    )
                )

    def action_view_meters(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Meters of %(name)s", name=self.name),
            "res_model": "smartpm.meter",
            "view_mode": "list,form",
            "domain": [("profile_id", "=", self.id)],
            "context": {"default_profile_id": self.id},
        }
