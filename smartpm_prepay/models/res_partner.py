import re
import secrets

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError

from ..services import wsse

ID_CARD_RE = re.compile(r"^[A-Z0-9][A-Z0-9-]{4,19}$")


class ResPartner(models.Model):
    """Tenants (number, ID card, meters, default tariff, load limit, purchases) and banks
    selling credit (a partner with its settlement journal; its Bank API users are contacts
    of it, so ``user.partner_id.commercial_partner_id`` is the bank)."""

    _inherit = "res.partner"

    is_tenant = fields.Boolean(string="Tenant", index=True, tracking=True)
    tenant_number = fields.Char(copy=False, readonly=True, index=True, tracking=True)
    id_card_number = fields.Char(
        string="ID card number",
        copy=False,
        tracking=True,
        groups="smartpm_prepay.group_cashier",
        help="National ID or passport number: 5 to 20 letters, digits or dashes.",
    )
    meter_ids = fields.One2many("smartpm.meter", "tenant_id", string="Meters")
    meter_count = fields.Integer(compute="_compute_meter_count")
    meter_assignment_ids = fields.One2many(
        "smartpm.meter.assignment", "tenant_id", string="Meter history"
    )

    # selling
    smartpm_tariff_id = fields.Many2one(
        "smartpm.tariff",
        string="Default tariff",
        help="Tariff of the tenant's meters that have none of their own.",
    )
    load_limit_w = fields.Integer(
        string="Load limit (W)",
        help="Maximum power of the tenant's meters (0 = no limit); changing it sets it on "
        "every meter of the tenant.",
    )
    purchase_ids = fields.One2many("smartpm.credit.purchase", "tenant_id", string="Purchases")
    purchase_count = fields.Integer(compute="_compute_purchase_count")
    smartpm_debt_balance = fields.Float(
        string="Debt left",
        compute="_compute_smartpm_debt_balance",
        help="What the tenant's debts being recovered from their purchases still amount to.",
    )

    # how the tenant is told of credit, trips, reconnections and delivered purchases
    # (services/notify.py); the tenant sets them in the portal (/my/notifications)
    smartpm_notify_email = fields.Boolean(
        string="Notify by e-mail",
        default=True,
        help="The tenant gets an e-mail on low credit, zero credit, a trip, a reconnection "
        "and each delivered purchase (the owner edits the messages' templates).",
    )
    smartpm_notify_sms = fields.Boolean(
        string="Notify by SMS",
        default=False,
        help="The tenant gets an SMS (to the mobile, else the phone number) on low credit, "
        "zero credit, a trip, a reconnection and each delivered purchase.",
    )

    # a bank selling credit
    smartpm_is_bank = fields.Boolean(
        string="Sells credit (bank)",
        help="This partner is a bank selling electricity credit over the bank channel.",
    )
    smartpm_bank_journal_id = fields.Many2one(
        "account.journal",
        string="Settlement journal",
        domain=[("type", "=", "bank")],
        help="Bank sales are invoiced to the tenant and paid through this journal; the bank "
        "settles its total with the owner.",
    )
    smartpm_soap_digest_secret = fields.Char(
        string="SOAP shared secret (PasswordDigest)",
        copy=False,
        groups="smartpm_prepay.group_manager",
        help="Only for a bank whose SOAP software insists on a WS-Security PasswordDigest: "
        "its users then send Base64(SHA-1(nonce + created + this secret)) instead of their "
        "API key. Give it to the bank over a safe channel, at least 16 characters (use "
        "Generate). Empty: the bank's users send their API key (PasswordText), as usual.",
    )

    _sql_constraints = [
        ("tenant_number_uniq", "unique(tenant_number)", "This tenant number is already used."),
        ("load_limit_w_positive", "CHECK(load_limit_w >= 0)", "The load limit cannot be negative."),
    ]

    def init(self):
        res = super().init()
        # Uniqueness per company must hold under concurrency, hence an index; partners
        # without a company share one namespace (COALESCE).
        self.env.cr.execute(
            """
            CREATE UNIQUE INDEX IF NOT EXISTS res_partner_id_card_company_uniq
            ON res_partner (COALESCE(company_id, 0), id_card_number)
            WHERE id_card_number IS NOT NULL
            """
        )
        return res

    @api.depends("meter_ids")
    def _compute_meter_count(self):
        for partner in self:
            partner.meter_count = len(partner.meter_ids)

    def _compute_purchase_count(self):
        counts = dict(
            self.env["smartpm.credit.purchase"]
            .sudo()
            ._read_group([("tenant_id", "in", self.ids)], ["tenant_id"], ["__count"])
        )
        for partner in self:
            partner.purchase_count = counts.get(partner, 0)

    def _compute_smartpm_debt_balance(self):
        groups = dict(
            self.env["smartpm.tenant.debt"]
            .sudo()
            ._read_group(
                [("tenant_id", "in", self.ids), ("state", "=", "active")],
                ["tenant_id"],
                ["balance:sum"],
            )
        )
        for partner in self:
            partner.smartpm_debt_balance = groups.get(partner, 0.0)

    def action_view_debts(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("smartpm_prepay.action_tenant_debt")
        action["domain"] = [("tenant_id", "=", self.id)]
        action["context"] = {"default_tenant_id": self.id}
        return action

    @api.model
    def _normalize_id_card(self, value):
        return re.sub(r"\s+", "", value).upper() if value else value

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if "id_card_number" in vals:
                vals["id_card_number"] = self._normalize_id_card(vals["id_card_number"]) or False
                self._check_id_card_free(vals["id_card_number"], vals.get("company_id"))
        partners = super().create(vals_list)
        # Numbers are drawn once the tenants (and the meters of their form) passed their
        # checks: a refused save does not consume one (sequence numbers are not rolled back).
        partners.filtered(lambda p: p.is_tenant and not p.tenant_number)._assign_tenant_number()
        return partners

    def _assign_tenant_number(self):
        for partner in self:
            partner.tenant_number = self.env["ir.sequence"].next_by_code("smartpm.tenant")

    def write(self, vals):
        thresholds_before = {}
        if "smartpm_tariff_id" in vals:
            thresholds_before = {
                m: m._get_thresholds()
                for m in self.sudo().meter_ids.filtered(lambda m: not m.tariff_id)
            }
        if "id_card_number" in vals:
            vals["id_card_number"] = self._normalize_id_card(vals["id_card_number"]) or False
        if vals.get("id_card_number") or (vals.get("company_id") and self.sudo().id_card_number):
            for partner in self:
                partner._check_id_card_free(
                    vals.get("id_card_number", partner.sudo().id_card_number),
                    vals.get("company_id", partner.company_id.id),
                )
        if vals.get("active") is False:
            self._check_no_open_meter()
        res = super().write(vals)
        if vals.get("is_tenant"):
            self.filtered(lambda p: not p.tenant_number)._assign_tenant_number()
        if "load_limit_w" in vals:
            self.meter_ids.write({"load_limit_w": vals["load_limit_w"]})
        if thresholds_before:
            self.env["smartpm.meter"].sudo().concat(
                *[m for m, old in thresholds_before.items() if m._get_thresholds() != old]
            )._push_thresholds()
        return res

    @api.constrains("id_card_number", "company_id")
    def _check_id_card_number(self):
        for partner in self.sudo():
            number = partner.id_card_number
            if not number:
                continue
            if not ID_CARD_RE.match(number):
                raise ValidationError(
                    self.env._(
                        "ID card number %(number)s is not valid: use 5 to 20 letters, digits "
                        "or dashes.",
                        number=number,
                    )
                )
            partner._check_id_card_free(number, partner.company_id.id)

    @api.constrains("smartpm_is_bank", "smartpm_bank_journal_id")
    def _check_bank_journal(self):
        for partner in self.filtered("smartpm_is_bank"):
            journal = partner.sudo().smartpm_bank_journal_id
            if not journal:
                raise ValidationError(
                    self.env._("Bank %s needs a settlement journal.", partner.display_name)
                )
            if journal.type != "bank":
                raise ValidationError(self.env._("The settlement journal must be a bank journal."))

    @api.constrains("smartpm_soap_digest_secret")
    def _check_soap_digest_secret(self):
        for partner in self.sudo().filtered("smartpm_soap_digest_secret"):
            if len(partner.smartpm_soap_digest_secret) < wsse.MIN_SECRET_LENGTH:
                raise ValidationError(
                    self.env._(
                        "The SOAP shared secret of %(bank)s must have at least %(length)s "
                        "characters (a short one is guessed from one captured digest).",
                        bank=partner.display_name,
                        length=wsse.MIN_SECRET_LENGTH,
                    )
                )

    def action_smartpm_generate_digest_secret(self):
        """A new random SOAP shared secret for the bank (the old one stops working)."""
        self.check_access("write")
        for partner in self.filtered("smartpm_is_bank"):
            partner.smartpm_soap_digest_secret = secrets.token_urlsafe(24)
        return True

    def _check_id_card_free(self, number, company_id):
        """Clear error before the unique index (which guards concurrent writes) fires."""
        if not number:
            return
        clash = (
            self.sudo()
            .with_context(active_test=False)
            .search(
                [
                    ("id", "not in", self.ids),
                    ("id_card_number", "=", number),
                    ("company_id", "=", company_id or False),
                ],
                limit=1,
            )
        )
        if clash:
            raise ValidationError(
                self.env._(
                    "ID card number %(number)s is already registered for %(other)s.",
                    number=number,
                    other=clash.display_name,
                )
            )

    def _check_no_open_meter(self):
        holding = self.filtered("meter_ids")
        if holding:
            raise UserError(
                self.env._(
                    "%(tenants)s still hold meters: move or release them before archiving.",
                    tenants=", ".join(holding.mapped("display_name")),
                )
            )

    @api.ondelete(at_uninstall=False)
    def _unlink_except_meter_history(self):
        if self.sudo().meter_assignment_ids:
            raise UserError(
                self.env._("A tenant with a meter history cannot be deleted: archive it instead.")
            )

    def action_view_meters(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Meters"),
            "res_model": "smartpm.meter",
            "view_mode": "list,form",
            "domain": [("tenant_id", "=", self.id)],
            "context": {"default_tenant_id": self.id},
        }

    def action_view_purchases(self):
        self.ensure_one()
        return self.env["smartpm.credit.purchase"]._get_list_action([("tenant_id", "=", self.id)])
