from odoo import api, fields, models
from odoo.tools import LazyTranslate

from ..services import standing_charge

_lt = LazyTranslate(__name__)


class SmartpmStandingCharge(models.Model):
    """One standing charge of a tariff collected (or being collected) from one meter's
    credit (services/standing_charge.py): by Odoo, one per meter and period with a
    clear-credit token; or by the meter itself, from the total it reports. Engine-only:
    never created, written or deleted by a user or over RPC."""

    _name = "smartpm.standing.charge"
    _inherit = ["smartpm.engine.record"]
    _description = "Standing charge"
    # Class attributes: no env exists when the class is defined; the lazy term is
    # translated with the env where engine_record raises it (self.env._(...)).
    _engine_create_error = _lt("Standing charges are made by the charge job only.")  # pylint: disable=prefer-env-translation
    _engine_unlink_error = _lt("Standing charges are never deleted: they are in the books.")  # pylint: disable=prefer-env-translation
    _order = "period_start desc, id desc"
    _check_company_auto = True

    company_id = fields.Many2one("res.company", required=True, readonly=True, index=True)
    meter_id = fields.Many2one(
        "smartpm.meter",
        required=True,
        readonly=True,
        index=True,
        ondelete="restrict",
        check_company=True,
    )
    tenant_id = fields.Many2one(
        "res.partner",
        required=True,
        readonly=True,
        index=True,
        ondelete="restrict",
        help="The tenant who held the meter and pays the charge.",
    )
    tariff_id = fields.Many2one(
        "smartpm.tariff", readonly=True, ondelete="restrict", check_company=True
    )
    collection = fields.Selection(
        [("odoo", "By Odoo"), ("meter", "By the meter")],
        required=True,
        readonly=True,
        help="By Odoo: the daily charge job took it off the meter's credit with a signed "
        "clear-credit token. By the meter: the meter's own time-based charge took it; Odoo "
        "learnt it from the total the meter reports.",
    )
    period = fields.Selection(
        [("day", "Day"), ("month", "Month")], string="Charged per", required=True, readonly=True
    )
    period_start = fields.Date(
        string="Period",
        required=True,
        readonly=True,
        help="The day charged (or the first day of the month charged), in the company's "
        "local time; for a charge collected by the meter, the day Odoo learnt of it.",
    )
    currency_id = fields.Many2one("res.currency", required=True, readonly=True)
    amount = fields.Monetary(
        string="Charge",
        readonly=True,
        help="The tariff's standing charge for the period, taxes included.",
    )
    kwh = fields.Float(
        string="Taken from credit (kWh)",
        digits=(16, 3),
        readonly=True,
        help="What the charge took off the meter's credit: the charge converted at the "
        "tariff's price of the first kWh (taxes included), to the Wh.",
    )
    money = fields.Float(
        string="Taken from credit (money)",
        digits=(16, 3),
        readonly=True,
        help="On a money-mode meter (time of use): what the charge took off the meter's "
        "credit, in the tariff's currency, to the thousandth: the charge's untaxed part (the "
        "meter's credit holds the untaxed part of each sale).",
    )
    value = fields.Monetary(
        string="Revenue",
        currency_field="company_currency_id",
        readonly=True,
        help="Value (untaxed) of the sold credit the charge took, moved from the customer "
        "prepayments to standing charge income. Credit no sale covered (already negative) "
        "is released when a purchase repays it.",
    )
    company_currency_id = fields.Many2one(
        related="company_id.currency_id", string="Company currency"
    )
    state = fields.Selection(
        [("queued", "Queued"), ("collected", "Collected"), ("failed", "Failed")],
        required=True,
        readonly=True,
        default="queued",
        index=True,
        help="Queued: its clear-credit job is on its way to the meter. Collected: the meter "
        "took it. Failed: the meter refused it or could not be reached (see the job; retry "
        "the job, never a new charge).",
    )
    job_id = fields.Many2one("smartpm.meter.job", string="Clear-credit job", readonly=True)
    transfer_number = fields.Integer(readonly=True, help="Of the clear-credit token.")
    meter_paid_wh = fields.Integer(
        string="Meter's total collected",
        readonly=True,
        help="By the meter: the total the meter had collected at this report, in its "
        "credit's unit: Wh, or thousandths of the currency on a money-mode meter.",
    )
    date_collected = fields.Datetime(readonly=True)
    move_id = fields.Many2one("account.move", string="Journal entry", readonly=True)
    recognition_ids = fields.One2many(
        "smartpm.credit.recognition", "standing_charge_id", string="Credit taken"
    )

    def init(self):
        # one charge per meter, kind of period and period start (Odoo); one row per total
        # the meter reported (the meter): whatever runs, nothing is charged twice
        self.env.cr.execute(
            """
            CREATE UNIQUE INDEX IF NOT EXISTS smartpm_standing_charge_period_uniq
                ON smartpm_standing_charge (meter_id, period, period_start)
             WHERE collection = 'odoo';
            CREATE UNIQUE INDEX IF NOT EXISTS smartpm_standing_charge_meter_total_uniq
                ON smartpm_standing_charge (meter_id, meter_paid_wh)
             WHERE collection = 'meter';
            """
        )

    @api.depends("meter_id", "period_start", "period")
    def _compute_display_name(self):
        for charge in self:
            charge.display_name = self.env._(
                "%(meter)s %(period)s",
                meter=charge.meter_id.serial_number or "",
                period=charge.period_start.strftime(
                    "%Y-%m" if charge.period == "month" else "%Y-%m-%d"
                )
                if charge.period_start
                else "",
            )

    # clear-credit outcome (services/credit_clear.py calls these on the job's origin)
    def _on_credit_cleared(self, job, result):
        standing_charge.on_cleared(self, job, result)

    def _on_credit_clear_failed(self, job):
        standing_charge.on_clear_failed(self, job)
