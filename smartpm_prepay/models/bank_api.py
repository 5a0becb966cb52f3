"""The bank channel over Odoo's XML-RPC / JSON-RPC: a thin face over
``services/bank_api.py`` (which the SOAP endpoint shares)."""

import inspect
import logging

from odoo import api, models
from odoo.exceptions import AccessError, UserError
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY

from ..services import bank_api, vending
from ..services.bank_api import BankApiError

_logger = logging.getLogger(__name__)


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
                self.env._("%(method)s takes (%(names)s).", method=operation.__name__, names=names),
            ) from None
        try:
            return operation(*bound.args, **bound.kwargs)
        except BankApiError:
            raise
        except vending.VendingError as exc:
            raise bank_api.from_vending_error(exc) from exc
        except AccessError as exc:
            _logger.info("bank RPC access refused: %s", exc)
            raise BankApiError(bank_api.NOT_AUTHORISED, self.env._("Not authorised.")) from exc
        except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY:
            raise
        except UserError as exc:
            raise BankApiError(bank_api.INVALID_REQUEST, exc.args[0]) from exc
        except Exception as exc:
            _logger.exception("bank RPC %s failed", operation.__name__)
            raise BankApiError(bank_api.INTERNAL_ERROR, self.env._("Internal error.")) from exc

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
