from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

from ..services import bank_api


class ResPartner(models.Model):
    """A bank selling credit: a partner with its settlement journal. Its Bank API users are
    contacts (child partners) of it, so ``user.partner_id.commercial_partner_id`` is the bank."""

    _inherit = "res.partner"

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

    @api.constrains("smartpm_is_bank", "smartpm_bank_journal_id")
    def _check_bank_journal(self):
        for partner in self.filtered("smartpm_is_bank"):
            journal = partner.sudo().smartpm_bank_journal_id
            if not journal:
                raise ValidationError(
                    _("Bank %s needs a settlement journal.", partner.display_name)
                )
            if journal.type != "bank":
                raise ValidationError(_("The settlement journal must be a bank journal."))


class SmartpmCreditPurchase(models.Model):
    _inherit = "smartpm.credit.purchase"

    bank_reference = fields.Char(
        readonly=True,
        index="btree_not_null",
        copy=False,
        help="The bank's own reference of the sale (unique per bank).",
    )
    bank_time = fields.Datetime(readonly=True, copy=False, help="When the bank took the money.")


class SmartpmBankApi(models.AbstractModel):
    """The bank channel over Odoo's XML-RPC / JSON-RPC: the SOAP operations under the same
    names, arguments and answers. Errors are RPC faults whose message starts with the stable
    code, e.g. ``UNKNOWN_METER: ...``; a failed call changes nothing (RPC rolls back)."""

    _name = "smartpm.bank.api"
    _description = "Bank channel (XML-RPC)"

    @api.model
    def query_customer(self, meter_number):
        return bank_api.query_customer(self.env, meter_number)

    @api.model
    def purchase(self, meter_number, amount, currency=None, bank_reference=None, bank_time=None):
        return bank_api.purchase(
            self.env, "bank_xmlrpc", meter_number, amount, currency, bank_reference, bank_time
        )

    @api.model
    def query_purchase(self, bank_reference):
        return bank_api.query_purchase(self.env, bank_reference)

    @api.model
    def reverse_purchase(self, bank_reference):
        return bank_api.reverse_purchase(self.env, bank_reference)
