"""Every screen a demo user's menu offers opens, in the browser, as that user (Odoo's clickbot)."""

from odoo.tests import tagged

from .common import DemoJourneyCase


@tagged("post_install", "-at_install")
class TestDemoMenus(DemoJourneyCase):
    allow_end_on_form = True

    def _apps(self, login):
        user = self.demo_user(login)
        menus = self.env["ir.ui.menu"].with_user(user).load_menus(False)
        return [menus[app_id]["xmlid"] for app_id in menus["root"]["children"]]

    def _click_everywhere(self, login, app_xmlid):
        self.browser_js(
            "/odoo",
            "odoo.loader.modules.get('@web/webclient/clickbot/clickbot_loader')"
            f".startClickEverywhere('{app_xmlid}');",
            "odoo.isReady === true",
            login=login,
            timeout=900,
            success_signal="clickbot test succeeded",
        )

    def test_cashier_opens_every_screen_of_his_menu(self):
        apps = self._apps("cashier")
        for app in ("smartpm_prepay.menu_root", "point_of_sale.menu_point_root"):
            self.assertIn(app, apps, f"the cashier has no {app} app in his menu")
        for app in apps:
            with self.subTest(app=app):
                self._click_everywhere("cashier", app)

    def test_owner_opens_every_prepaid_and_point_of_sale_screen(self):
        apps = self._apps("admin")
        for app in ("smartpm_prepay.menu_root", "point_of_sale.menu_point_root"):
            self.assertIn(app, apps, f"the owner has no {app} app in his menu")
            with self.subTest(app=app):
                self._click_everywhere("admin", app)
