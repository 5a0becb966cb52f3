from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..services import tou
from .tariff_band_rule import VERSION_SAVE

WEEKDAY_FIELDS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class SmartpmTariffTouVersion(models.Model):
    """The time-of-use prices of a tariff from a date on: its bands (a price each), its
    seasons and the hours of each weekday every band applies to. The version in force is
    the last one started; the next one is pushed to the meters ahead as their passive
    activity calendar, with its start as activation time (services/tou.py)."""

    _name = "smartpm.tariff.tou.version"
    _description = "Time-of-use prices of a tariff from a date"
    _order = "tariff_id, date_start desc"
    _check_company_auto = True

    tariff_id = fields.Many2one(
        "smartpm.tariff", required=True, ondelete="cascade", index=True, check_company=True
    )
    company_id = fields.Many2one(related="tariff_id.company_id", store=True, index=True)
    currency_id = fields.Many2one(related="tariff_id.currency_id")
    name = fields.Char(compute="_compute_name")
    date_start = fields.Date(
        string="Effective from",
        required=True,
        default=fields.Date.context_today,
        help="First day (the company's local day, from midnight) these prices apply. A "
        "later date is a planned tariff change: the meters receive it ahead, as their "
        "passive calendar, and switch to it by themselves at that midnight.",
    )
    band_ids = fields.One2many("smartpm.tariff.band", "version_id", string="Price bands", copy=True)
    season_ids = fields.One2many("smartpm.tariff.season", "version_id", string="Seasons", copy=True)
    rule_ids = fields.One2many(
        "smartpm.tariff.band.rule", "version_id", string="Band hours", copy=True
    )
    holiday_mode = fields.Selection(
        [
            ("weekday", "As the weekday it falls on"),
            ("sunday", "As a Sunday"),
            ("band", "All day in one band"),
        ],
        string="Public holidays charged",
        required=True,
        default="weekday",
        help="How the meters charge the company's public holidays (the holidays of the "
        "friendly-period calendar in Settings, no other list): as the weekday they fall on "
        "(a Wednesday holiday has Wednesday's peak), with Sunday's band hours, or all day at "
        "the price of one band. Each holiday is sent to the meters as a special day; a "
        "change of the holidays or of this setting reaches every meter of the tariff once.",
    )
    holiday_band_id = fields.Many2one(
        "smartpm.tariff.band",
        string="Holiday band",
        domain="[('version_id', '=', id)]",
        help="The band (and so the price) of the whole day on a public holiday.",
    )
    state = fields.Selection(
        [("past", "Replaced"), ("current", "In force"), ("future", "Planned")],
        compute="_compute_state",
        help="In force: the last version started; Planned: starts later; Replaced: a later "
        "version is in force.",
    )

    _sql_constraints = [
        (
            "tariff_date_uniq",
            "unique(tariff_id, date_start)",
            "Two time-of-use versions of a tariff start on the same day.",
        ),
    ]

    @api.model_create_multi
    def create(self, vals_list):
        saving = self.with_context(**{VERSION_SAVE: True})
        versions = super(SmartpmTariffTouVersion, saving).create(vals_list).with_env(self.env)
        versions._push_calendars()
        return versions

    def write(self, vals):
        # the lines saved with the version are checked by its constraints, once, at the end
        res = super(SmartpmTariffTouVersion, self.with_context(**{VERSION_SAVE: True})).write(vals)
        self._push_calendars()
        return res

    def _push_calendars(self):
        """The tariff's money-mode meters get the new calendar (once per change)."""
        tou.push(self.env, tou.meters_of_tariffs(self.env, self.tariff_id))

    @api.depends("tariff_id.name", "date_start")
    def _compute_name(self):
        for version in self:
            version.name = self.env._(
                "%(tariff)s from %(date)s", tariff=version.tariff_id.name, date=version.date_start
            )

    @api.depends("date_start", "tariff_id.tou_version_ids.date_start")
    def _compute_state(self):
        for version in self:
            tariff = version.tariff_id
            current = tariff._tou_version_at() if tariff else version.browse()
            if version == current:
                version.state = "current"
            elif version.date_start and current and version.date_start < current.date_start:
                version.state = "past"
            else:
                version.state = "future"

    @api.constrains("band_ids", "season_ids", "rule_ids", "date_start")
    def _check_coverage(self):
        """Every minute of every weekday of every season is in exactly one band."""
        for version in self:
            error = tou.coverage_error(version)
            if error:
                raise ValidationError(error)

    @api.constrains("holiday_mode", "holiday_band_id", "band_ids")
    def _check_holiday_band(self):
        """All day in one band: a band of this version."""
        for version in self:
            error = tou.holiday_error(version)
            if error:
                raise ValidationError(error)

    @api.constrains("holiday_mode")
    def _check_holiday_meters(self):
        """Holidays charged otherwise than as the weekday: every money-mode meter of the
        tariff must hold special days (its profile), else they would be charged as
        weekdays unseen."""
        for version in self.filtered(lambda v: v.holiday_mode != "weekday"):
            meters = tou.meters_of_tariffs(self.env, version.tariff_id, all_states=True)
            error = tou.special_days_error(meters, version.tariff_id)
            if error:
                raise ValidationError(error)
