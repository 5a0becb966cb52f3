"""The engine-only guard that purchases, debt recoveries, recognitions, move-outs and
settlements share (models/engine_record.py): no create, no write of the engine's fields
outside the engine, whoever asks, and nothing changes."""

from odoo import models
from odoo.exceptions import AccessError

from ..services import engine
from .common import SmartpmCase

ENGINE_ONLY = {
    "smartpm.credit.purchase",
    "smartpm.debt.recovery",
    "smartpm.credit.recognition",
    "smartpm.move.out",
    "smartpm.credit.settlement",
    "smartpm.credit.settlement.line",
    "smartpm.standing.charge",
}


class TestEngineRecord(SmartpmCase):
    def _guarded(self):
        return sorted(self.env["smartpm.engine.record"]._inherit_children)

    def test_the_engine_only_models_are_the_guards(self):
        self.assertEqual(set(self._guarded()), ENGINE_ONLY)

    def test_create_outside_the_engine_is_refused_even_for_the_superuser(self):
        for name in self._guarded():
            Model = self.env[name].sudo()
            before = Model.search_count([])
            with self.subTest(model=name), self.assertRaises(AccessError):
                Model.create({})
            self.assertEqual(Model.search_count([]), before)

    def test_an_engine_field_written_outside_the_engine_is_refused(self):
        for name in self._guarded():
            Model = self.env[name].sudo()
            field = sorted(
                f
                for f in Model._engine_fields()
                if Model._fields[f].store and f not in models.MAGIC_COLUMNS
            )[0]
            with self.subTest(model=name), self.assertRaisesRegex(AccessError, field):
                Model.browse().write({field: False})

    def test_a_refused_purchase_takes_no_number(self):
        sequence = self.env["ir.sequence"].search([("code", "=", "smartpm.credit.purchase")])
        before = sequence.number_next_actual
        with self.assertRaises(AccessError):
            self.env["smartpm.credit.purchase"].sudo().create({"name": "New"})
        self.assertEqual(sequence.number_next_actual, before)

    def test_the_engine_passes_the_guard(self):
        Recognition = engine.as_engine(self.env["smartpm.credit.recognition"])
        Recognition._check_engine_create()  # no refusal
        self.assertEqual(Recognition._engine_fields(), set(Recognition._fields))
