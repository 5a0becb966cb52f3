from odoo.tests import TransactionCase

from ..services import engine


class SmartpmCase(TransactionCase):
    """A small grid and helpers shared by the addon's tests."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.site = cls.env["smartpm.site"].create({"name": "Test Court", "code": "TC"})
        cls.line = cls.env["smartpm.line"].create({"name": "Line A", "site_id": cls.site.id})
        cls.transformer = cls.env["smartpm.transformer"].create(
            {"name": "TR-A", "line_id": cls.line.id}
        )

    @classmethod
    def _clear_job_queue(cls):
        """The queue is shared with the database's other jobs: cancel the open ones, so that
        claims in these tests only see their own jobs (rolled back with the test class)."""
        engine.as_engine(
            cls.env["smartpm.meter.job"].search([("state", "in", ("pending", "claimed"))])
        ).write({"state": "cancelled"})

    @classmethod
    def _tenant(cls, name, **vals):
        return cls.env["res.partner"].create({"name": name, "is_tenant": True, **vals})

    @classmethod
    def _meter(cls, serial, **vals):
        return cls.env["smartpm.meter"].create(
            {
                "serial_number": serial,
                "host": "127.0.0.1",
                "port": 4100,
                "transformer_id": cls.transformer.id,
                **vals,
            }
        )
