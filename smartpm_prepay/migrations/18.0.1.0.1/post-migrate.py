"""18.0.1.0.1: the friendly-period mail says the limit in money on a money-mode meter
(issue 17 §1). The template is ``noupdate``: it gets the new wording (and its translations)
only where the owner has not edited it (services/shipped_templates.py)."""

from odoo import SUPERUSER_ID, api
from odoo.addons.smartpm_prepay.services.shipped_templates import refresh_shipped_templates


def migrate(cr, version):
    if not version:
        return
    refresh_shipped_templates(api.Environment(cr, SUPERUSER_ID, {}))
