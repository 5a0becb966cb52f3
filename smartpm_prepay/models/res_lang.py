from odoo import api, models


class ResLang(models.Model):
    _inherit = "res.lang"

    @api.model
    def _smartpm_install_languages(self, codes):
        """Activate the languages ``codes`` and load the terms of every installed module in
        them, as Settings > Languages > Add does: the demo's owner can switch to French or
        Chinese in their preferences (demo/lang_demo.xml). Loading again is harmless.
        Not the wizard (base.language.install): it loads only modules already installed,
        and the demo data runs while smartpm_prepay itself is still "to install"."""
        for code in codes:
            self._activate_lang(code)
        modules = self.env["ir.module.module"].search(
            [("state", "in", ("installed", "to install", "to upgrade"))]
        )
        modules._update_translations(list(codes))
        return True
