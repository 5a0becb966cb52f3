import logging
import threading
import time
from datetime import timedelta

import psycopg2.errors

from odoo import SUPERUSER_ID, api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.modules.registry import Registry
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY
from odoo.tools import LazyTranslate, float_round

from ..services import (
    bank_api,
    credit_token,
    debt,
    deferred_posting,
    engine,
    friendly,
    job_queue,
    local_time,
    notify,
    receipt,
    refunds,
    tou,
    vending,
)
from ..services.sale_info import sale_info, tier_summary

_lt = LazyTranslate(__name__)
_logger = logging.getLogger(__name__)

PURCHASE_STATES = [
    ("paid", "Paid"),
    ("queued", "Queued"),
    ("delivered", "Delivered"),
    ("failed", "Failed"),
    ("pending_check", "Reversal: awaiting the meter"),
    ("reversed", "Reversed"),
]
REVERSIBLE_STATES = ("paid", "queued", "failed")
# The check of a reversed sale's transfer number runs before any other job of its meter
# (credit is 10), and only once the delivery job's lease has passed (plus this margin).
CHECK_JOB_PRIORITY = 5
CHECK_AFTER_LEASE_S = 5
# Deferred posting of a bank sale's invoice and payment: attempts of the step started after
# the bank's answer (a concurrent delivery report may make one fail to serialize), and the
# sales the safety-net cron posts per transaction.
POSTING_ATTEMPTS = 5
POSTING_BATCH = 50
POSTING_LOCK = 0x53500021  # pg_advisory_xact_lock(POSTING_LOCK, sale id): one poster a sale
# one posting step at a time per Odoo process: concurrent invoices of one journal take the
# same sequence number (a unique violation), and the step keeps the CPU from the claims
_POSTING_MUTEX = threading.Lock()


class SmartpmCreditPurchase(models.Model):
    """One sale of credit. Created only by ``services.vending.vend``; it keeps the price and
    tiers it used and follows the ``add_credit`` job that delivers it to the meter."""

    _name = "smartpm.credit.purchase"
    _description = "Credit purchase"
    _inherit = ["smartpm.engine.record", "mail.thread", "mail.activity.mixin"]
    # Class attributes: no env exists when the class is defined; the lazy term is
    # translated with the env where engine_record raises it (self.env._(...)).
    _engine_create_error = _lt(  # pylint: disable=prefer-env-translation
        "Credit purchases are created by a paid sale only: a POS order, a portal payment, the "
        "bank API or the back office's Sell credit (invoiced and paid in a journal)."
    )
    _engine_sequence = "smartpm.credit.purchase"
    _engine_unlink_error = _lt("Credit purchases are never deleted: reverse them.")  # pylint: disable=prefer-env-translation
    _order = "date desc, id desc"
    _check_company_auto = True

    name = fields.Char(
        string="Reference",
        required=True,
        readonly=True,
        copy=False,
        default=lambda self: self.env._("New"),
        index=True,
    )
    date = fields.Datetime(required=True, readonly=True, default=fields.Datetime.now, index=True)
    tenant_id = fields.Many2one(
        "res.partner",
        required=True,
        readonly=True,
        index=True,
        ondelete="restrict",
        check_company=True,
    )
    tenant_number = fields.Char(related="tenant_id.tenant_number")
    meter_id = fields.Many2one(
        "smartpm.meter",
        required=True,
        readonly=True,
        index=True,
        ondelete="restrict",
        check_company=True,
    )
    company_id = fields.Many2one(
        "res.company",
        required=True,
        readonly=True,
        index=True,
        default=lambda self: self.env.company,
    )
    currency_id = fields.Many2one("res.currency", required=True, readonly=True)
    tariff_id = fields.Many2one(
        "smartpm.tariff", readonly=True, ondelete="restrict", check_company=True
    )
    amount = fields.Monetary(
        required=True, readonly=True, help="What the customer paid, taxes included."
    )
    debt_recovered = fields.Monetary(
        readonly=True,
        help="The part of the amount that paid the tenant's debts first (services/debt.py).",
    )
    credit_amount = fields.Monetary(
        string="Credit bought",
        compute="_compute_credit_amount",
        store=True,
        precompute=True,  # in the sale's INSERT, not an UPDATE after it
        help="The amount less the debt recovered: what bought energy (taxes included).",
    )
    debt_balance_after = fields.Monetary(
        string="Debt balance left",
        readonly=True,
        help="The tenant's debts still to recover right after this purchase.",
    )
    recovery_ids = fields.One2many("smartpm.debt.recovery", "purchase_id", string="Debt recovered")
    amount_untaxed = fields.Monetary(string="Untaxed amount", readonly=True)
    amount_tax = fields.Monetary(string="Taxes", readonly=True)
    kwh = fields.Float(string="Energy (kWh)", digits=(16, 3), readonly=True)
    price_per_kwh = fields.Float(
        string="Average price per kWh",
        digits=(16, 4),
        readonly=True,
        help="Untaxed amount divided by the energy sold.",
    )
    month_kwh_before = fields.Float(
        string="kWh bought earlier this month",
        digits=(16, 3),
        readonly=True,
        help="Position in the tariff's block tiers.",
    )
    tier_breakdown = fields.Json(readonly=True, help="Energy and price per tier used.")
    # time-of-use (issue 17 §6, services/tou.py): credit in money on a money-mode meter
    credit_mode = fields.Selection(
        [("kwh", "kWh"), ("money", "Money")],
        default="kwh",
        readonly=True,
        help="kWh: the token carries the energy above. Money: the token carries the credit "
        "below, in the tariff's currency, charged by the meter at each band's price.",
    )
    credit_money = fields.Monetary(
        string="Credit (money)",
        readonly=True,
        help="Money-mode meters: the credit the token put on the meter (the untaxed part "
        "of the credit bought; the meter charges untaxed band prices).",
    )
    band_prices = fields.Json(
        readonly=True, help="Money mode: the price bands in force at the sale (untaxed)."
    )
    band_summary = fields.Char(
        string="Price bands",
        compute="_compute_band_summary",
        help="Money mode: each band's price at the sale (untaxed, as the meter charges it).",
    )
    charge_total_at_delivery = fields.Float(
        string="Meter charge total at delivery",
        digits=(16, 3),
        readonly=True,
        copy=False,
        help="Money mode: what the meter's consumption charge had collected in all when "
        "this token was applied (the start of the money recognised for this meter).",
    )
    tier_summary = fields.Char(string="Tiers", compute="_compute_tier_summary")
    channel = fields.Selection(vending.CHANNELS, required=True, readonly=True, index=True)
    external_ref = fields.Char(
        string="External reference", required=True, readonly=True, copy=False
    )
    bank_partner_id = fields.Many2one("res.partner", string="Bank", readonly=True)
    state = fields.Selection(
        PURCHASE_STATES, default="paid", required=True, readonly=True, index=True, tracking=True
    )
    transfer_number = fields.Integer(readonly=True, copy=False)
    emergency_repaid_kwh = fields.Float(
        string="Emergency credit repaid (kWh)",
        digits=(16, 3),
        readonly=True,
        copy=False,
        help="Of this purchase's energy, what the meter kept to repay emergency credit the "
        "tenant had taken (the rest went to credit).",
    )
    debt_repaid_kwh = fields.Float(
        string="Negative credit repaid (kWh)",
        digits=(16, 3),
        readonly=True,
        copy=False,
        help="Of this purchase's energy, what repaid the meter's negative credit (energy used "
        "during a friendly period after the credit ran out): the meter's credit after the "
        "token was that much below the kWh bought.",
    )
    # money-mode meters: the same two figures in the tariff's currency (what the meter
    # counts), from the money the token brought
    emergency_repaid_money = fields.Float(
        digits=(16, 3),
        string="Emergency credit repaid (money)",
        readonly=True,
        copy=False,
        help="Money-mode meters: of this purchase's credit, what the meter kept to repay "
        "emergency credit the tenant had taken (the rest went to credit).",
    )
    debt_repaid_money = fields.Float(
        digits=(16, 3),
        string="Negative credit repaid (money)",
        readonly=True,
        copy=False,
        help="Money-mode meters: of this purchase's credit, what repaid the meter's negative "
        "credit (used during a friendly period after the credit ran out).",
    )
    # the receipt's energy split until the meter has the token (services/receipt.py)
    expected_emergency_repaid_kwh = fields.Float(
        string="Emergency credit to repay (kWh, expected)",
        digits=(16, 3),
        readonly=True,
        copy=False,
        help="At the sale, from the meter's last known emergency credit in use (less what "
        "the sales not yet on the meter repay): what this token should repay first. The "
        "meter's own figure replaces it on the receipt once delivered.",
    )
    expected_negative_repaid_kwh = fields.Float(
        string="Negative credit to repay (kWh, expected)",
        digits=(16, 3),
        readonly=True,
        copy=False,
        help="At the sale, from the meter's last known credit (with the sales not yet on the "
        "meter): how much of this token should repay negative credit of a friendly period.",
    )
    expected_balance_kwh = fields.Float(
        string="Estimated new balance (kWh)",
        digits=(16, 3),
        readonly=True,
        copy=False,
        help="At the sale: the meter's credit once this token (and the sales before it) "
        "reach it, from its last known credit.",
    )
    # a money-mode sale: the same expectation in the tariff's currency (what the meter counts)
    expected_emergency_repaid_money = fields.Float(
        string="Emergency credit to repay (money, expected)",
        digits=(16, 3),
        readonly=True,
        copy=False,
        help="Money-mode meters: at the sale, from the meter's last known emergency credit "
        "in use (less what the sales not yet on the meter repay), what this token's credit "
        "should repay first. The meter's own figure replaces it once delivered.",
    )
    expected_negative_repaid_money = fields.Float(
        string="Negative credit to repay (money, expected)",
        digits=(16, 3),
        readonly=True,
        copy=False,
        help="Money-mode meters: at the sale, from the meter's last known credit (with the "
        "sales not yet on the meter), how much of this token's credit should repay negative "
        "credit of a friendly period.",
    )
    expected_balance_money = fields.Float(
        string="Estimated new balance (money)",
        digits=(16, 3),
        readonly=True,
        copy=False,
        help="Money-mode meters: at the sale, the meter's credit once this token (and the "
        "sales before it) reach it, from its last known credit.",
    )
    receipt_lines = fields.Json(
        string="Receipt lines",
        compute="_compute_receipt",
        help="The receipt of the sale as every channel prints it (services/receipt.py).",
    )
    receipt_text = fields.Text(
        string="Receipt",
        compute="_compute_receipt",
        help="The receipt of the sale as every channel prints it: amount paid, debt "
        "recovered and left, emergency and negative credit repaid, net energy added, new "
        "balance and transfer number.",
    )
    token = fields.Char(
        string="Credit token (hex)",
        readonly=True,
        copy=False,
        groups="smartpm_prepay.group_manager",
        help="Minted and signed by Odoo at the sale with the meter's token key; the meter "
        "checks it. Written by the vending engine only.",
    )
    job_id = fields.Many2one(
        "smartpm.meter.job", string="Delivery job", readonly=True, index=True, copy=False
    )
    job_state = fields.Selection(related="job_id.state", string="Job state")
    job_error = fields.Text(related="job_id.error", string="Delivery error")
    date_delivered = fields.Datetime(readonly=True, copy=False)
    date_reversed = fields.Datetime(
        readonly=True,
        copy=False,
        index="btree_not_null",
        help="When the sale was reversed (the day the daily vending report counts it).",
    )
    invoice_id = fields.Many2one("account.move", readonly=True, copy=False, check_company=True)
    posting_journal_id = fields.Many2one(
        "account.journal",
        string="Payment to post in",
        readonly=True,
        copy=False,
        index="btree_not_null",
        help="Set while the sale's invoice and payment wait to be posted (a bank sale: they "
        "are posted right after the bank's answer, or by the cron 'post bank sales' "
        "should Odoo stop in between), in this payment journal. Empty once they are posted.",
    )
    credit_note_id = fields.Many2one(
        "account.move", string="Credit note", readonly=True, copy=False, check_company=True
    )
    reconnect_job_id = fields.Many2one("smartpm.meter.job", readonly=True, copy=False)
    check_job_id = fields.Many2one(
        "smartpm.meter.job",
        string="Token check job",
        readonly=True,
        copy=False,
        help="Asks the meter whether the transfer number was applied before a sale whose "
        "delivery was attempted is reversed; cancels it on the meter if not.",
    )
    check_job_state = fields.Selection(related="check_job_id.state", string="Check state")
    delivery_attempted = fields.Boolean(
        readonly=True,
        copy=False,
        help="A bridge took the delivery job before it was retried from scratch (a retry "
        "resets the job's attempt count): the token may have reached the meter.",
    )

    # bank channel
    bank_reference = fields.Char(
        readonly=True,
        index="btree_not_null",
        copy=False,
        help="The bank's own reference of the sale (unique per bank).",
    )
    bank_time = fields.Datetime(readonly=True, copy=False, help="When the bank took the money.")
    # point of sale
    pos_order_line_id = fields.Many2one(
        "pos.order.line",
        string="POS order line",
        readonly=True,
        copy=False,
        index="btree_not_null",
        ondelete="restrict",
    )
    pos_order_id = fields.Many2one(related="pos_order_line_id.order_id", string="POS order")
    payment_document = fields.Char(
        compute="_compute_payment_document",
        help="What paid for the credit: the POS order, the invoice, or Free basic "
        "electricity for the monthly grant of a social tariff (no payment).",
    )
    # prepayment accounting: what the recognition job moved to revenue (services/prepayment)
    recognition_ids = fields.One2many("smartpm.credit.recognition", "purchase_id")
    kwh_recognised = fields.Float(
        string="Consumed (kWh)",
        digits=(16, 3),
        compute="_compute_recognised",
        store=True,
        precompute=True,
    )
    value_recognised = fields.Monetary(
        string="Recognised revenue",
        compute="_compute_recognised",
        store=True,
        precompute=True,
    )
    kwh_remaining = fields.Float(
        string="Credit left (kWh)",
        digits=(16, 3),
        compute="_compute_recognised",
        store=True,
        precompute=True,
    )
    money_remaining = fields.Monetary(
        string="Credit left (money)",
        compute="_compute_recognised",
        store=True,
        precompute=True,
        help="Money mode: the credit of this sale not yet consumed (FIFO, services/prepayment).",
    )
    # move-out and replacement (services/settlement): the last kWh, settled
    settlement_line_ids = fields.One2many("smartpm.credit.settlement.line", "purchase_id")
    kwh_settled = fields.Float(
        string="Settled (kWh)",
        digits=(16, 3),
        compute="_compute_recognised",
        store=True,
        precompute=True,
    )

    _sql_constraints = [
        (
            "channel_ref_uniq",
            "unique(channel, external_ref)",
            "This reference was already used on this channel.",
        ),
        (
            "meter_transfer_uniq",
            "unique(meter_id, transfer_number)",
            "This transfer number was already used for this meter.",
        ),
        # a sale is paid; only a grant of free basic electricity (services/fbe.py) is free
        (
            "amount_positive",
            "CHECK(CASE WHEN channel = 'fbe' THEN amount = 0 ELSE amount > 0 END)",
            "The amount must be positive (zero for free basic electricity only).",
        ),
        # A bank's reference names one sale whatever the protocol (SOAP or XML-RPC) it came
        # by; concurrent requests with one reference meet here (bank_api._is_reference_race).
        (
            "bank_reference_uniq",
            "unique(bank_partner_id, bank_reference)",
            "This bank already used this reference for another sale.",
        ),
    ]

    @api.depends(
        "kwh",
        "credit_money",
        "recognition_ids.kwh",
        "recognition_ids.amount",
        "settlement_line_ids.kwh",
        "settlement_line_ids.amount",
    )
    def _compute_recognised(self):
        for purchase in self:
            kwh = sum(purchase.recognition_ids.mapped("kwh"))
            settled = sum(purchase.settlement_line_ids.mapped("kwh"))
            purchase.kwh_recognised = kwh
            purchase.kwh_settled = settled
            purchase.value_recognised = sum(purchase.recognition_ids.mapped("amount"))
            purchase.kwh_remaining = purchase.kwh - kwh - settled
            purchase.money_remaining = (
                purchase.credit_money
                - purchase.value_recognised
                - sum(purchase.settlement_line_ids.mapped("amount"))
                if purchase.credit_mode == "money"
                else 0.0
            )

    @api.depends("channel", "invoice_id", "pos_order_line_id")
    def _compute_payment_document(self):
        for purchase in self:
            if purchase.channel == vending.FBE_CHANNEL:
                purchase.payment_document = self.env._("Free basic electricity")
            else:
                doc = purchase.sudo().pos_order_line_id.order_id or purchase.sudo().invoice_id
                purchase.payment_document = doc.display_name or False

    @api.depends("amount", "debt_recovered")
    def _compute_credit_amount(self):
        for purchase in self:
            purchase.credit_amount = purchase.amount - purchase.debt_recovered

    @api.depends(
        "state",
        "amount",
        "debt_recovered",
        "debt_balance_after",
        "kwh",
        "emergency_repaid_kwh",
        "debt_repaid_kwh",
        "emergency_repaid_money",
        "debt_repaid_money",
        "expected_emergency_repaid_kwh",
        "expected_negative_repaid_kwh",
        "expected_balance_kwh",
        "expected_emergency_repaid_money",
        "expected_negative_repaid_money",
        "expected_balance_money",
        "job_id.result",
    )
    @api.depends_context("lang")  # the lines' words and numbers are the reader's language
    def _compute_receipt(self):
        for purchase in self:
            if not purchase.id:
                purchase.receipt_lines = []
                purchase.receipt_text = False
                continue
            rows = receipt.split(purchase)["lines"]
            purchase.receipt_lines = rows
            purchase.receipt_text = receipt.text_of(rows)

    @api.depends("band_prices")
    def _compute_band_summary(self):
        for purchase in self:
            purchase.band_summary = (
                ", ".join(
                    f"{band['name']} {band['price_untaxed']:.4f}/kWh"
                    for band in purchase.band_prices or []
                )
                or False
            )

    @api.depends("tier_breakdown")
    def _compute_tier_summary(self):
        for purchase in self:
            purchase.tier_summary = tier_summary(purchase.tier_breakdown) or False

    @api.model
    def _engine_fields(self):
        """Every stored field the form shows read-only (money, energy, tiers, token, transfer
        number, state, links to the job and the payment documents...): the vending engine's."""
        return {
            name
            for name, field in self._fields.items()
            if field.store
            and field.readonly
            and not field.compute
            and not field.related
            and name not in models.MAGIC_COLUMNS
        }

    @api.model
    def _get_list_action(self, domain):
        """The window of the purchases of ``domain`` (a meter's, a tenant's)."""
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Purchases"),
            "res_model": "smartpm.credit.purchase",
            "view_mode": "list,form",
            "domain": domain,
        }

    # ---------------------------------------------------------------- RPC / channels
    @api.model
    def _get_meter(self, meter_id):
        """The meter ``meter_id`` (id or serial number) as the caller may see it."""
        Meter = self.env["smartpm.meter"]
        if isinstance(meter_id, bool) or not isinstance(meter_id, (int, str)):
            raise vending.VendingError("unknown_meter", self.env._("Unknown meter %r.", meter_id))
        domain = (
            [("id", "=", meter_id)]
            if isinstance(meter_id, int)
            else [("serial_number", "=", meter_id.strip().upper())]
        )
        meter = Meter.search(domain, limit=1)
        if not meter:
            raise vending.VendingError("unknown_meter", self.env._("Unknown meter %s.", meter_id))
        return meter

    @api.model
    def vend(self, *args, **kwargs):
        """Closed (issue 14): credit without its payment document. Server code sells
        through ``services.vending.vend``, each channel with its payment."""
        raise AccessError(
            self.env._(
                "Credit is not sold by a bare RPC call: sell through a paid channel, the "
                "bank API (smartpm.bank.api purchase), the Point of Sale, the tenant portal "
                "or the back office's Sell credit (invoiced and paid in a journal)."
            )
        )

    @api.model
    def quote(self, meter_id, amount):
        """What ``amount`` would buy for the meter now (nothing is recorded)."""
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount <= 0:
            raise vending.VendingError(
                "invalid_request", self.env._("The amount must be positive.")
            )
        info = sale_info(self._get_meter(meter_id), amount)
        if info["reason"]:
            raise vending.VendingError(info["reason_code"], info["reason"])
        return dict(info["quote"], currency=info["currency"].name)

    @api.model
    def quote_kwh(self, meter_id, kwh):
        """Amount (tax included) to pay for at least ``kwh`` on the meter now."""
        if isinstance(kwh, bool) or not isinstance(kwh, (int, float)) or kwh <= 0:
            raise vending.VendingError(
                "invalid_request", self.env._("The energy must be positive.")
            )
        meter = self._get_meter(meter_id).sudo()
        tariff = vending.check_sellable(meter)
        amount = tariff._amount_for_kwh(kwh, vending.month_kwh(self.env, meter))
        return {"amount": amount, "currency": tariff.currency_id.name, "kwh": kwh}

    @api.model
    def search_sellable_meters(self, query, limit=10):
        """Meters a channel may sell for, by serial number, tenant number or tenant name:
        what a POS or bank screen needs to show before the sale."""
        if not isinstance(query, str) or len(query.strip()) < 2:
            return []
        query = query.strip()
        meters = self.env["smartpm.meter"].search(
            [
                ("state", "in", vending.SELLABLE_STATES),
                ("tenant_id", "!=", False),
                "|",
                "|",
                ("serial_number", "ilike", query),
                ("tenant_id.tenant_number", "=ilike", query),
                ("tenant_id.name", "ilike", query),
            ],
            limit=max(1, min(int(limit), 50)),
        )
        return [meter.sudo()._prepare_sale_info() for meter in meters]

    def _receipt(self):
        self.ensure_one()
        purchase = self.sudo()
        return {
            "purchase_id": purchase.id,
            "reference": purchase.name,
            "meter": purchase.meter_id.serial_number,
            "tenant": purchase.tenant_id.name,
            "tenant_number": purchase.tenant_id.tenant_number or "",
            "amount": purchase.amount,
            "amount_untaxed": purchase.amount_untaxed,
            "amount_tax": purchase.amount_tax,
            "debt_recovered": purchase.debt_recovered,
            "debt_balance": purchase.debt_balance_after,
            "credit_amount": purchase.credit_amount,
            "currency": purchase.currency_id.name,
            "kwh": purchase.kwh,
            "price_per_kwh": purchase.price_per_kwh,
            "tiers": purchase.tier_breakdown or [],
            "credit_mode": purchase.credit_mode or "kwh",
            "credit_money": purchase.credit_money,
            "bands": tou.receipt_bands(purchase),
            "state": purchase.state,
            "transfer_number": purchase.transfer_number,
            "channel": purchase.channel,
            "external_ref": purchase.external_ref,
            "date": fields.Datetime.to_string(purchase.date),
            **friendly.receipt_values(purchase),
            # the split of every channel's receipt (services/receipt.py)
            "split": receipt.split(purchase),
        }

    # ---------------------------------------------------------------- delivery
    def _queue_delivery(self):
        """Create the add_credit job of each purchase (called by vend, in sudo)."""
        Job = engine.as_engine(self.env["smartpm.meter.job"])
        for purchase in engine.as_engine(self):
            job = Job.create(
                {
                    "meter_id": purchase.meter_id.id,
                    "job_type": "add_credit",
                    "payload": purchase._prepare_credit_payload(),
                    "priority": vending.CREDIT_JOB_PRIORITY,
                    "idempotency_key": f"purchase-{purchase.id}",
                }
            )
            purchase.write({"job_id": job.id, "state": "queued"})

    def _resign_token_if_key_changed(self):
        """A token the meter refused because the meter's key in Odoo was wrong (the owner
        has corrected it since) is signed again with the current key: same transfer number
        and energy, so the meter still applies that transfer at most once."""
        self.ensure_one()
        purchase = engine.as_engine(self)
        meter = purchase.meter_id
        key = meter._get_token_key()
        old = bytes.fromhex(purchase.token or "")
        if purchase.credit_mode == "money":
            if not key or credit_token.verify_money(key, meter.serial_number, old):
                return False
            number, units, _tag, _mac = credit_token.parse_money(old)
            new = credit_token.mint_money(key, meter.serial_number, number, units).hex().upper()
        elif not key or credit_token.verify(key, meter.serial_number, old):
            return False
        else:
            number, wh, _tag, _mac = credit_token.parse(old)
            new = credit_token.mint(key, meter.serial_number, number, wh).hex().upper()
        purchase.token = new
        purchase.job_id.payload = dict(purchase.job_id.payload or {}, token=new)
        purchase.message_post(
            body=self.env._(
                "Credit token of transfer %s signed again with the meter's current token key.",
                number,
            )
        )
        return True

    def _prepare_credit_payload(self):
        """The add_credit payload (docs/job-protocol.md): the opaque token the bridge sends
        as is; transfer number and kWh for people reading the job."""
        self.ensure_one()
        return {
            "token": self.sudo().token,
            "transfer_number": self.transfer_number,
            "kwh": self.kwh,
        }

    def _on_delivered(self, result):
        """The meter took the credit (or had it already): called from the job's _on_done."""
        if not deferred_posting.cron_posts():
            # the process's poster posts a bank sale once its delivery is reported
            dbname, sale_ids = self.env.cr.dbname, self.ids
            self.env.cr.postcommit.add(lambda: POSTER.delivered(dbname, sale_ids))
        for purchase in engine.as_engine(self).filtered(
            lambda p: p.state in ("paid", "queued", "failed", "pending_check")
        ):
            if purchase.state == "pending_check":
                purchase._refuse_reversal_applied()
                job_queue.cancel(purchase.env, purchase.check_job_id.ids)
            purchase.write(
                {
                    "state": "delivered",
                    "date_delivered": fields.Datetime.now(),
                    "emergency_repaid_kwh": float(result.get("emergency_repaid_kwh") or 0.0),
                    "debt_repaid_kwh": purchase._negative_repaid(result, "kwh"),
                    "emergency_repaid_money": float(result.get("emergency_repaid_money") or 0.0),
                    "debt_repaid_money": purchase._negative_repaid(result, "money"),
                    "charge_total_at_delivery": float(result.get("charge_total") or 0.0),
                }
            )
            purchase.activity_ids.action_feedback(feedback=self.env._("Delivered to the meter."))
            meter = purchase.meter_id
            if purchase.credit_mode == "money":
                meter.message_post(
                    body=self.env._(
                        "Credit %(ref)s delivered: %(money)s (transfer %(n)s); credit now "
                        "%(credit)s.",
                        ref=purchase.name,
                        money=purchase.credit_money,
                        n=purchase.transfer_number,
                        credit=meter.credit_money,
                    )
                )
                purchase._reconnect_if_tripped(result)
                continue
            meter.message_post(
                body=self.env._(
                    "Credit %(ref)s delivered: %(kwh)s kWh (transfer %(n)s); credit now "
                    "%(credit)s kWh.",
                    ref=purchase.name,
                    kwh=purchase.kwh,
                    n=purchase.transfer_number,
                    credit=meter.credit_kwh,
                )
            )
            purchase._reconnect_if_tripped(result)
            # the tenant hears of it once, on the channels they chose (services/notify.py)
            notify.purchase_delivered(purchase)

    def _negative_repaid(self, result, unit):
        """What of the credit this token brought (its kWh, or its money on a money-mode
        meter: ``unit`` "kwh" or "money", less the emergency credit it repaid) went to the
        meter's negative credit (a friendly period): the credit the meter reports after the
        token, less what the token brought, was below zero before it (three decimals: Wh, or
        the meter's milli-units of the currency)."""
        self.ensure_one()
        if unit == "money" and self.credit_mode != "money":
            return 0.0
        if f"credit_{unit}" not in result:
            return 0.0
        credit = self.credit_money if unit == "money" else self.kwh
        brought = credit - float(result.get(f"emergency_repaid_{unit}") or 0.0)
        before = float(result[f"credit_{unit}"]) - brought
        if before >= 0 or brought <= 0:
            return 0.0
        return float_round(min(-before, brought), precision_digits=3)

    def _reconnect_if_tripped(self, result):
        """A meter that tripped for credit closes its relay itself when credit comes; if it
        still reports the relay open with credit above the trip value, ask it to reconnect."""
        self.ensure_one()
        meter = self.meter_id
        if (
            result.get("relay") == "disconnected"
            and meter.state == "active"
            and (meter.credit_money if meter.credit_mode == "money" else meter.credit_kwh)
            > meter.effective_trip_kwh
        ):
            job = meter._enqueue_job(
                "reconnect",
                {},
                priority=vending.CREDIT_JOB_PRIORITY + 5,
                idempotency_key=f"purchase-{self.id}-reconnect",
            )
            engine.as_engine(self).reconnect_job_id = job

    def _on_delivery_failed(self):
        """No attempt left: the operators get an activity to retry or reverse."""
        for purchase in engine.as_engine(self).filtered(lambda p: p.state in ("paid", "queued")):
            purchase.state = "failed"
            user = purchase._get_alert_user()
            purchase.activity_schedule(
                "mail.mail_activity_data_todo",
                user_id=user.id,
                summary=self.env._(
                    "Credit not delivered to meter %s", purchase.meter_id.serial_number
                ),
                note=self.env._(
                    "%(ref)s could not be delivered: %(error)s. Retry the delivery once the "
                    "meter is reachable, or reverse the sale.",
                    ref=purchase.name,
                    error=purchase.job_id.error or self.env._("job cancelled"),
                ),
            )

    def _get_alert_user(self):
        self.ensure_one()
        user = self.company_id.smartpm_alert_user_id
        if user:
            return user
        managers = (
            self.env.ref("smartpm_prepay.group_manager")
            .sudo()
            .users.filtered(lambda u: not u._is_superuser() and self.company_id in u.company_ids)
        )
        return managers[:1] or self.env.user

    def action_retry_delivery(self):
        self.check_access("write")
        for purchase in self:
            if purchase.state != "failed":
                raise UserError(
                    self.env._("Only a failed delivery can be retried (%s).", purchase.name)
                )
        for purchase in engine.as_engine(self):
            # the same job: same transfer number, so the meter cannot apply it twice
            purchase._resign_token_if_key_changed()
            purchase.job_id.action_retry()
            engine.as_engine(purchase).state = "queued"
            purchase.activity_ids.action_feedback(feedback=self.env._("Delivery retried."))
        return True

    # ---------------------------------------------------------------- accounting
    def _prepare_invoice_values(self, journal=None):
        self.ensure_one()
        product = self.env.ref("smartpm_prepay.product_electricity_credit")
        sale_journal = self.env["account.journal"].search(
            [("type", "=", "sale"), ("company_id", "=", self.company_id.id)], limit=1
        )
        if not sale_journal:
            raise UserError(
                self.env._("The company %s has no sales journal.", self.company_id.name)
            )
        return {
            "move_type": "out_invoice",
            "partner_id": self.tenant_id.id,
            "company_id": self.company_id.id,
            "currency_id": self.currency_id.id,
            "journal_id": sale_journal.id,
            # the company's local day of the sale (the daily vending report's day), not the
            # selling user's: the payment takes the same date
            "invoice_date": local_time.local_today(self.company_id, self.date),
            "ref": self.name,
            "payment_reference": self.name,
            "invoice_line_ids": [
                fields.Command.create(
                    {
                        "product_id": product.id,
                        "name": self.env._(
                            "Electricity credit %(kwh)s kWh for meter %(meter)s (%(ref)s)",
                            kwh=self.kwh,
                            meter=self.meter_id.serial_number,
                            ref=self.name,
                        ),
                        "quantity": 1,
                        "price_unit": self.credit_amount,
                        "tax_ids": [fields.Command.set(self.tariff_id.tax_ids.ids)],
                    }
                )
            ],
        }

    def _check_payment_journal(self, journal):
        """The journal a sale's payment goes to, checked: bank or cash, of its company."""
        journal = journal.sudo()
        if journal.type not in ("bank", "cash") or journal.company_id != self.company_id:
            raise UserError(
                self.env._("Payments go to a bank or cash journal of the same company.")
            )
        return journal

    def _create_invoice_and_payment(self, journal):
        """Invoice the tenant, post, pay in ``journal`` and reconcile; return the invoice.
        Used by the back office and the bank channel (with the bank's journal)."""
        self.ensure_one()
        # No chatter on the machine-made invoice and payment (creation notes, tracking,
        # followers): a quarter of a bank purchase's time went there; the sale's own chatter
        # and the journal entries are unchanged.
        purchase = (
            engine.as_engine(self).with_company(self.company_id).with_context(tracking_disable=True)
        )
        if purchase.invoice_id:
            return purchase.invoice_id
        if purchase.state == "reversed":
            raise UserError(self.env._("%s is reversed: it cannot be invoiced.", purchase.name))
        if purchase.channel == vending.FBE_CHANNEL:
            raise UserError(
                self.env._("%s is free basic electricity: nothing to invoice.", purchase.name)
            )
        journal = purchase._check_payment_journal(journal)
        invoice = purchase.env["account.move"].create(purchase._prepare_invoice_values())
        invoice.action_post()
        if invoice.currency_id.compare_amounts(invoice.amount_total, purchase.credit_amount):
            raise UserError(
                self.env._(
                    "Invoice total %(total)s differs from the sale %(amount)s.",
                    total=invoice.amount_total,
                    amount=purchase.credit_amount,
                )
            )
        # the whole amount is paid: the invoice takes the credit, the debts the rest
        payments = (
            purchase.env["account.payment.register"]
            .with_context(active_model="account.move", active_ids=invoice.ids)
            .create(
                {
                    "journal_id": journal.id,
                    "amount": purchase.amount,
                    "payment_date": invoice.invoice_date,
                    "communication": purchase.name,
                    "payment_difference_handling": "open",
                }
            )
            ._create_payments()
        )
        debt.settle_payment(purchase, payments.move_id)
        purchase.invoice_id = invoice
        return invoice

    def _defer_invoice_and_payment(self, journal):
        """The bank's purchase: its invoice and payment in ``journal`` are posted after the
        answer is committed, by the cron this commit triggers or, in a threaded Odoo, by the
        process's poster once the sale is on the meter and the process is quiet
        (``services/deferred_posting.py``: where and when, and why). The trigger and the
        sale commit together: should Odoo stop in between, the cron posts it. Posting twice
        posts once (``_post_deferred``)."""
        self.ensure_one()
        journal = self._check_payment_journal(journal)
        engine.as_engine(self).posting_journal_id = journal
        # the cron's id from the xml ids' cache (env.ref would check that it exists: a query)
        cron_id = self.env["ir.model.data"]._xmlid_to_res_id(
            "smartpm_prepay.cron_post_deferred_sales", raise_if_not_found=False
        )
        if cron_id:
            self.env["ir.cron"].sudo().browse(cron_id)._trigger(
                at=deferred_posting.cron_trigger_at()
            )
        if not deferred_posting.cron_posts():
            dbname, sale_ids = self.env.cr.dbname, self.ids
            self.env.cr.postcommit.add(lambda: POSTER.answered(dbname, sale_ids))

    def _post_deferred(self):
        """Post the invoice and payment of sales that wait for them (``posting_journal_id``).
        One poster at a time per sale (the step after the answer, the cron, a reversal: an
        advisory lock); the sale's row is written only at the end, so a delivery report
        writing it meanwhile does not wait behind the whole posting. Two postings of one
        sale both write that row: the later one fails to serialize and is rolled back (the
        step and the cron try again, and then find it posted): posting twice posts once."""
        for sale in self:
            self.env.cr.execute("SELECT pg_advisory_xact_lock(%s, %s)", [POSTING_LOCK, sale.id])
            sale.invalidate_recordset(["posting_journal_id", "invoice_id", "state"])
            journal = sale.posting_journal_id
            if not journal:
                continue
            if not sale.invoice_id:
                sale._create_invoice_and_payment(journal)
            sale._close_posting_alert()
            engine.as_engine(sale).posting_journal_id = False

    @api.model
    def _cron_post_deferred_sales(self):
        """Safety net of the bank's deferred posting: the sales still waiting (Odoo stopped
        between the answer and the posting), oldest first; a sale posted meanwhile elsewhere
        (a conflict) or one that fails is logged and left for the next run."""
        self.flush_model(["posting_journal_id"])
        self.env.cr.execute(
            "SELECT id FROM smartpm_credit_purchase WHERE posting_journal_id IS NOT NULL "
            "ORDER BY id LIMIT %s",
            [POSTING_BATCH],
        )
        ids = [row[0] for row in self.env.cr.fetchall()]
        for sale in self.sudo().browse(ids):
            try:
                with self.env.cr.savepoint():
                    sale._post_deferred()
                    self.env.flush_all()  # a conflict shows here, inside the savepoint
            except (*PG_CONCURRENCY_EXCEPTIONS_TO_RETRY, psycopg2.errors.UniqueViolation):
                _logger.info("sale %s: posted meanwhile or busy: next run", sale.name)
            except (UserError, AccessError) as exc:
                _logger.exception("sale %s: its invoice and payment could not be posted", sale.name)
                sale._alert_posting_failed(exc)
        remaining = self.sudo().search_count([("posting_journal_id", "!=", False)]) if ids else 0
        self.env["ir.cron"]._notify_progress(done=len(ids), remaining=max(remaining - len(ids), 0))
        return len(ids)

    def _posting_alert_summary(self):
        return self.env._("Invoice and payment of %s not posted", self.name)

    def _alert_posting_failed(self, error):
        """A bank sale answered as sold whose books the posting step cannot make: the
        operators get one activity (not one per cron run) naming the sale and the error; the
        cron goes on trying, and closes the activity once the books are posted."""
        self.ensure_one()
        summary = self._posting_alert_summary()
        if self.activity_ids.filtered(lambda a: a.summary == summary):
            return
        self.activity_schedule(
            "mail.mail_activity_data_todo",
            user_id=self._get_alert_user().id,
            summary=summary,
            note=self.env._(
                "%(ref)s (meter %(meter)s, %(amount)s) was sold to the bank and its credit "
                "sent, but its invoice and payment could not be posted: %(error)s. Correct the "
                "cause (journal, taxes, accounts); the sale is posted at the next run of the "
                "cron 'post bank sales'.",
                ref=self.name,
                meter=self.meter_id.serial_number,
                amount=self.amount,
                error=str(error),
            ),
        )

    def _close_posting_alert(self):
        summary = self._posting_alert_summary()
        alerts = self.activity_ids.filtered(lambda a: a.summary == summary)
        if alerts:
            alerts.action_feedback(feedback=self.env._("Posted."))

    # ---------------------------------------------------------------- reversal
    def action_reverse(self):
        """Undo sales whose credit provably did not reach the meter.

        Never claimed by a bridge: the job is cancelled and the sale reversed at once.
        Claimed (running, failed, or a bridge died with it): the token may be on the meter,
        so the sale waits (``pending_check``) for a ``check_token`` job, queued to run once
        the delivery's lease has passed, to ask the meter. Reversed only on its "not
        applied" (the meter then refuses that transfer for ever); on "applied" the sale is
        delivered. Asking again while the check is pending changes nothing."""
        self.check_access("write")
        for purchase in engine.as_engine(self):
            if purchase.state == "pending_check":
                continue
            if purchase.state == "delivered":
                raise UserError(
                    self.env._(
                        "%(ref)s was delivered: its %(kwh)s kWh are on meter %(meter)s "
                        "(transfer %(n)s). A delivered sale is never reversed.",
                        ref=purchase.name,
                        kwh=purchase.kwh,
                        meter=purchase.meter_id.serial_number,
                        n=purchase.transfer_number,
                    )
                )
            if purchase.state not in REVERSIBLE_STATES:
                raise UserError(
                    self.env._(
                        "%(ref)s is %(state)s: only an undelivered sale can be reversed.",
                        ref=purchase.name,
                        state=dict(PURCHASE_STATES)[purchase.state],
                    )
                )
            if purchase.channel == "pos":
                # before anything changes: the cash goes out in the register's open session
                refunds.check_pos_register_open(purchase)
            job = purchase.job_id
            never_claimed = not job or (
                not purchase.delivery_attempted
                and (
                    job.state == "cancelled"
                    and not job.attempt_count
                    or bool(job_queue.cancel(purchase.env, job.ids, never_claimed=True))
                )
            )
            if never_claimed:
                # the operator is here: a POS sale's cash goes out at its register now
                purchase._reverse_now(refund_at_register=True)
            else:
                purchase._request_token_check()
        return True

    def _reverse_now(self, refund_at_register=False):
        """The credit is not on the meter (never sent, or the meter said so): reverse, with
        a credit note for a posted invoice, and give the money back on the sale's channel
        (``services.refunds``)."""
        self.ensure_one()
        # a bank sale whose invoice and payment wait for the posting step: posted first, so
        # the credit note below reverses them
        self._post_deferred()
        vals = {"state": "reversed", "date_reversed": fields.Datetime.now()}
        if self.invoice_id and self.invoice_id.state == "posted" and not self.credit_note_id:
            vals["credit_note_id"] = self._create_credit_note().id
        engine.as_engine(self).write(vals)
        debt.restore(self)
        self.activity_ids.action_feedback(feedback=self.env._("Sale reversed."))
        refunds.refund_reversed(self, refund_at_register=refund_at_register)

    def _request_token_check(self):
        """A claimed delivery: stop its retries and queue (once) the check of its transfer
        number, due when the delivery's lease has passed."""
        self.ensure_one()
        job = self.job_id
        # no further attempt; a running one (live lease) goes on and may still deliver
        job_queue.cancel(self.env, job.ids, expired=True)
        job.invalidate_recordset()
        not_before = fields.Datetime.now()
        if job.state == "claimed" and job.lease_until:
            not_before = max(not_before, job.lease_until)
        not_before += timedelta(seconds=CHECK_AFTER_LEASE_S)
        check = self.check_job_id
        if not check:
            check = (
                self.env["smartpm.meter.job"]
                .sudo()
                .create(
                    {
                        "meter_id": self.meter_id.id,
                        "job_type": "check_token",
                        "payload": {"transfer_number": self.transfer_number},
                        "priority": CHECK_JOB_PRIORITY,
                        "next_attempt_at": not_before,
                        "idempotency_key": f"purchase-{self.id}-check",
                    }
                )
            )
        elif check.state in ("failed", "cancelled"):
            check.action_retry()
        engine.as_engine(self).write({"state": "pending_check", "check_job_id": check.id})
        self.message_post(
            body=self.env._(
                "Reversal requested by %(user)s. The delivery was attempted, so the meter is "
                "asked first whether it applied transfer %(n)s (not before %(when)s UTC): "
                "reversed only if it did not.",
                user=self.env.user.name,
                n=self.transfer_number,
                when=fields.Datetime.to_string(not_before),
            )
        )

    def _refuse_reversal_applied(self):
        self.ensure_one()
        self.message_post(
            body=self.env._(
                "Reversal refused: meter %(meter)s applied transfer %(n)s, its %(kwh)s kWh "
                "are on the meter. The sale is delivered.",
                meter=self.meter_id.serial_number,
                n=self.transfer_number,
                kwh=self.kwh,
            )
        )

    def _on_token_checked(self, result):
        """The check_token job's answer (docs/job-protocol.md)."""
        for purchase in self.filtered(lambda p: p.state == "pending_check"):
            if result.get("transfer_number") != purchase.transfer_number:
                continue
            if result.get("applied"):
                job_queue.cancel(purchase.env, purchase.job_id.ids, expired=True)
                purchase._on_delivered(result)
            elif result.get("cancelled"):
                # the meter refuses that token now: no bridge needs to try it again
                job_queue.cancel(purchase.env, purchase.job_id.ids, expired=True)
                purchase._reverse_now()
                purchase.message_post(
                    body=self.env._(
                        "Meter %(meter)s did not apply transfer %(n)s and has cancelled it "
                        "(it refuses that token for ever): the sale is reversed.",
                        meter=purchase.meter_id.serial_number,
                        n=purchase.transfer_number,
                    )
                )

    def _on_token_check_failed(self):
        for purchase in self.filtered(lambda p: p.state == "pending_check"):
            purchase.activity_schedule(
                "mail.mail_activity_data_todo",
                user_id=purchase._get_alert_user().id,
                summary=self.env._(
                    "Meter %s not asked about a reversal", purchase.meter_id.serial_number
                ),
                note=self.env._(
                    "%(ref)s waits for the meter to say whether transfer %(n)s was applied, "
                    "and the check failed: %(error)s. Ask the meter again once it is "
                    "reachable; until then the sale is neither delivered nor reversed.",
                    ref=purchase.name,
                    n=purchase.transfer_number,
                    error=purchase.check_job_id.error or self.env._("job cancelled"),
                ),
            )

    def action_check_token_again(self):
        """Button: run the failed check of a pending reversal again."""
        self.check_access("write")
        for purchase in self.sudo():
            if purchase.state != "pending_check":
                raise UserError(self.env._("%s waits for no meter check.", purchase.name))
            purchase._request_token_check()
            purchase.activity_ids.action_feedback(feedback=self.env._("Meter asked again."))
        return True

    def _create_credit_note(self):
        self.ensure_one()
        invoice = self.invoice_id.with_company(self.company_id)
        day = local_time.local_today(self.company_id)  # the company's day of the reversal
        refund = invoice._reverse_moves(
            [
                {
                    "ref": self.env._("Reversal of %s", self.name),
                    "invoice_date": day,
                    "date": day,
                }
            ]
        )
        refund.action_post()
        return refund

    @api.model
    def _demo_vend(self, sales):
        """Demo data: sell through the one vending path (see demo/vending_demo.xml), each
        sale invoiced and paid in the company's cash journal (a bank's sale in its settlement
        journal): no credit without payment.

        Each sale is ``(meter xml id, amount, channel, reference[, seller's user xml id])``.
        A seller sells with their own rights, as they would: the cashier at the register,
        the owner in the back office, a bank's API user for their bank (whose sale names
        the bank and carries its reference, as the bank API's). A sale without a seller (the
        tenants' online payment) is the superuser's."""
        for xmlid, amount, channel, ref, *seller in sales:
            meter = self.env.ref(xmlid, raise_if_not_found=False)
            if not meter:
                continue
            user = self.env.ref(seller[0]) if seller else None
            env = self.env(user=user, su=False) if user else self.env(su=True)
            options = {}
            bank = self.env["res.partner"]
            if channel in bank_api.BANK_CHANNELS and user:
                bank = user.commercial_partner_id
                options = {
                    "bank_partner": bank,
                    "extra_vals": {"bank_reference": ref, "bank_time": fields.Datetime.now()},
                }
                ref = bank_api._external_ref(bank, ref)
            purchase = vending.vend(env, meter, amount, channel, ref, **options)
            journal = bank.smartpm_bank_journal_id or self.env["account.journal"].sudo().search(
                [("type", "in", ("cash", "bank")), ("company_id", "=", purchase.company_id.id)],
                order="type desc, id",  # cash first
                limit=1,
            )
            if journal:
                purchase.sudo()._create_invoice_and_payment(journal)


def _post_sale(dbname, sale_id):
    """Post one deferred sale in a transaction of its own (the poster's thread). A
    concurrent delivery report may make the posting fail to serialize: tried again; whatever
    is left, the cron posts."""
    with _POSTING_MUTEX:
        for attempt in range(POSTING_ATTEMPTS):
            try:
                with Registry(dbname).cursor() as cr:
                    env = api.Environment(cr, SUPERUSER_ID, {})
                    env["smartpm.credit.purchase"].browse(sale_id).exists()._post_deferred()
                return
            except (*PG_CONCURRENCY_EXCEPTIONS_TO_RETRY, psycopg2.errors.UniqueViolation):
                # a concurrent report on the sale, or another process's invoice taking
                # the same number: a new transaction sees it
                time.sleep(0.05 * (attempt + 1))
        _logger.warning("sale %s: left for the posting cron", sale_id)


# the bank sales answered by this process, posted when it is quiet (a threaded Odoo only)
POSTER = deferred_posting.Poster(_post_sale)
