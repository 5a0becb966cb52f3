from odoo import models
from odoo.osv import expression

CREDIT_PRODUCT_XMLID = "smartpm_prepay.product_electricity_credit"


def credit_product(env):
    """The product electricity credit is sold as (empty if it was deleted)."""
    return env.ref(CREDIT_PRODUCT_XMLID, raise_if_not_found=False) or env["product.product"]


class PosConfig(models.Model):
    _inherit = "pos.config"

    def _get_available_product_domain(self):
        """Credit is sold in every register of its company, whatever the categories the
        register is limited to (and the credit product has no POS category)."""
        domain = super()._get_available_product_domain()
        credit = credit_product(self.env)
        if not credit:
            return domain
        return expression.OR(
            [
                domain,
                [
                    *self.env["product.product"]._check_company_domain(self.company_id),
                    ("id", "=", credit.id),
                    ("active", "=", True),
                    ("available_in_pos", "=", True),
                ],
            ]
        )
