"""Tenant portal: /my/meters, one meter's page, and buying credit with Odoo's payment
providers. The purchase itself is created when the transaction is done
(models/payment_transaction.py), never by these routes."""

from datetime import datetime, timedelta
from urllib.parse import urlencode

from odoo import _, fields, http
from odoo.addons.payment.controllers import portal as payment_portal
from odoo.exceptions import ValidationError
from odoo.http import request

from ..services import vending

ENERGY_OBIS = "1.0.1.8.0.255"
NOTICE_ALARMS = ("low_credit", "zero_credit", "credit_trip", "load_trip")


class SmartpmMeterPortal(payment_portal.PaymentPortal):
    # ---------------------------------------------------------------- helpers
    def _get_meters_domain(self):
        partner = request.env.user.partner_id.commercial_partner_id
        return [("tenant_id", "child_of", [partner.id])]

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

    @staticmethod
    def _consumption(meter, unit, periods):
        """[(label, kWh)] consumed per day or month over the last ``periods``, from the
        cumulative energy register (the difference of the last value of each period)."""
        now = fields.Datetime.now()
        if unit == "day":
            start = datetime(now.year, now.month, now.day) - timedelta(days=periods - 1)
            keys = [start + timedelta(days=i) for i in range(periods)]
        else:
            year, month = now.year, now.month - (periods - 1)
            while month <= 0:
                year, month = year - 1, month + 12
            start = datetime(year, month, 1)
            keys = []
            for _i in range(periods):
                keys.append(datetime(year, month, 1))
                year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        cr = request.env.cr
        cr.execute(
            "SELECT max(value) FROM smartpm_reading WHERE meter_id = %s AND obis = %s "
            "AND reading_time < %s",
            (meter.id, ENERGY_OBIS, start),
        )
        previous = cr.fetchone()[0]
        cr.execute(
            f"""SELECT date_trunc('{unit}', reading_time), max(value) FROM smartpm_reading
                 WHERE meter_id = %s AND obis = %s AND reading_time >= %s
                 GROUP BY 1""",  # noqa: S608 (unit is "day" or "month", never user input)
            (meter.id, ENERGY_OBIS, start),
        )
        last_by_period = dict(cr.fetchall())
        bars = []
        for key in keys:
            value = last_by_period.get(key)
            used = max(value - previous, 0.0) if value is not None and previous is not None else 0.0
            if value is not None:
                previous = value
            label = key.strftime("%d %b") if unit == "day" else key.strftime("%b %Y")
            bars.append({"label": label, "kwh": round(used, 2)})
        top = max((b["kwh"] for b in bars), default=0.0) or 1.0
        for bar in bars:
            bar["percent"] = round(100.0 * bar["kwh"] / top, 1)
        return bars

    def _get_notices(self, meter_sudo):
        notices = []
        low, trip = meter_sudo._get_thresholds()
        if meter_sudo.relay_state == "disconnected" and meter_sudo.credit_kwh <= trip:
            notices.append(
                (
                    "danger",
                    _("Your supply is cut: the credit has run out. Buy credit to reconnect."),
                )
            )
        elif meter_sudo.credit_kwh <= low and meter_sudo.online_state != "unknown":
            notices.append(
                ("warning", _("Low credit: %(kwh).1f kWh left.", kwh=meter_sudo.credit_kwh))
            )
        since = fields.Datetime.now() - timedelta(days=7)
        alarms = request.env["smartpm.alarm"].search(
            [
                ("meter_id", "=", meter_sudo.id),
                ("alarm_type", "in", NOTICE_ALARMS),
                ("meter_time", ">=", since),
                ("state", "!=", "dismissed"),
            ],
            limit=5,
            order="meter_time desc",
        )
        labels = dict(alarms._fields["alarm_type"]._description_selection(request.env))
        for alarm in alarms:
            notices.append(
                (
                    "info",
                    _(
                        "%(what)s on %(when)s",
                        what=labels.get(alarm.alarm_type),
                        when=fields.Datetime.to_string(alarm.meter_time),
                    ),
                )
            )
        return notices

    def _get_last_reading(self, meter):
        return request.env["smartpm.reading"].search(
            [("meter_id", "=", meter.id), ("obis", "=", ENERGY_OBIS)], limit=1
        )

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
            }
        )
        return request.render("smartpm_prepay.portal_my_meters", values)

    @http.route(["/my/meters/<int:meter_id>"], type="http", auth="user", website=True)
    def portal_my_meter(self, meter_id, **kwargs):
        meter = self._get_own_meter(meter_id)
        meter_sudo = meter.sudo()
        partner = request.env.user.partner_id.commercial_partner_id
        purchases = request.env["smartpm.credit.purchase"].search(
            [("meter_id", "=", meter.id), ("tenant_id", "child_of", [partner.id])], limit=20
        )
        tariff = meter_sudo._get_tariff()
        try:
            vending.check_sellable(meter_sudo)
            sellable = True
        except vending.VendingError:
            sellable = False
        minimum, maximum = (
            tariff._get_amount_limits(meter_sudo.company_id) if tariff else (0.0, 0.0)
        )
        values = self._prepare_portal_layout_values()
        values.update(
            {
                "page_name": "meter",
                "meter": meter_sudo,
                "purchases": purchases.sudo(),
                "delivering": any(p.state in ("paid", "queued") for p in purchases),
                "daily": self._consumption(meter, "day", 30),
                "monthly": self._consumption(meter, "month", 12),
                "notices": self._get_notices(meter_sudo),
                "last_reading": self._get_last_reading(meter).sudo(),
                "sellable": sellable,
                "tariff": tariff,
                "currency": tariff.currency_id if tariff else meter_sudo.company_id.currency_id,
                "min_amount": minimum,
                "max_amount": maximum,
                "error": kwargs.get("error"),
            }
        )
        return request.render("smartpm_prepay.portal_my_meter", values)

    # ---------------------------------------------------------------- buying
    def _check_amount(self, meter, amount):
        """The tariff if ``amount`` may be sold for ``meter`` now; ValidationError if not."""
        meter_sudo = meter.sudo()
        try:
            amount = float(amount)
            tariff = vending.check_sellable(meter_sudo)
            vending.check_amount(tariff, meter_sudo, amount)
        except (TypeError, ValueError):
            raise ValidationError(_("Enter an amount.")) from None
        except vending.VendingError as exc:
            raise ValidationError(exc.args[0]) from exc
        return tariff

    @http.route(["/my/meters/<int:meter_id>/buy"], type="http", auth="user", website=True)
    def portal_my_meter_buy(self, meter_id, amount=None, **kwargs):
        meter = self._get_own_meter(meter_id)
        try:
            tariff = self._check_amount(meter, amount)
        except ValidationError as exc:
            return request.redirect(f"/my/meters/{meter.id}?" + urlencode({"error": exc.args[0]}))
        amount = tariff.currency_id.round(float(amount))
        meter_sudo = meter.sudo()
        partner_sudo = request.env.user.partner_id
        company = meter_sudo.company_id
        currency = tariff.currency_id
        report = {}
        providers_sudo = (
            request.env["payment.provider"]
            .sudo()
            ._get_compatible_providers(
                company.id,
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
                providers_sudo.ids,
                partner_sudo.id,
                currency_id=currency.id,
                report=report,
            )
        )
        tokens_sudo = (
            request.env["payment.token"]
            .sudo()
            ._get_available_tokens(providers_sudo.ids, partner_sudo.id)
        )
        quote = tariff._quote_amount(amount, vending.month_kwh(request.env(su=True), meter_sudo))
        values = self._prepare_portal_layout_values()
        values.update(
            {
                "page_name": "meter_buy",
                "meter": meter_sudo,
                "quote": quote,
                # payment.form
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
        )
        return request.render("smartpm_prepay.portal_my_meter_buy", values)

    @http.route("/my/meters/<int:meter_id>/transaction", type="json", auth="user")
    def portal_my_meter_transaction(self, meter_id, **kwargs):
        """Create the draft transaction that pays credit for the meter (payment.form)."""
        meter = self._get_own_meter(meter_id)
        self._validate_transaction_kwargs(kwargs)
        tariff = self._check_amount(meter, kwargs.get("amount"))
        kwargs.update(
            {
                "amount": tariff.currency_id.round(float(kwargs["amount"])),
                "currency_id": tariff.currency_id.id,
                "partner_id": request.env.user.partner_id.id,
                "reference_prefix": f"CREDIT-{meter.sudo().serial_number}",
                "landing_route": f"/my/meters/{meter.id}",
                "is_validation": False,
            }
        )
        tx_sudo = self._create_transaction(
            custom_create_values={"smartpm_meter_id": meter.id}, **kwargs
        )
        return tx_sudo._get_processing_values()
