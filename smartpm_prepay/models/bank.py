import contextlib
import inspect
import logging

from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.http import request
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY

from ..services import bank_api, vending
from ..services.bank_api import BankApiError

_logger = logging.getLogger(__name__)


class ResPartner(models.Model):
    """A bank selling credit: a partner with its settlement journal. Its Bank API users are
    contacts (child partners) of it, so ``user.partner_id.commercial_partner_id`` is the bank."""

    _inherit = "res.partner"

    smartpm_is_bank = fields.Boolean(
        string="Sells credit (bank)",
        help="This partner is a bank selling electricity credit over the bank channel.",
    )
    smartpm_bank_journal_id = fields.Many2one(
        "account.journal",
        string="Settlement journal",
        domain=[("type", "=", "bank")],
        help="Bank sales are invoiced to the tenant and paid through this journal; the bank "
        "settles its total with the owner.",
    )

    @api.constrains("smartpm_is_bank", "smartpm_bank_journal_id")
    def _check_bank_journal(self):
        for partner in self.filtered("smartpm_is_bank"):
            journal = partner.sudo().smartpm_bank_journal_id
            if not journal:
                raise ValidationError(
                    _("Bank %s needs a settlement journal.", partner.display_name)
                )
            if journal.type != "bank":
                raise ValidationError(_("The settlement journal must be a bank journal."))


class SmartpmCreditPurchase(models.Model):
    _inherit = "smartpm.credit.purchase"

    bank_reference = fields.Char(
        readonly=True,
        index="btree_not_null",
        copy=False,
        help="The bank's own reference of the sale (unique per bank).",
    )
    bank_time = fields.Datetime(readonly=True, copy=False, help="When the bank took the money.")

    # A bank's reference names one sale whatever the protocol (SOAP or XML-RPC) it came by;
    # concurrent requests with one reference meet here (see bank_api._is_reference_race).
    _sql_constraints = [
        (
            "bank_reference_uniq",
            "unique(bank_partner_id, bank_reference)",
            "This bank already used this reference for another sale.",
        ),
    ]


def _guarded(operation):
    """The bank operation ``operation`` as an RPC method: its arguments bound by name (a
    wrong count or name is INVALID_REQUEST, not a TypeError), and any failure a fault with
    a stable code and no traceback (Odoo's XML-RPC sends the traceback, with server paths,
    of any exception that is not a UserError). Concurrency errors go up for Odoo to retry."""
    signature = inspect.signature(operation)

    def method(self, *args, **kwargs):
        try:
            bound = signature.bind(self.env, *args, **kwargs)
        except TypeError:
            names = ", ".join(list(signature.parameters)[1:])
            raise BankApiError(
                bank_api.INVALID_REQUEST,
                _("%(method)s takes (%(names)s).", method=operation.__name__, names=names),
            ) from None
        try:
            return operation(*bound.args, **bound.kwargs)
        except BankApiError:
            raise
        except vending.VendingError as exc:
            raise bank_api.from_vending_error(exc) from exc
        except AccessError as exc:
            _logger.info("bank RPC access refused: %s", exc)
            raise BankApiError(bank_api.NOT_AUTHORISED, _("Not authorised.")) from exc
        except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY:
            raise
        except UserError as exc:
            raise BankApiError(bank_api.INVALID_REQUEST, exc.args[0]) from exc
        except Exception as exc:
            _logger.exception("bank RPC %s failed", operation.__name__)
            raise BankApiError(bank_api.INTERNAL_ERROR, _("Internal error.")) from exc

    method.__name__ = operation.__name__
    method.__doc__ = operation.__doc__
    return api.model(method)


def _query_customer(env, meter_number):
    return bank_api.query_customer(env, meter_number)


def _purchase(env, meter_number, amount, currency=None, bank_reference=None, bank_time=None):
    return bank_api.purchase(
        env, "bank_xmlrpc", meter_number, amount, currency, bank_reference, bank_time
    )


def _query_purchase(env, bank_reference):
    return bank_api.query_purchase(env, bank_reference)


def _reverse_purchase(env, bank_reference):
    return bank_api.reverse_purchase(env, bank_reference)


for _operation in (_query_customer, _purchase, _query_purchase, _reverse_purchase):
    _operation.__name__ = _operation.__name__.lstrip("_")


class SmartpmBankApi(models.AbstractModel):
    """The bank channel over Odoo's XML-RPC / JSON-RPC: the SOAP operations under the same
    names, arguments and answers. Errors are RPC faults whose message starts with the stable
    code, e.g. ``UNKNOWN_METER: ...``; a failed call changes nothing (RPC rolls back)."""

    _name = "smartpm.bank.api"
    _description = "Bank channel (XML-RPC)"

    query_customer = _guarded(_query_customer)
    purchase = _guarded(_purchase)
    query_purchase = _guarded(_query_purchase)
    reverse_purchase = _guarded(_reverse_purchase)


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
