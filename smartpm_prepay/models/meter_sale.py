from odoo import _, api, fields, models

THRESHOLD_PRIORITY = 20


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
        return self.env["smartpm.meter.job"].sudo().create(vals_list)

    def _push_load_limit(self):
        meters = self._commandable()
        meters._supersede("set_load_limit")
        return (
            self.env["smartpm.meter.job"]
            .sudo()
            .create(
                [
                    {
                        "meter_id": meter.id,
                        "job_type": "set_load_limit",
                        "payload": {"load_limit_w": meter.load_limit_w},
                        "priority": THRESHOLD_PRIORITY,
                    }
                    for meter in meters
                ]
            )
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
