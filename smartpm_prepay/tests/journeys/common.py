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


# what a bridge's answer function returns for a job the meter is too busy to run now
RETRY_LATER = object()


class DemoBridgeMixin:
    """The test plays the meter bridge, with the demo's bridge login (as
    ``scripts/bridge_user.py`` makes it), reporting what meters answer."""

    BRIDGE = "journey-bridge"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Users = cls.env["res.users"].with_context(active_test=False)
        cls.bridge_user = Users.search([("login", "=", "bridge")], limit=1) or Users.create(
            {
                "name": "Meter bridge (bridge)",
                "login": "bridge",
                "groups_id": [
                    (4, cls.env.ref("base.group_user").id),
                    (4, cls.env.ref("smartpm_prepay.group_bridge_api").id),
                ],
            }
        )
        cls.bridge_user.active = True

    # ------------------------------------------------------------------ the bridge
    def _bridge_runs(self, answer, rounds=10):
        """Claim due jobs as the bridge and report those ``answer`` knows: it returns a
        result dict, an error text (the meter did not answer), RETRY_LATER or None (left
        alone)."""
        Job = self.env["smartpm.meter.job"].with_user(self.bridge_user)
        for _round in range(rounds):
            claimed = Job.claim(self.BRIDGE, 500, 300)
            reported = 0
            for vals in claimed:
                job = self.env["smartpm.meter.job"].browse(vals["id"])
                outcome = answer(job)
                if outcome is None:
                    continue
                if outcome is RETRY_LATER:
                    Job.fail(job.id, self.BRIDGE, "busy, retry later", True)
                elif isinstance(outcome, str):
                    Job.fail(job.id, self.BRIDGE, outcome, False)
                else:
                    Job.complete(job.id, self.BRIDGE, outcome)
                reported += 1
            self.env.invalidate_all()
            if not reported:
                return
