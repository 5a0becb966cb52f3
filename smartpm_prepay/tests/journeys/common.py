"""Base class of the journey tests: the demo's users on the demo's data.

``make test`` installs the addon with its demo data into a database of its own and runs the
tests of this folder there (``scripts/run-tests.sh``); they log in as ``cashier``, ``amina``
and the owner (``admin``) with the demo's passwords and rights, not as a user made for the
test. Every test rolls back, so the demo database is the same for each of them.
"""

from odoo.tests import HttpCase

DEMO_LOGINS = ("cashier", "amina", "admin")


class DemoJourneyCase(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not cls.env.ref("smartpm_prepay.demo_user_cashier", raise_if_not_found=False):
            raise AssertionError(
                "the journey tests need the demo data: run them on the database that "
                "`make test` installs with demo data (see scripts/run-tests.sh)"
            )
        cls.cashier = cls.env.ref("smartpm_prepay.demo_user_cashier")
        cls.amina = cls.env.ref("smartpm_prepay.demo_portal_user_tenant_01")
        cls.owner = cls.env.ref("base.user_admin")
        # Odoo's onboarding tours would start in the browser of a first login
        for user in (cls.cashier, cls.owner):
            if "tour_enabled" in user._fields:
                user.tour_enabled = False

    def demo_user(self, login):
        user = self.env["res.users"].search([("login", "=", login)])
        self.assertTrue(user, f"the demo has no user {login!r}")
        return user
