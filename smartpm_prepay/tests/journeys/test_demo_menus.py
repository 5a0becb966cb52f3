"""Every screen a demo user's menu offers opens, in the browser, as that user (Odoo's clickbot)."""

from odoo.tests import tagged

from .common import DemoJourneyCase


@tagged("post_install", "-at_install")
class TestDemoMenus(DemoJourneyCase):
    allow_end_on_form = True

    def _click_everywhere(self, login, app_xmlid):
        user = self.demo_user(login)
        menus = self.env["ir.ui.menu"].with_user(user).load_menus(False)
        apps = {menus[app_id]["xmlid"] for app_id in menus["root"]["children"]}
        self.assertIn(app_xmlid, apps, f"{login} has no {app_xmlid} app in the menu")
        self.browser_js(
            "/odoo",
            "odoo.loader.modules.get('@web/webclient/clickbot/clickbot_loader')"
            f".startClickEverywhere('{app_xmlid}');",
            "odoo.isReady === true",
            login=login,
            timeout=900,
            success_signal="clickbot test succeeded",
        )

    def test_cashier_opens_every_prepaid_screen(self):
        self._click_everywhere("cashier", "smartpm_prepay.menu_root")

    def test_cashier_opens_every_point_of_sale_screen(self):
        self._click_everywhere("cashier", "point_of_sale.menu_point_root")

    def test_owner_opens_every_prepaid_screen(self):
        self._click_everywhere("admin", "smartpm_prepay.menu_root")
