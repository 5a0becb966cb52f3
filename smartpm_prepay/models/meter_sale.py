import math
from datetime import timedelta

from odoo import _, api, fields, models
from odoo.tools.float_utils import float_round
from odoo.tools.misc import format_amount

from ..services import engine

THRESHOLD_PRIORITY = 20
# A meter not heard from for longer may not get its credit soon: the sale says so.
CONTACT_WARNING_AFTER = timedelta(days=1)
# Purchases sold but not yet on the meter (its last known credit does not count them).
UNDELIVERED_STATES = ("paid", "queued")


def format_money(env, amount, currency):
    """``amount`` as the currency writes it ("$ 1.00"), for messages and screens."""
    return format_amount(env, amount, currency)


def describe_price(tariff, price_per_kwh, tier_breakdown):
    """The price a sale was charged, in words, as the tenant pays it (the tariff's taxes
    included, written as the tariff writes prices): one price, or the kWh of each tier."""
    parts = [p for p in (tier_breakdown or []) if p.get("kwh")]
    per_kwh = _("%s per kWh", tariff._format_price(price_per_kwh * tariff._tax_factor()))
    if len(parts) <= 1:
        return per_kwh
    tiers = tariff._quote_description({"tier_breakdown": parts})
    return _("%(tiers)s (on average %(price)s)", tiers=tiers, price=per_kwh)


class SmartpmMeter(models.Model):
    """Selling side of the meter: tariff, transfer numbers, purchases, arrears and load
    control (thresholds and load limit pushed to the meter by jobs)."""

    _inherit = "smartpm.meter"

    relay_state = fields.Selection(tracking=True)
    last_transfer_number = fields.Integer(
        readonly=True, copy=False, help="Last credit transfer number given to this meter."
    )
    effective_tariff_id = fields.Many2one(
        "smartpm.tariff", compute="_compute_effective_tariff", string="Tariff in force"
    )
    threshold_override = fields.Boolean(
        string="Own thresholds",
        help="Use the thresholds below instead of the tariff's.",
    )
    effective_low_credit_kwh = fields.Float(
        string="Low-credit alarm in force (kWh)", compute="_compute_effective_thresholds"
    )
    effective_trip_kwh = fields.Float(
        string="Trip threshold in force (kWh)", compute="_compute_effective_thresholds"
    )
    purchase_ids = fields.One2many("smartpm.credit.purchase", "meter_id", string="Purchases")
    purchase_count = fields.Integer(compute="_compute_purchase_count")

    @api.depends("tariff_id", "tenant_id.smartpm_tariff_id")
    def _compute_effective_tariff(self):
        for meter in self:
            meter.effective_tariff_id = meter._get_tariff()

    @api.depends(
        "threshold_override",
        "low_credit_kwh",
        "trip_kwh",
        "tariff_id.low_credit_kwh",
        "tariff_id.trip_kwh",
        "tenant_id.smartpm_tariff_id",
    )
    def _compute_effective_thresholds(self):
        for meter in self:
            low, trip = meter._get_thresholds()
            meter.effective_low_credit_kwh = low
            meter.effective_trip_kwh = trip

    def _compute_purchase_count(self):
        counts = dict(
            self.env["smartpm.credit.purchase"]._read_group(
                [("meter_id", "in", self.ids)], ["meter_id"], ["__count"]
            )
        )
        for meter in self:
            meter.purchase_count = counts.get(meter, 0)

    def _get_tariff(self):
        """The meter's own tariff, else its tenant's default tariff."""
        self.ensure_one()
        return self.tariff_id or self.tenant_id.sudo().smartpm_tariff_id

    def _get_thresholds(self):
        """(low-credit alarm, trip) in kWh: the tariff's unless the meter has its own."""
        self.ensure_one()
        tariff = self._get_tariff()
        if tariff and not self.threshold_override:
            return tariff.low_credit_kwh, tariff.trip_kwh
        return self.low_credit_kwh, self.trip_kwh

    # ---------------------------------------------------------------- sale helpers
    def _smartpm_contact_warning(self, now=None):
        """Why the credit may not reach the meter soon (never seen, silent for a day), or
        False. A warning, not a refusal: the credit waits in the queue for the meter."""
        self.ensure_one()
        meter = self.sudo()
        if not meter.last_seen:
            return _(
                "Meter %s has never answered: the credit will reach it only once it "
                "is connected. Tell the customer.",
                meter.serial_number,
            )
        now = now or fields.Datetime.now()
        if now - meter.last_seen > CONTACT_WARNING_AFTER:
            return _(
                "Meter %(meter)s has not answered since %(date)s: the credit will reach "
                "it when it is back in contact. Tell the customer.",
                meter=meter.serial_number,
                date=fields.Datetime.context_timestamp(self, meter.last_seen).strftime(
                    "%Y-%m-%d %H:%M"
                ),
            )
        return False

    def _smartpm_amount_limits(self, currency=None):
        """(minimum, maximum, text) of one sale for this meter, the text in the currency
        ("between $ 1.00 and $ 10,000.00"); 0 maximum = no maximum."""
        self.ensure_one()
        meter = self.sudo()
        tariff = meter._get_tariff()
        if not tariff:
            return 0.0, 0.0, ""
        currency = currency or tariff.currency_id
        minimum, maximum = tariff._get_amount_limits(meter.company_id)
        if maximum:
            text = _(
                "between %(min)s and %(max)s",
                min=format_money(self.env, minimum, currency),
                max=format_money(self.env, maximum, currency),
            )
        else:
            text = _("at least %s", format_money(self.env, minimum, currency))
        return minimum, maximum, text

    def _smartpm_amount_error(self, amount, currency=None):
        """Why ``amount`` is not a sale this meter can take (number, sign, limits), with
        the amounts in the currency, or False. The vending service checks again."""
        self.ensure_one()
        if isinstance(amount, bool) or not isinstance(amount, (int, float)):
            return _("The amount must be a number.")
        if not math.isfinite(amount):
            return _("The amount must be a number.")
        minimum, maximum, limits = self._smartpm_amount_limits(currency)
        if amount < 0:
            return _(
                "The amount cannot be negative: credit sold cannot be taken back here. "
                "Enter what the customer pays, %s.",
                limits,
            )
        if amount == 0:
            return _("Enter the amount the customer pays, %s.", limits)
        tariff = self.sudo()._get_tariff()
        if tariff:
            cur = currency or tariff.currency_id
            if cur.compare_amounts(amount, minimum) < 0 or (
                maximum and cur.compare_amounts(amount, maximum) > 0
            ):
                return _(
                    "%(amount)s is not possible for meter %(meter)s: the amount must be "
                    "%(limits)s.",
                    amount=format_money(self.env, amount, cur),
                    meter=self.serial_number,
                    limits=limits,
                )
        return False

    def _smartpm_last_purchase(self):
        """The meter's last purchase (not reversed) as a sales screen shows it, or False."""
        self.ensure_one()
        purchase = (
            self.env["smartpm.credit.purchase"]
            .sudo()
            .search(
                [("meter_id", "=", self.id), ("state", "!=", "reversed")],
                order="date desc, id desc",
                limit=1,
            )
        )
        if not purchase:
            return False
        return {
            "reference": purchase.name,
            "date": fields.Datetime.to_string(purchase.date),
            "amount": purchase.amount,
            "amount_text": format_money(self.env, purchase.amount, purchase.currency_id),
            "kwh": purchase.kwh,
            "channel": dict(purchase._fields["channel"]._description_selection(self.env)).get(
                purchase.channel, purchase.channel
            ),
        }

    def _smartpm_estimated_balance_kwh(self, extra_kwh=0.0):
        """Credit the meter should hold once what is sold reaches it: its last known
        credit, the kWh of purchases not yet delivered, and ``extra_kwh``."""
        self.ensure_one()
        meter = self.sudo()
        return float_round(meter.credit_kwh + meter._smartpm_undelivered_kwh() + extra_kwh, 3)

    def _smartpm_undelivered_kwh(self):
        """kWh sold for the meter and not yet on it (its last known credit lacks them)."""
        self.ensure_one()
        pending = (
            self.env["smartpm.credit.purchase"]
            .sudo()
            .search([("meter_id", "=", self.id), ("state", "in", UNDELIVERED_STATES)])
        )
        return float_round(sum(pending.mapped("kwh")), 3)

    def _prepare_sale_info(self):
        """What a sales channel shows about the meter before selling (called under sudo)."""
        self.ensure_one()
        tariff = self._get_tariff()
        minimum, maximum = tariff._get_amount_limits(self.company_id) if tariff else (0.0, 0.0)
        return {
            "meter_id": self.id,
            "meter": self.serial_number,
            "tenant": self.tenant_id.name,
            "tenant_number": self.tenant_id.tenant_number or "",
            "tariff": tariff.name if tariff else False,
            "currency": tariff.currency_id.name if tariff else False,
            "price_per_kwh": tariff.price_per_kwh if tariff else 0.0,
            "min_amount": minimum,
            "max_amount": maximum,
            "credit_kwh": self.credit_kwh,
            "relay_state": self.relay_state,
            "sellable": bool(tariff),
            "warning": self._smartpm_contact_warning() or False,
        }

    # ---------------------------------------------------------------- push to the meter
    def _commandable(self):
        return self.filtered(lambda m: m.active and m.state in ("active", "disconnected"))

    def _supersede(self, job_type):
        """Cancel pending jobs of ``job_type``: only the newest setting matters."""
        pending = (
            self.env["smartpm.meter.job"]
            .sudo()
            .search(
                [
                    ("meter_id", "in", self.ids),
                    ("job_type", "=", job_type),
                    ("state", "=", "pending"),
                ]
            )
        )
        if pending:
            from ..services import job_queue

            job_queue.cancel(self.env, pending.ids)

    def _push_thresholds(self):
        meters = self._commandable()
        meters._supersede("set_thresholds")
        vals_list = []
        for meter in meters:
            low, trip = meter._get_thresholds()
            vals_list.append(
                {
                    "meter_id": meter.id,
                    "job_type": "set_thresholds",
                    "payload": {"low_credit_kwh": low, "trip_kwh": trip},
                    "priority": THRESHOLD_PRIORITY,
                }
            )
        # one batch: a tariff change may concern many meters
        return engine.create(self.env["smartpm.meter.job"], vals_list)

    def _push_load_limit(self):
        meters = self._commandable()
        meters._supersede("set_load_limit")
        return engine.create(
            self.env["smartpm.meter.job"],
            [
                {
                    "meter_id": meter.id,
                    "job_type": "set_load_limit",
                    "payload": {"load_limit_w": meter.load_limit_w},
                    "priority": THRESHOLD_PRIORITY,
                }
                for meter in meters
            ],
        )

    @api.model_create_multi
    def create(self, vals_list):
        Partner = self.env["res.partner"].sudo()
        for vals in vals_list:
            if vals.get("tenant_id") and "load_limit_w" not in vals:
                vals["load_limit_w"] = Partner.browse(vals["tenant_id"]).load_limit_w
        return super().create(vals_list)

    def write(self, vals):
        if vals.get("tenant_id") and "load_limit_w" not in vals:
            # a meter moving to a tenant with a load limit takes the tenant's limit
            limit = self.env["res.partner"].sudo().browse(vals["tenant_id"]).load_limit_w
            if limit:
                vals = dict(vals, load_limit_w=limit)
        watch_thresholds = {
            "low_credit_kwh",
            "trip_kwh",
            "threshold_override",
            "tariff_id",
            "tenant_id",
        } & set(vals)
        before = {m.id: m._get_thresholds() for m in self} if watch_thresholds else {}
        load_before = {m.id: m.load_limit_w for m in self} if "load_limit_w" in vals else {}
        res = super().write(vals)
        if before:
            self.filtered(lambda m: m._get_thresholds() != before[m.id])._push_thresholds()
        if load_before:
            self.filtered(lambda m: m.load_limit_w != load_before[m.id])._push_load_limit()
        return res

    def action_push_settings(self):
        """Button: send thresholds and load limit to the meter again."""
        self._check_can_command()
        self.check_access("write")
        self._push_thresholds()
        self._push_load_limit()
        return self._notify_queued(_("Settings queued"))

    def action_view_purchases(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": _("Purchases"),
            "res_model": "smartpm.credit.purchase",
            "view_mode": "list,form",
            "domain": [("meter_id", "=", self.id)],
        }

    def action_sell_credit(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": _("Sell credit"),
            "res_model": "smartpm.sell.credit.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"default_meter_id": self.id},
        }
