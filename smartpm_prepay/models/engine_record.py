from odoo import api, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import LazyTranslate

from ..services import engine

_lt = LazyTranslate(__name__)


class SmartpmEngineRecord(models.AbstractModel):
    """Records that only the engines create and write (services/engine.py) and that are
    never deleted: purchases, debt recoveries, recognitions, move-outs, settlements and their
    lines. A model inheriting this says why in ``_engine_create_error`` and
    ``_engine_unlink_error`` (lazy translations), may name its records from a sequence
    (``_engine_sequence``) and may narrow the fields only the engine writes
    (``_engine_fields``: by default all of them)."""

    _name = "smartpm.engine.record"
    _description = "Record written by the engine only"

    # Class attributes: no env exists when the class is defined; the lazy term is
    # translated with the env where engine_record raises it (self.env._(...)).
    _engine_create_error = _lt("These records are created by the engine only.")  # pylint: disable=prefer-env-translation
    _engine_unlink_error = _lt("These records are never deleted: they are in the books.")  # pylint: disable=prefer-env-translation
    _engine_sequence = None  # code of the ir.sequence that names new records, if any

    @api.model
    def _check_engine_create(self):
        """Refuse a create outside the engine (before any side effect such as a number)."""
        if not engine.is_engine(self.env):
            raise AccessError(self.env._(self._engine_create_error))

    @api.model
    def _engine_fields(self):
        """The fields only the engine writes: every field of the model."""
        return set(self._fields)

    @api.model_create_multi
    def create(self, vals_list):
        self._check_engine_create()  # before the sequence: a refused create takes no number
        if self._engine_sequence:
            for vals in vals_list:
                if vals.get("name", self.env._("New")) == self.env._("New"):
                    number = self.env["ir.sequence"].next_by_code(self._engine_sequence)
                    vals["name"] = number or self.env._("New")
        return super().create(vals_list)

    def write(self, vals):
        engine.check_fields(self, vals, self._engine_fields(), self._description)
        return super().write(vals)

    @api.ondelete(at_uninstall=False)
    def _unlink_never(self):
        raise UserError(self.env._(self._engine_unlink_error))
