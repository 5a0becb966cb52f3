import threading

from odoo import api, fields, models
from odoo.exceptions import AccessError, ValidationError
from odoo.tools import float_round, formatLang

from ..services import emergency, fbe, local_time, pricing, standing_charge, tou
from ..services.sale_info import format_kwh

FBE_COMMIT_EVERY = 200  # grants per commit of the free basic electricity cron


class SmartpmTariff(models.Model):
    """Price of energy: base price, optional block tiers by kWh bought in the month,
    taxes (included in what the customer pays), thresholds and sale limits."""

    _name = "smartpm.tariff"
    _description = "Electricity tariff"
    _order = "name"
    _check_company_auto = True

    name = fields.Char(required=True)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company, index=True
    )
    currency_id = fields.Many2one(
        "res.currency",
        required=True,
        default=lambda self: self.env.company.currency_id,
        help="Currency the customer pays in.",
    )
    # Float, not Monetary: energy prices need more decimals than the currency's rounding.
    price_per_kwh = fields.Float(
        string="Price per kWh",
        required=True,
        digits=(16, 4),
        help="Price (taxes excluded) of the first kWh of the month, up to the first tier.",
    )
    tier_ids = fields.One2many("smartpm.tariff.tier", "tariff_id", string="Block tiers", copy=True)
    tax_ids = fields.Many2many(
        "account.tax",
        string="Taxes",
        domain=[("type_tax_use", "=", "sale")],
        check_company=True,
        help="Sale taxes, included in the amount the customer pays.",
    )
    kwh_rounding = fields.Float(
        string="kWh rounding",
        default=0.01,
        digits=(16, 4),
        required=True,
        help="Energy sold is rounded down to a multiple of this.",
    )
    low_credit_kwh = fields.Float(string="Low-credit alarm (kWh)", default=5.0)
    trip_kwh = fields.Float(string="Trip threshold (kWh)", default=0.0)
    # time of use: money-mode meters compare credit in currency
    low_credit_money = fields.Monetary(
        string="Low-credit alarm",
        default=1.0,
        help="Time of use (money-mode meters): the credit in currency at or below which the "
        "meter warns the tenant.",
    )
    trip_money = fields.Monetary(
        string="Trip threshold",
        default=0.0,
        help="Time of use (money-mode meters): the credit in currency at or below which the "
        "meter opens its relay (may be below zero).",
    )
    min_amount = fields.Monetary(
        string="Minimum sale", help="Overrides the company's minimum when set."
    )
    max_amount = fields.Monetary(
        string="Maximum sale", help="Overrides the company's maximum when set."
    )
    # Load-trip recovery, the default of the tariff's meters (docs/meter-contract.md)
    load_reconnect_delay_s = fields.Integer(
        string="Reconnect delay (s)",
        default=60,
        help="After a load trip (the tenant drew more than the load limit) the meter waits "
        "this long, then closes the relay by itself.",
    )
    load_reconnect_attempts = fields.Integer(
        string="Reconnections per hour",
        default=0,
        help="How many times in a rolling hour the meter reconnects by itself after a load "
        "trip. One more trip in that hour locks it out: the relay stays open until an "
        "operator presses Reconnect on the meter. 0: the meter never reconnects by itself.",
    )
    # Emergency credit (issue 17 §1, services/emergency.py), pushed to the tariff's meters
    emergency_credit_kwh = fields.Float(
        string="Emergency credit (kWh)",
        digits=(16, 3),
        help="Energy a tenant may take once when credit runs low (portal, cashier or the "
        "meter's button). The next purchase repays it first. 0: no emergency credit.",
    )
    emergency_threshold_kwh = fields.Float(
        string="Emergency credit below (kWh)",
        digits=(16, 3),
        default=1.0,
        help="The tenant may take emergency credit once the meter's credit is at or below "
        "this level.",
    )
    # money-mode meters (time of use) hold credit in currency: their emergency credit too
    emergency_credit_money = fields.Monetary(
        string="Emergency credit",
        help="Time of use (money-mode meters): the credit in currency a tenant may take once "
        "when credit runs low; the next purchase repays it first. 0: no emergency credit.",
    )
    emergency_threshold_money = fields.Monetary(
        string="Emergency credit below",
        default=1.0,
        help="Time of use (money-mode meters): the tenant may take emergency credit once the "
        "meter's credit is at or below this amount.",
    )
    meter_ids = fields.One2many("smartpm.meter", "tariff_id", string="Meters")
    # standing charge (issue 17 §4, services/standing_charge.py)
    standing_charge_amount = fields.Monetary(
        string="Standing charge",
        help="A fixed charge (taxes included) taken from the credit of each meter on this "
        "tariff every day or month, whatever it consumes. It is energy taken off the "
        "meter's credit: the charge divided by the price of the first kWh (taxes "
        "included). Inside a friendly period it still runs: the credit goes below zero and "
        "the next purchase repays it. 0: no standing charge.",
    )
    standing_charge_period = fields.Selection(
        [("day", "Per day"), ("month", "Per month")],
        string="Charged",
        default="day",
        required=True,
        help="Per day: once each local day. Per month: once each calendar month, on the "
        "first day Odoo's charge job runs in it.",
    )
    standing_charge_collection = fields.Selection(
        [("odoo", "By Odoo (daily charge job)"), ("meter", "By the meter (its own clock)")],
        string="Collected",
        default="odoo",
        required=True,
        help="By Odoo: a daily job takes the charge off each meter's credit with a signed "
        "token, one per meter and period, and shows it at once. By the meter: the meter "
        "takes the charge itself at each midnight (UTC) of its clock, also while it cannot "
        "be reached; Odoo records it when the meter next reports (ping). Per day only.",
    )
    standing_charge_kwh = fields.Float(
        string="Standing charge (kWh)",
        digits=(16, 3),
        compute="_compute_standing_charge_kwh",
        help="What the standing charge takes off a meter's credit each period.",
    )
    # time-of-use (issue 17 §6, services/tou.py): bands charged by money-mode meters
    pricing_mode = fields.Selection(
        [("energy", "Per kWh (flat or block tiers)"), ("tou", "Time of use (price bands)")],
        string="Pricing",
        required=True,
        default="energy",
        help="Per kWh: the tenant buys kWh at the price (and block tiers) above; the meter "
        "holds credit in kWh. Time of use: the tenant buys credit in money and the meter "
        "charges each kWh at the price of the band in force (hours, weekdays, seasons); "
        "the tariff's meters must be in money mode.",
    )
    tou_version_ids = fields.One2many(
        "smartpm.tariff.tou.version",
        "tariff_id",
        string="Time-of-use prices",
        copy=True,
        help="The bands and their hours, each version from a date on. Add a version with a "
        "later date to change prices: the meters get it ahead and switch at that midnight.",
    )
    # free basic electricity (issue 17 §7, services/fbe.py): one block, kept together
    fbe_social = fields.Boolean(
        string="Social tariff",
        help="Tenants on this tariff receive free basic electricity: the kWh below, once a "
        "month, as a free token on their meter (the cron runs daily; a Manager can also run "
        "it from this form).",
    )
    fbe_kwh_month = fields.Float(
        string="Free basic electricity (kWh per month)",
        digits=(16, 3),
        help="Energy granted free each calendar month (the company's local month) to each "
        "tenant of this social tariff. It does not count towards the block tiers.",
    )

    _sql_constraints = [
        ("price_positive", "CHECK(price_per_kwh > 0)", "The price per kWh must be positive."),
        ("kwh_rounding_positive", "CHECK(kwh_rounding > 0)", "The kWh rounding must be positive."),
        (
            "thresholds_order",
            "CHECK(low_credit_kwh >= trip_kwh)",
            "The low-credit alarm must not be below the trip threshold.",
        ),
        (
            "thresholds_money_order",
            "CHECK(low_credit_money >= trip_money)",
            "The low-credit alarm must not be below the trip threshold.",
        ),
        (
            "amounts_order",
            "CHECK(min_amount IS NULL OR max_amount IS NULL OR max_amount = 0 "
            "OR min_amount <= max_amount)",
            "The minimum sale must not exceed the maximum sale.",
        ),
    ]

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if vals.get("pricing_mode") == "tou" and not vals.get("price_per_kwh"):
                vals["price_per_kwh"] = 1.0  # not used by a time-of-use tariff
        return super().create(vals_list)

    # ---------------------------------------------------------------- time of use
    def _tou_version_at(self, day=None):
        """The time-of-use version in force on the company's local ``day`` (default today):
        the last one started."""
        self.ensure_one()
        day = day or local_time.local_today(self.company_id or self.env.company)
        started = self.tou_version_ids.filtered(lambda v: v.date_start <= day and v.rule_ids)
        return started.sorted("date_start")[-1:] if started else started

    @api.model
    def _cron_refresh_tou_calendars(self):
        """Daily: push the calendars of money-mode meters where they changed."""
        tou.refresh_all(self.env)

    def _tou_next_version(self, day=None):
        """The first planned version after ``day`` (default today), pushed ahead."""
        self.ensure_one()
        day = day or local_time.local_today(self.company_id or self.env.company)
        later = self.tou_version_ids.filtered(lambda v: v.date_start > day and v.rule_ids)
        return later.sorted("date_start")[:1]

    @api.constrains("pricing_mode", "tou_version_ids", "tier_ids")
    def _check_tou(self):
        for tariff in self.filtered(lambda t: t.pricing_mode == "tou"):
            if not tariff.tou_version_ids.filtered("rule_ids"):
                raise ValidationError(
                    self.env._(
                        "Tariff %s is time of use: add its price bands and their hours (a "
                        "version effective from a date).",
                        tariff.name,
                    )
                )
            if tariff.tier_ids:
                raise ValidationError(
                    self.env._("Tariff %s: a time-of-use tariff has no block tiers.", tariff.name)
                )
        self.meter_ids._check_credit_mode()

    @api.constrains("tax_ids")
    def _check_taxes_included(self):
        for tariff in self:
            excluded = tariff.tax_ids.filtered(lambda t: not t.price_include)
            if excluded:
                raise ValidationError(
                    self.env._(
                        "Tariff %(tariff)s: taxes must be included in the price (the customer "
                        "pays the amount tax included): %(taxes)s.",
                        tariff=tariff.name,
                        taxes=", ".join(excluded.mapped("name")),
                    )
                )

    # ---------------------------------------------------------------- free basic electricity
    @api.constrains("fbe_social", "fbe_kwh_month")
    def _check_fbe_kwh_month(self):
        for tariff in self:
            if tariff.fbe_kwh_month < 0 or (tariff.fbe_social and tariff.fbe_kwh_month <= 0):
                raise ValidationError(
                    self.env._(
                        "Tariff %s: a social tariff grants a positive number of kWh of free "
                        "basic electricity per month.",
                        tariff.name,
                    )
                )

    @api.model
    def _cron_grant_fbe(self):
        """Daily: this month's free basic electricity to the tenants who have not had it,
        committed in batches (not in tests: their transaction is rolled back)."""
        testing = getattr(threading.current_thread(), "testing", False)
        fbe.grant_due(self.env, commit_every=None if testing else FBE_COMMIT_EVERY)

    def action_grant_fbe(self):
        """Button (Manager): grant this month's free basic electricity now to the tenants
        of these tariffs who have not had it (the same as the daily cron, idempotent)."""
        if not self.env.user.has_group("smartpm_prepay.group_manager"):
            raise AccessError(
                self.env._(
                    "Only a SmartPM Manager may grant free basic electricity (%s).",
                    ", ".join(self.mapped("name")),
                )
            )
        self.check_access("read")
        result = fbe.grant_due(self.env, self.company_id, tariffs=self)
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": self.env._("Free basic electricity"),
                "message": fbe.describe(self.env, result),
                "type": "success" if not result["errors"] else "warning",
                "sticky": bool(result["errors"]),
            },
        }

    # ---------------------------------------------------------------- standing charge
    @api.depends("standing_charge_amount", "price_per_kwh", "tier_ids", "tax_ids", "pricing_mode")
    def _compute_standing_charge_kwh(self):
        for tariff in self:
            # time of use: money-mode meters take the charge in money, not energy
            kwh = standing_charge.tariff_mode(tariff) == "kwh"
            tariff.standing_charge_kwh = standing_charge.tariff_wh(tariff) / 1000 if kwh else 0.0

    @api.constrains(
        "standing_charge_amount", "standing_charge_period", "standing_charge_collection"
    )
    def _check_standing_charge(self):
        for tariff in self:
            if tariff.standing_charge_amount < 0:
                raise ValidationError(
                    self.env._("Tariff %s: the standing charge cannot be negative.", tariff.name)
                )
            if (
                tariff.standing_charge_collection == "meter"
                and tariff.standing_charge_period != "day"
            ):
                raise ValidationError(
                    self.env._(
                        "Tariff %s: a meter collects a standing charge per day only (its "
                        "charge period is a number of seconds, a month is not): choose per "
                        "day, or collection by Odoo.",
                        tariff.name,
                    )
                )
            mode = standing_charge.tariff_mode(tariff)
            if tariff.standing_charge_amount > 0 and not standing_charge.tariff_units(tariff, mode):
                raise ValidationError(
                    self.env._(
                        "Tariff %s: the standing charge is less than one Wh at this price.",
                        tariff.name,
                    )
                    if mode == "kwh"
                    else self.env._(
                        "Tariff %s: the standing charge (untaxed) is less than a thousandth "
                        "of the currency.",
                        tariff.name,
                    )
                )

    @api.model
    def _cron_collect_standing_charges(self):
        """Daily: each meter's standing charge of the period, once (services/standing_charge)."""
        testing = getattr(threading.current_thread(), "testing", False)
        standing_charge.collect_due(self.env, commit_every=None if testing else FBE_COMMIT_EVERY)

    def _smartpm_standing_charge_before(self, vals):
        keys = {
            "standing_charge_amount",
            "standing_charge_period",
            "standing_charge_collection",
            "price_per_kwh",
            "tax_ids",
            "tier_ids",
            "pricing_mode",
        }
        if not keys & set(vals):
            return {}
        return standing_charge.settings_before(self._following_meters(None))

    @api.constrains("load_reconnect_delay_s", "load_reconnect_attempts")
    def _check_load_recovery(self):
        for tariff in self:
            self.env["smartpm.meter"]._smartpm_check_load_recovery_values(
                tariff.name, tariff.load_reconnect_delay_s, tariff.load_reconnect_attempts
            )

    def write(self, vals):
        recovery_fields = {"load_reconnect_delay_s", "load_reconnect_attempts"} & set(vals)
        meters = self._following_meters("load_recovery_override") if recovery_fields else None
        before = {m.id: m._get_load_recovery() for m in meters} if meters else {}
        emergency_before = self._smartpm_emergency_before(vals)
        charge_before = self._smartpm_standing_charge_before(vals)
        res = super().write(vals)
        standing_charge.push_changed(
            self.env["smartpm.meter"].sudo().browse(charge_before), charge_before
        )
        emergency.push_changed(
            self.env["smartpm.meter"].sudo().browse(emergency_before), emergency_before
        )
        if meters:
            # meters following their tariff get the new load-trip recovery, once per change
            meters._smartpm_push_load_recovery_changed(before)
        if {"pricing_mode", "tou_version_ids"} & set(vals):
            tou.push(self.env, tou.meters_of_tariffs(self.env, self))
        if {"low_credit_kwh", "trip_kwh", "low_credit_money", "trip_money"} & set(vals):
            # meters following their tariff (own or their tenant's) get the new thresholds
            self._following_meters("threshold_override")._push_thresholds()
        return res

    @api.constrains("emergency_credit_kwh", "emergency_credit_money")
    def _check_emergency_credit(self):
        for tariff in self.filtered(
            lambda t: t.emergency_credit_kwh < 0 or t.emergency_credit_money < 0
        ):
            raise ValidationError(
                self.env._("%(name)s: the emergency credit cannot be negative.", name=tariff.name)
            )

    def _smartpm_emergency_before(self, vals):
        """write(): emergency settings in force on the meters of these tariffs, when ``vals``
        may change them."""
        if not set(emergency.SETTING_FIELDS) & set(vals):
            return {}
        meters = (
            self.env["smartpm.meter"]
            .sudo()
            .search(
                [
                    "|",
                    ("tariff_id", "in", self.ids),
                    "&",
                    ("tariff_id", "=", False),
                    ("tenant_id.smartpm_tariff_id", "in", self.ids),
                ]
            )
        )
        return emergency.settings_before(meters)

    def _following_meters(self, override_field):
        """The meters whose setting follows one of these tariffs (their own tariff or,
        without one, their tenant's) unless ``override_field`` says they have their own."""
        override = [(override_field, "=", False)] if override_field else []
        return (
            self.env["smartpm.meter"]
            .sudo()
            .search(
                [
                    *override,
                    "|",
                    ("tariff_id", "in", self.ids),
                    "&",
                    ("tariff_id", "=", False),
                    ("tenant_id.smartpm_tariff_id", "in", self.ids),
                ]
            )
        )

    # ---------------------------------------------------------------- arithmetic
    def _bands(self):
        """[(from_kwh, price)] starting at 0 with the base price."""
        self.ensure_one()
        bands = [(0.0, self.price_per_kwh)]
        for tier in self.tier_ids.sorted("from_kwh"):
            if tier.from_kwh <= 0:
                bands[0] = (0.0, tier.price_per_kwh)
            else:
                bands.append((tier.from_kwh, tier.price_per_kwh))
        return bands

    # ---------------------------------------------------------------- in words
    def _tax_factor(self):
        """What the customer pays per unit of untaxed price (1.0 without taxes)."""
        self.ensure_one()
        if not self.tax_ids:
            return 1.0
        base = 1_000_000.0  # large enough that the taxes' rounding does not show
        computed = self.tax_ids.with_context(force_price_include=False).compute_all(
            base, currency=self.currency_id
        )
        return computed["total_included"] / base

    def _format_price(self, price):
        """``price`` in the tariff's currency, with the decimals it needs (up to 4): an
        energy price of 0.2512 must not read as 0.25."""
        self.ensure_one()
        currency = self.currency_id
        digits = currency.decimal_places
        while digits < 4 and float_round(price, digits) != float_round(price, 4):
            digits += 1
        number = formatLang(self.env, price, digits=digits)
        if currency.position == "after":
            return f"{number}\N{NO-BREAK SPACE}{currency.symbol}"
        return f"{currency.symbol}\N{NO-BREAK SPACE}{number}"

    def _get_price_bands(self):
        """[{from_kwh, to_kwh (None for the last), price, label}] as the customer pays them
        (taxes included), from the first kWh of the month on."""
        self.ensure_one()
        factor = self._tax_factor()
        bands = self._bands()
        out = []
        for i, (start, price) in enumerate(bands):
            end = bands[i + 1][0] if i + 1 < len(bands) else None
            out.append(
                {
                    "from_kwh": start,
                    "to_kwh": end,
                    "price": price * factor,
                    "label": self._format_price(price * factor),
                }
            )
        return out

    def _price_description(self):
        """The price as the tariff charges it, in words: "$ 0.25 per kWh", or with block
        tiers "First 100 kWh of the month at $ 0.25 per kWh, then $ 0.32 per kWh"."""
        self.ensure_one()
        taxes = self.env._(" (taxes included)") if self.tax_ids else ""
        if self.pricing_mode == "tou":
            return self.env._(
                "Time of use: %(bands)s%(taxes)s", bands=tou.describe_bands(self), taxes=taxes
            )
        bands = self._get_price_bands()
        if len(bands) == 1:
            return self.env._("%(price)s per kWh%(taxes)s", price=bands[0]["label"], taxes=taxes)
        parts = [
            self.env._(
                "first %(kwh)s kWh of the month at %(price)s per kWh",
                kwh=format_kwh(self.env, bands[0]["to_kwh"], unit=False, trim=True),
                price=bands[0]["label"],
            )
        ]
        for band in bands[1:-1]:
            parts.append(
                self.env._(
                    "from %(start)s to %(end)s kWh at %(price)s",
                    start=format_kwh(self.env, band["from_kwh"], unit=False, trim=True),
                    end=format_kwh(self.env, band["to_kwh"], unit=False, trim=True),
                    price=band["label"],
                )
            )
        parts.append(self.env._("then %(price)s per kWh", price=bands[-1]["label"]))
        text = ", ".join(parts) + taxes
        return text[:1].upper() + text[1:]

    def _get_current_band(self, month_kwh):
        """The band (of _get_price_bands) the next kWh bought is priced in."""
        self.ensure_one()
        bands = self._get_price_bands()
        current = bands[0]
        for band in bands:
            if month_kwh >= band["from_kwh"]:
                current = band
        return current

    def _get_amount_limits(self, company=None):
        """(minimum, maximum) of one sale in the tariff's currency; 0 maximum = no maximum.
        The tariff's own limits are in its currency; the company's are in the company's
        currency and converted at the day's rate when the tariff is sold in another one."""
        self.ensure_one()
        company = company or self.company_id or self.env.company

        def company_limit(value):
            if not value or company.currency_id == self.currency_id:
                return value
            return company.currency_id._convert(
                value, self.currency_id, company, fields.Date.context_today(self)
            )

        minimum = self.min_amount or company_limit(company.smartpm_min_amount)
        maximum = self.max_amount or company_limit(company.smartpm_max_amount)
        return minimum, maximum

    def _split_taxes(self, amount):
        """(untaxed, tax) of a tax-included ``amount``, rounded as Odoo rounds the invoice."""
        self.ensure_one()
        currency = self.currency_id
        amount = currency.round(amount)
        if not self.tax_ids:
            return amount, 0.0
        computed = self.tax_ids.with_context(force_price_include=True).compute_all(
            amount, currency=currency
        )
        untaxed = currency.round(computed["total_excluded"])
        return untaxed, currency.round(amount - untaxed)

    def _quote_amount(self, amount, month_kwh=0.0):
        """What ``amount`` (tax included) buys this month; the purchase keeps it all."""
        self.ensure_one()
        untaxed, tax = self._split_taxes(amount)
        kwh, breakdown = pricing.money_to_kwh(untaxed, self._bands(), month_kwh, self.kwh_rounding)
        return {
            "amount": self.currency_id.round(amount),
            "amount_untaxed": untaxed,
            "amount_tax": tax,
            "kwh": kwh,
            "price_per_kwh": float_round(untaxed / kwh, 4) if kwh else 0.0,
            "month_kwh_before": month_kwh,
            "tier_breakdown": [
                {k: float_round(v, 6) for k, v in part.items()} for part in breakdown
            ],
        }

    def _amount_for_kwh(self, kwh, month_kwh=0.0):
        """Amount (tax included, rounded up to the currency) that buys at least ``kwh``."""
        self.ensure_one()
        currency = self.currency_id
        net = pricing.kwh_to_money(kwh, self._bands(), month_kwh)
        if self.tax_ids:
            total = self.tax_ids.with_context(force_price_include=False).compute_all(
                net, currency=currency
            )["total_included"]
        else:
            total = net
        amount = float_round(total, precision_rounding=currency.rounding, rounding_method="UP")
        # taxes are split on the rounded total: step up until the amount really buys kwh
        for _step in range(1000):
            if self._quote_amount(amount, month_kwh)["kwh"] >= kwh:
                break
            amount = currency.round(amount + currency.rounding)
        return amount
