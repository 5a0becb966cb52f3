from odoo import fields, models, tools


class SmartpmCreditBalanceReport(models.Model):
    """Remaining credit per tenant against the prepayment liability's balance.

    Remaining credit: the tenant's purchases not reversed, less what the recognition job
    recognised of them and what a move-out settled (kWh and untaxed value). Liability: the
    posted balance of the company's customer prepayments account for that partner. POS sales
    are booked at the session's closing without a partner: they show on the row without
    tenant until the recognition releases them per tenant, and the total agrees."""

    _name = "smartpm.credit.balance.report"
    _description = "Prepaid credit against the prepayment liability"
    _auto = False
    _order = "company_id, tenant_id"
    _rec_name = "tenant_id"
    # A search or read of the view flushes what it is made of first (Odoo 18 adds these
    # fields to the query's flush list), so a figure read in the same transaction as a sale
    # or an entry is never stale.
    _depends = {
        "smartpm.credit.purchase": ["company_id", "tenant_id", "kwh", "amount_untaxed", "state"],
        "smartpm.credit.recognition": ["purchase_id", "kwh", "amount"],
        "account.move.line": ["company_id", "partner_id", "balance", "parent_state", "account_id"],
        "res.company": ["smartpm_prepayment_account_id"],
    }

    company_id = fields.Many2one("res.company", readonly=True)
    tenant_id = fields.Many2one("res.partner", readonly=True)
    currency_id = fields.Many2one(related="company_id.currency_id")
    remaining_kwh = fields.Float(
        string="Remaining credit (kWh)", digits=(16, 3), readonly=True, aggregator="sum"
    )
    remaining_value = fields.Monetary(
        string="Remaining credit (value)", readonly=True, aggregator="sum"
    )
    liability_balance = fields.Monetary(
        string="Prepayment liability", readonly=True, aggregator="sum"
    )
    difference = fields.Monetary(readonly=True, aggregator="sum")

    def init(self):
        tools.drop_view_if_exists(self.env.cr, self._table)
        self.env.cr.execute(
            f"""
            CREATE VIEW {self._table} AS (
            WITH recognised AS (
                SELECT purchase_id, SUM(kwh) AS kwh, SUM(amount) AS amount
                  FROM (SELECT purchase_id, kwh, amount FROM smartpm_credit_recognition
                         WHERE purchase_id IS NOT NULL
                        UNION ALL  -- settled at a move-out (services/settlement)
                        SELECT purchase_id, kwh, amount FROM smartpm_credit_settlement_line
                       ) used
                 GROUP BY purchase_id
            ), credit AS (
                SELECT p.company_id, p.tenant_id,
                       SUM(p.kwh - COALESCE(r.kwh, 0)) AS remaining_kwh,
                       SUM(COALESCE(p.amount_untaxed, 0) - COALESCE(r.amount, 0))
                           AS remaining_value
                  FROM smartpm_credit_purchase p
                  LEFT JOIN recognised r ON r.purchase_id = p.id
                 WHERE p.state != 'reversed'
                 GROUP BY p.company_id, p.tenant_id
            ), ledger AS (
                SELECT l.company_id, l.partner_id AS tenant_id, -SUM(l.balance) AS liability
                  FROM account_move_line l
                  JOIN res_company c
                    ON c.id = l.company_id AND c.smartpm_prepayment_account_id = l.account_id
                 WHERE l.parent_state = 'posted'
                 GROUP BY l.company_id, l.partner_id
            )
            SELECT row_number() OVER (ORDER BY COALESCE(c.company_id, g.company_id),
                                               COALESCE(c.tenant_id, g.tenant_id)) AS id,
                   COALESCE(c.company_id, g.company_id) AS company_id,
                   COALESCE(c.tenant_id, g.tenant_id) AS tenant_id,
                   COALESCE(c.remaining_kwh, 0) AS remaining_kwh,
                   COALESCE(c.remaining_value, 0) AS remaining_value,
                   COALESCE(g.liability, 0) AS liability_balance,
                   COALESCE(g.liability, 0) - COALESCE(c.remaining_value, 0) AS difference
              FROM credit c
              FULL OUTER JOIN ledger g
                ON g.company_id = c.company_id
               AND COALESCE(g.tenant_id, 0) = COALESCE(c.tenant_id, 0)
            )
            """
        )
