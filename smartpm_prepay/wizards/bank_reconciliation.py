import base64
import csv
import io

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..services import local_time

CSV_HEADER = [
    "date",
    "reference",
    "bank_reference",
    "bank_time",
    "meter",
    "tenant_number",
    "tenant",
    "amount",
    "currency",
    "kwh",
    "state",
]


# A cell a spreadsheet would run as a formula (OWASP "CSV injection"): a tenant named
# "=HYPERLINK(...)" or a bank reference "+1+cmd|..." must come out as text.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """``value`` as a CSV cell that no spreadsheet evaluates: a leading quote before a
    character that starts a formula, as OWASP advises (the cell then reads as text)."""
    text = "" if value is None or value is False else str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


class SmartpmBankReconciliation(models.TransientModel):
    """Daily reconciliation of one bank: its purchases of a day (in the user's time zone)
    and the total it owes, reversed sales listed but not counted; exportable as CSV."""

    _name = "smartpm.bank.reconciliation"
    _description = "Bank daily reconciliation"

    bank_id = fields.Many2one("res.partner", required=True, domain=[("smartpm_is_bank", "=", True)])
    date = fields.Date(required=True, default=fields.Date.context_today)
    company_id = fields.Many2one("res.company", default=lambda self: self.env.company)
    currency_id = fields.Many2one(related="company_id.currency_id")
    purchase_ids = fields.Many2many(
        "smartpm.credit.purchase", compute="_compute_purchases", string="Purchases"
    )
    purchase_count = fields.Integer(compute="_compute_purchases")
    total_amount = fields.Monetary(compute="_compute_purchases", string="Total to settle")
    total_kwh = fields.Float(compute="_compute_purchases", digits=(16, 3))
    reversed_amount = fields.Monetary(compute="_compute_purchases", string="Reversed")
    csv_file = fields.Binary(string="CSV", readonly=True, attachment=False)
    csv_filename = fields.Char(readonly=True)

    def _get_day_bounds(self):
        """[start, end) of the day in naive UTC, the company's local day (the day a bank
        settles is the one the property lives in, whoever downloads the file)."""
        self.ensure_one()
        return local_time.day_bounds_utc(self.env.company, self.date)

    def _get_purchases_domain(self):
        start, end = self._get_day_bounds()
        return [
            ("bank_partner_id", "=", self.bank_id.id),
            ("channel", "in", ("bank_soap", "bank_xmlrpc")),
            ("date", ">=", start),
            ("date", "<", end),
            ("company_id", "=", self.company_id.id),
        ]

    @api.depends("bank_id", "date", "company_id")
    def _compute_purchases(self):
        Purchase = self.env["smartpm.credit.purchase"]
        for report in self:
            purchases = (
                Purchase.search(report._get_purchases_domain(), order="date, id")
                if report.bank_id and report.date
                else Purchase
            )
            counted = purchases.filtered(lambda p: p.state != "reversed")
            report.purchase_ids = purchases
            report.purchase_count = len(purchases)
            report.total_amount = sum(counted.mapped("amount"))
            report.total_kwh = sum(counted.mapped("kwh"))
            report.reversed_amount = sum((purchases - counted).mapped("amount"))

    def _get_csv_rows(self):
        self.ensure_one()
        rows = [CSV_HEADER]
        for p in self.purchase_ids:
            rows.append(
                [
                    fields.Datetime.to_string(p.date),
                    p.name,
                    p.bank_reference or "",
                    fields.Datetime.to_string(p.bank_time) if p.bank_time else "",
                    p.meter_id.serial_number,
                    p.tenant_id.tenant_number or "",
                    p.tenant_id.name,
                    f"{p.amount:.{p.currency_id.decimal_places}f}",
                    p.currency_id.name,
                    f"{p.kwh:.3f}",
                    p.state,
                ]
            )
        decimals = self.currency_id.decimal_places
        rows.append(
            [
                "TOTAL",
                "",
                "",
                "",
                "",
                "",
                "",
                f"{self.total_amount:.{decimals}f}",
                self.currency_id.name,
                f"{self.total_kwh:.3f}",
                "",
            ]
        )
        return rows

    def _render_csv(self):
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(
            [csv_cell(cell) for cell in row] for row in self._get_csv_rows()
        )
        return buffer.getvalue()

    def action_export_csv(self):
        self.ensure_one()
        if not self.bank_id:
            raise UserError(self.env._("Choose a bank."))
        self.write(
            {
                "csv_file": base64.b64encode(self._render_csv().encode()),
                "csv_filename": f"bank-reconciliation-{self.bank_id.id}-{self.date}.csv",
            }
        )
        return {
            "type": "ir.actions.act_url",
            "url": f"/web/content/{self._name}/{self.id}/csv_file/{self.csv_filename}"
            "?download=true",
            "target": "self",
        }
