"""Tenant portal: /my/meters, one meter's page, and buying credit with Odoo's payment
providers. The purchase itself is created when the transaction is done
(models/payment_transaction.py), never by these routes."""

import math
from datetime import date, timedelta
from urllib.parse import urlencode

from odoo import fields, http
from odoo.addons.payment.controllers import portal as payment_portal
from odoo.addons.portal.controllers.portal import pager as portal_pager
from odoo.exceptions import ValidationError
from odoo.http import request
from odoo.tools import format_date, format_datetime

from ..services import friendly, local_time, vending
from ..services.obis import ENERGY_IMPORT
from ..services.sale_info import format_kwh, format_money, sale_info

NOTICE_ALARMS = ("low_credit", "zero_credit", "credit_trip", "load_trip")


def register_kwh(value, unit):
    """kWh of an energy-register value read in ``unit`` (Wh unless it says kWh), as the
    consumption computation reads it."""
    return value if (unit or "").lower() == "kwh" else value / 1000.0


class SmartpmMeterPortal(payment_portal.PaymentPortal):
    _purchases_per_page = 20

    # ---------------------------------------------------------------- helpers
    # Everything of a meter that the portal shows (readings, alarms, consumption, purchases)
    # is the logged-in tenant's own: of the periods they held the meter (the rows' tenant_id,
    # services/tenant_periods), never the previous or the next tenant's. The record rules
    # say the same; the domains here keep the pages right for any caller.
    def _get_tenant_domain(self):
        partner = request.env.user.partner_id.commercial_partner_id
        return [("tenant_id", "child_of", [partner.id])]

    def _get_meters_domain(self):
        """The meters the tenant holds now. A meter they gave back is not listed (its page
        is a 404): its credit, relay and supply are the next tenant's; their purchases and
        payments of it stay in their invoices."""
        return self._get_tenant_domain()

    def _get_own_meter(self, meter_id):
        """The logged-in tenant's meter, or 404 for any other id (never 403: ids of other
        tenants' meters must not be told apart from ids that do not exist)."""
        meter = request.env["smartpm.meter"].search(
            [("id", "=", meter_id), *self._get_meters_domain()], limit=1
        )
        if not meter:
            raise request.not_found()
        return meter

    def _prepare_home_portal_values(self, counters):
        values = super()._prepare_home_portal_values(counters)
        if "meter_count" in counters:
            Meter = request.env["smartpm.meter"]
            values["meter_count"] = (
                Meter.search_count(self._get_meters_domain()) if Meter.has_access("read") else 0
            )
        return values

    # Consumption is the back office's (smartpm.consumption.daily: kWh per local day of the
    # company, computed from the energy register whatever its unit), never recomputed here:
    # the portal once summed raw register values in Wh as kWh, over UTC days, and gave the
    # first month of its window 0 for want of an earlier reading.
    def _get_consumption_rows(self, meter, date_from):
        """The meter's daily consumption rows from ``date_from`` (a local day) while it was
        the logged-in tenant's (another tenant's use of the meter is not theirs to see)."""
        # a meter that replaced another continues its statistics (models/move_out.py)
        meters = meter._replacement_chain().ids
        return request.env["smartpm.consumption.daily"].search(
            [("meter_id", "in", meters), ("day", ">=", date_from), *self._get_tenant_domain()]
        )

    def _local_today(self, meter):
        return local_time.local_today(meter.sudo().company_id)

    def _consumption(self, meter, unit, periods):
        """A chart (see _chart) of the kWh consumed per local day or month over the last
        ``periods`` of them, today's included."""
        env = request.env
        today = self._local_today(meter)
        if unit == "day":
            keys = [today - timedelta(days=periods - 1 - i) for i in range(periods)]
        else:
            keys = []
            year, month = today.year, today.month
            for _i in range(periods):
                keys.insert(0, date(year, month, 1))
                year, month = (year - 1, 12) if month == 1 else (year, month - 1)
        totals = dict.fromkeys(keys, 0.0)
        for row in self._get_consumption_rows(meter, keys[0]):
            key = row.day if unit == "day" else row.day.replace(day=1)
            if key in totals:
                totals[key] += row.kwh
        bars = []
        for key in keys:
            if unit == "day":
                label = format_date(env, key, date_format="d MMM")
                short = format_date(env, key, date_format="d MMM")
            else:
                label = format_date(env, key, date_format="MMM yyyy")
                short = format_date(env, key, date_format="MMM")
            bars.append({"key": key, "label": label, "short": short, "kwh": round(totals[key], 3)})
        return self._chart(bars, label_every=5 if unit == "day" else 1)

    @staticmethod
    def _nice_step(top, ticks=4):
        raw = top / ticks
        magnitude = 10 ** math.floor(math.log10(raw))
        for factor in (1, 2, 2.5, 5, 10):
            if raw <= factor * magnitude:
                return factor * magnitude
        return 10 * magnitude

    def _chart(self, bars, label_every=1):
        """Bars with their height in % of the y axis, the axis' ticks and which x labels to
        print (every ``label_every``-th, counted back from the last period)."""
        top = max((bar["kwh"] for bar in bars), default=0.0)
        step = self._nice_step(top) if top > 0 else 1.0
        axis_max = step * math.ceil(top / step) if top > 0 else 4.0
        ticks = []
        value = 0.0
        while value <= axis_max + 1e-9:
            ticks.append({"label": f"{value:g}", "percent": round(100.0 * value / axis_max, 2)})
            value += step
        last = len(bars) - 1
        for i, bar in enumerate(bars):
            bar["percent"] = round(100.0 * bar["kwh"] / axis_max, 2)
            bar["value_label"] = (
                format_kwh(request.env, bar["kwh"], digits=1, unit=False) if bar["kwh"] else ""
            )
            bar["title"] = "{}: {}".format(bar["label"], format_kwh(request.env, bar["kwh"], 3))
            bar["show_label"] = (last - i) % label_every == 0
        return {"bars": bars, "ticks": ticks, "total": round(sum(b["kwh"] for b in bars), 3)}

    def _get_notices(self, meter_sudo):
        notices = []
        low, trip = meter_sudo._get_thresholds()
        # a money-mode meter holds credit (and its thresholds) in money (services/tou.py)
        money = meter_sudo.credit_mode == "money"
        credit = meter_sudo.credit_money if money else meter_sudo.credit_kwh
        if meter_sudo.relay_state == "disconnected" and credit <= trip:
            notices.append(
                (
                    "danger",
                    request.env._(
                        "Your supply is cut: the credit has run out. Buy credit to reconnect."
                    ),
                )
            )
        elif credit <= low and meter_sudo.online_state != "unknown":
            if money:
                left = format_money(request.env, credit, meter_sudo.company_id.currency_id)
                notices.append(
                    ("warning", request.env._("Low credit: %(money)s left.", money=left))
                )
            else:
                notices.append(
                    ("warning", request.env._("Low credit: %(kwh).1f kWh left.", kwh=credit))
                )
        friendly_notice = friendly.portal_notice(meter_sudo)
        if friendly_notice:
            notices.append(friendly_notice)
        since = fields.Datetime.now() - timedelta(days=7)
        alarms = request.env["smartpm.alarm"].search(
            [
                ("meter_id", "=", meter_sudo.id),
                ("alarm_type", "in", NOTICE_ALARMS),
                ("meter_time", ">=", since),
                ("state", "!=", "dismissed"),
                *self._get_tenant_domain(),
            ],
            limit=5,
            order="meter_time desc",
        )
        labels = dict(alarms._fields["alarm_type"]._description_selection(request.env))
        tz = self._get_tz(meter_sudo)
        for alarm in alarms:
            notices.append(
                (
                    "info",
                    request.env._(
                        "%(what)s on %(when)s",
                        what=labels.get(alarm.alarm_type),
                        when=format_datetime(
                            request.env, alarm.meter_time, tz=tz, dt_format="short"
                        ),
                    ),
                )
            )
        return notices

    def _get_last_reading(self, meter):
        """The last energy-register reading of ``meter`` as a dict: its kWh (the register
        may count Wh or kWh: ``unit`` says which), the time and the record."""
        reading = request.env["smartpm.reading"].search(
            [("meter_id", "=", meter.id), ("obis", "=", ENERGY_IMPORT), *self._get_tenant_domain()],
            limit=1,
        )
        if not reading:
            return None
        reading = reading.sudo()
        return {"kwh": register_kwh(reading.value, reading.unit), "record": reading}

    def _get_tz(self, meter):
        """The time zone the tenant reads times in: theirs, else the property's company's."""
        return request.env.user.tz or local_time.company_tz(meter.sudo().company_id).zone

    def _get_purchases_domain(self, meter):
        meters = meter._replacement_chain().ids  # the replaced meter's purchases too
        return [("meter_id", "in", meters), *self._get_tenant_domain()]

    def _get_price_values(self, meter_sudo, tariff):
        """The tariff as it charges the tenant: its bands in words and where this month's
        purchases have brought the tenant (the price of the next kWh)."""
        if not tariff:
            return {}
        month_kwh = vending.month_kwh(request.env(su=True), meter_sudo)
        bands = tariff._get_price_bands()
        return {
            "price_description": tariff._price_description(),
            "price_bands": bands,
            "month_kwh": month_kwh,
            "current_band": tariff._get_current_band(month_kwh) if len(bands) > 1 else None,
        }

    # ---------------------------------------------------------------- pages
    @http.route(["/my/meters"], type="http", auth="user", website=True)
    def portal_my_meters(self, **kwargs):
        meters = request.env["smartpm.meter"].search(self._get_meters_domain())
        values = self._prepare_portal_layout_values()
        values.update(
            {
                "page_name": "meters",
                "meters": meters.sudo(),
                "last_readings": {m.id: self._get_last_reading(m) for m in meters},
                "tz": self._get_tz(meters[:1]) if meters else request.env.user.tz or "UTC",
            }
        )
        return request.render("smartpm_prepay.portal_my_meters", values)

    @http.route(
        ["/my/meters/<int:meter_id>", "/my/meters/<int:meter_id>/page/<int:page>"],
        type="http",
        auth="user",
        website=True,
    )
    def portal_my_meter(self, meter_id, page=1, **kwargs):
        meter = self._get_own_meter(meter_id)
        meter_sudo = meter.sudo()
        Purchase = request.env["smartpm.credit.purchase"]
        domain = self._get_purchases_domain(meter)
        pager = portal_pager(
            url=f"/my/meters/{meter.id}",
            total=Purchase.search_count(domain),
            page=page,
            step=self._purchases_per_page,
        )
        purchases = Purchase.search(domain, limit=self._purchases_per_page, offset=pager["offset"])
        # a purchase on its way anywhere in the list, not only on this page
        delivering = bool(
            Purchase.search_count(domain + [("state", "in", ("paid", "queued"))], limit=1)
        )
        info = sale_info(meter_sudo)
        # the tenant's own debts being recovered (record rule: own, confirmed)
        debts = request.env["smartpm.tenant.debt"].search(
            [("state", "=", "active"), ("company_id", "=", meter_sudo.company_id.id)]
        )
        values = self._prepare_portal_layout_values()
        values.update(
            {
                "page_name": "meter",
                "debts": debts.sudo(),
                "debt_balance": sum(debts.mapped("balance")),
                "meter": meter_sudo,
                "purchases": purchases.sudo(),
                "pager": pager,
                "delivering": delivering,
                "daily": self._consumption(meter, "day", 30),
                "monthly": self._consumption(meter, "month", 12),
                "notices": self._get_notices(meter_sudo),
                "last_reading": self._get_last_reading(meter),
                "tz": self._get_tz(meter),
                "sellable": info["sellable"],
                "tariff": info["tariff"],
                "currency": info["currency"],
                "min_amount": info["min_amount"],
                "max_amount": info["max_amount"],
                "error": kwargs.get("error"),
                **self._get_price_values(meter_sudo, info["tariff"]),
            }
        )
        return request.render("smartpm_prepay.portal_my_meter", values)

    # ---------------------------------------------------------------- buying
    def _check_amount(self, meter, amount):
        """The tariff if ``amount`` may be sold for ``meter`` now; ValidationError if not."""
        meter_sudo = meter.sudo()
        try:
            amount = float(amount)
            if not math.isfinite(amount) or amount <= 0:
                raise ValidationError(request.env._("Enter an amount above zero."))
            tariff = vending.check_sellable(meter_sudo)
            vending.check_amount(tariff, meter_sudo, amount)
        except (TypeError, ValueError, OverflowError):  # OverflowError: a JSON 10**400
            raise ValidationError(request.env._("Enter an amount.")) from None
        except vending.VendingError as exc:
            raise ValidationError(exc.args[0]) from exc
        return tariff

    def _prepare_payment_form_values(self, meter, amount, currency):
        """What Odoo's ``payment.form`` needs to pay ``amount`` for ``meter``: the
        providers, methods and tokens of the tenant in the meter's company."""
        partner_sudo = request.env.user.partner_id
        report = {}
        providers_sudo = (
            request.env["payment.provider"]
            .sudo()
            ._get_compatible_providers(
                meter.sudo().company_id.id,
                partner_sudo.id,
                amount,
                currency_id=currency.id,
                report=report,
            )
        )
        methods_sudo = (
            request.env["payment.method"]
            .sudo()
            ._get_compatible_payment_methods(
                providers_sudo.ids, partner_sudo.id, currency_id=currency.id, report=report
            )
        )
        tokens_sudo = (
            request.env["payment.token"]
            .sudo()
            ._get_available_tokens(providers_sudo.ids, partner_sudo.id)
        )
        return {
            "amount": amount,
            "currency": currency,
            "partner_id": partner_sudo.id,
            "providers_sudo": providers_sudo,
            "payment_methods_sudo": methods_sudo,
            "tokens_sudo": tokens_sudo,
            "availability_report": report,
            "show_tokenize_input_mapping": self._compute_show_tokenize_input_mapping(
                providers_sudo
            ),
            "transaction_route": f"/my/meters/{meter.id}/transaction",
            "landing_route": f"/my/meters/{meter.id}",
            "access_token": None,
            "reference_prefix": None,
        }

    @http.route(["/my/meters/<int:meter_id>/buy"], type="http", auth="user", website=True)
    def portal_my_meter_buy(self, meter_id, amount=None, **kwargs):
        meter = self._get_own_meter(meter_id)
        try:
            tariff = self._check_amount(meter, amount)
            amount = tariff.currency_id.round(float(amount))
            info = sale_info(meter, amount)
            if info["reason"]:
                raise ValidationError(info["reason"])
        except ValidationError as exc:
            return request.redirect(f"/my/meters/{meter.id}?" + urlencode({"error": exc.args[0]}))
        values = self._prepare_portal_layout_values()
        values.update(
            {
                "page_name": "meter_buy",
                "meter": meter.sudo(),
                "quote": info["quote"],
                "quote_price": info["tiers_info"],
                "quote_kwh": format_kwh(request.env, info["quote"]["kwh"]),
                **self._prepare_payment_form_values(meter, amount, tariff.currency_id),
            }
        )
        return request.render("smartpm_prepay.portal_my_meter_buy", values)

    @http.route("/my/meters/<int:meter_id>/transaction", type="json", auth="user")
    def portal_my_meter_transaction(self, meter_id, **kwargs):
        """Create the draft transaction that pays credit for the meter (payment.form)."""
        meter = self._get_own_meter(meter_id)
        self._validate_transaction_kwargs(kwargs)
        tariff = self._check_amount(meter, kwargs.get("amount"))
        Transaction = request.env["payment.transaction"].sudo()
        # the payment's reference is the number the purchase will have (CP...)
        purchase_name = Transaction._smartpm_reserve_purchase_name()
        kwargs.update(
            {
                "amount": tariff.currency_id.round(float(kwargs["amount"])),
                "currency_id": tariff.currency_id.id,
                "partner_id": request.env.user.partner_id.id,
                "reference_prefix": purchase_name,
                "landing_route": f"/my/meters/{meter.id}",
                "is_validation": False,
            }
        )
        tx_sudo = self._create_transaction(
            custom_create_values={
                "smartpm_meter_id": meter.id,
                "smartpm_purchase_name": purchase_name,
            },
            **kwargs,
        )
        return tx_sudo._get_processing_values()
