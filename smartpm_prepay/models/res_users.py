import contextlib

from odoo import models
from odoo.http import request

from ..services import bank_api


class ResUsers(models.Model):
    _inherit = "res.users"

    def _smartpm_bank_login(self, user):
        """The login of ``user`` (an id or a login) if it is a Bank API user, else None."""
        Users = self.sudo().with_context(active_test=False)
        if isinstance(user, int) and not isinstance(user, bool):
            found = Users.browse(user).exists()
        elif isinstance(user, str) and user:
            found = Users.search(Users._get_login_domain(user), limit=1)
        else:
            return None
        if found and found.has_group("smartpm_prepay.group_bank_api"):
            return found.login
        return None

    @contextlib.contextmanager
    def _assert_can_auth(self, user=None):
        # Odoo counts failed logins per address: a bank's bad keys would lock out every
        # user behind that address (another bank, the back office), and a bank's good key
        # would reset the count of someone guessing the admin's password from it. Bank API
        # users are counted on their own, per login and address.
        login = self._smartpm_bank_login(user) if request else None
        if not login:
            with super()._assert_can_auth(user=user):
                yield
            return
        with bank_api.login_throttle(self.env, login, request.httprequest.remote_addr):
            yield
