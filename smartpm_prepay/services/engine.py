"""Engine-only writes: the mark that server code puts on records and RPC cannot forge.

A purchase's money, energy, token and state and a job's type, payload and state are
written by the vending and job engines only (issue 14). As OCA ``queue_job`` does with its
edit sentinel, the engine's context holds a Python object that no XML-RPC or JSON-RPC call
can carry (they hand over JSON values only), so neither a context key sent over RPC nor the
Administrator nor Odoo's superuser mode passes the check; only code running in the server
that calls ``as_engine`` does, after its own checks (channel, group, job protocol).
"""

from odoo.exceptions import AccessError

ENGINE_KEY = "smartpm_engine"
_MARK = object()


def as_engine(records):
    """``records`` in sudo, marked as the engine's: the only way to write engine fields."""
    return records.sudo().with_context(**{ENGINE_KEY: _MARK})


def is_engine(env):
    return env.context.get(ENGINE_KEY) is _MARK


def check_fields(records, vals, protected, what):
    """Refuse, naming the record and the fields, values of ``protected`` fields written
    outside the engine."""
    forbidden = sorted(set(protected) & set(vals))
    if forbidden and not is_engine(records.env):
        names = ", ".join(records.mapped("display_name")[:5]) or records._description
        raise AccessError(
            records.env._(
                "%(what)s: %(fields)s are set by the engine only, never by hand or over RPC "
                "(%(records)s).",
                what=what,
                fields=", ".join(forbidden),
                records=names,
            )
        )


def create(model, vals_list):
    """Create records of ``model`` as the engine. They come back in sudo but without the
    engine's mark: what the caller does with them next is checked again."""
    return as_engine(model).create(vals_list).with_env(model.sudo().env)
