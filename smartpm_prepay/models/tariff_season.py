from odoo import api, fields, models

MONTHS = [
    ("1", "January"),
    ("2", "February"),
    ("3", "March"),
    ("4", "April"),
    ("5", "May"),
    ("6", "June"),
    ("7", "July"),
    ("8", "August"),
    ("9", "September"),
    ("10", "October"),
    ("11", "November"),
    ("12", "December"),
]


class SmartpmTariffSeason(models.Model):
    """A season of a time-of-use version: from its start (day and month, every year) to the
    next season's start. Without seasons the band hours apply all year."""

    _name = "smartpm.tariff.season"
    _description = "Time-of-use season"
    _order = "version_id, start_month_int, start_day"

    version_id = fields.Many2one(
        "smartpm.tariff.tou.version", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="version_id.company_id", store=True)
    name = fields.Char(required=True, help="Summer, Winter...")
    start_month = fields.Selection(
        MONTHS, required=True, default="1", help="Month the season starts, every year."
    )
    start_month_int = fields.Integer(compute="_compute_start_month_int", store=True)
    start_day = fields.Integer(
        required=True, default=1, help="Day of the month the season starts (from midnight)."
    )

    _sql_constraints = [
        (
            "start_uniq",
            "unique(version_id, start_month, start_day)",
            "Two seasons of a version start on the same day.",
        ),
        ("day_range", "CHECK(start_day BETWEEN 1 AND 31)", "A season starts on day 1 to 31."),
    ]

    @api.depends("start_month")
    def _compute_start_month_int(self):
        for season in self:
            season.start_month_int = int(season.start_month or 0)
