"""Issue 17 leftover: an upgrade brings a shipped (noupdate) template to the new wording
only where the owner has not edited it (services/shipped_templates.py, run by
migrations/18.0.1.0.1/post-migrate.py)."""

import importlib.util
from pathlib import Path

import polib
from psycopg2.extras import Json

from ..services import shipped_templates
from .common import SmartpmCase
from .test_tou import TouMixin

ADDON = Path(__file__).resolve().parent.parent
XMLID = "smartpm_prepay.mail_template_friendly_deferred"
OLD = shipped_templates.PREVIOUS_SHIPPED[XMLID]["body_html"]
LOGGER = "odoo.addons.smartpm_prepay.services.shipped_templates"


def _migration():
    path = ADDON / "migrations" / "18.0.1.0.1" / "post-migrate.py"
    spec = importlib.util.spec_from_file_location("smartpm_prepay_post_migrate_18_0_1_0_1", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TestShippedTemplates(TouMixin, SmartpmCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["res.lang"]._activate_lang("fr_FR")
        cls.env["ir.module.module"]._load_module_terms(["smartpm_prepay"], ["fr_FR"])
        cls.template = cls.env.ref(XMLID)
        cls.new_fr = next(
            entry.msgstr
            for entry in polib.pofile(str(ADDON / "i18n" / "fr.po"))
            if f"mail.template,body_html:{XMLID}" in entry.occurrences[0][0]
        )
        cls.company = cls.env.company
        cls.company.smartpm_friendly_limit_money = 12.5
        cls.company.smartpm_friendly_limit_kwh = 3.0
        tariff = cls._tou_tariff(name="Shipped")
        cls.tenant = cls._tenant("Tenant Shipped")
        cls.alarm = cls.env["smartpm.alarm"].create(
            {
                "meter_id": cls._meter(
                    "SHIP-MONEY-1",
                    tenant_id=cls.tenant.id,
                    tariff_id=tariff.id,
                    credit_mode="money",
                ).id,
                "alarm_type": "friendly_deferred",
                "meter_time": "2026-12-25 08:00:00",
            }
        )
        cls.migration = _migration()

    def _store(self, **translations):
        """The template as an older install (or its owner) left it in the database."""
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE mail_template SET body_html = %s::jsonb WHERE id = %s",
            [Json(translations), self.template.id],
        )
        self.env.invalidate_all()

    def _stored(self):
        self.env.invalidate_all()
        return self.template._fields["body_html"]._get_stored_translations(self.template)

    def _mail_body(self, lang=None):
        template = self.template.with_context(lang=lang) if lang else self.template
        return template._render_field("body_html", self.alarm.ids)[self.alarm.id]

    def test_unedited_old_template_gets_the_money_wording_and_stays_noupdate(self):
        self._store(en_US=OLD["en_US"][0])
        self.assertIn("3.0", self._mail_body())  # the old mail: the kWh limit on a money meter
        self.migration.migrate(self.env.cr, "18.0.1.0.0")
        body = self._mail_body()
        self.assertIn(self.company.currency_id.symbol, body)
        self.assertIn(">12.50<", body)  # the monetary widget's amount
        self.assertNotIn("kWh", body)
        imd = self.env["ir.model.data"].search(
            [("module", "=", "smartpm_prepay"), ("name", "=", XMLID.split(".")[1])]
        )
        self.assertTrue(imd.noupdate)

    def test_edited_template_is_kept_and_the_log_names_it(self):
        edited = OLD["en_US"][0].replace("Dear", "Hello dear")
        self._store(en_US=edited, fr_FR=OLD["fr"][0])
        with self.assertLogs(LOGGER, "WARNING") as logs:
            self.migration.migrate(self.env.cr, "18.0.1.0.0")
        self.assertEqual(self._stored(), {"en_US": edited, "fr_FR": OLD["fr"][0]})
        self.assertIn(XMLID, "\n".join(logs.output))
        self.assertIn("Hello dear", self._mail_body())

    def test_unedited_french_translation_gets_the_new_french(self):
        self._store(en_US=OLD["en_US"][0], fr_FR=OLD["fr"][0])
        self.migration.migrate(self.env.cr, "18.0.1.0.0")
        self.assertEqual(self._stored()["fr_FR"], self.new_fr)
        body = self._mail_body("fr_FR")
        self.assertIn("Bonjour", body)
        self.assertNotIn("kWh", body)

    def test_edited_french_translation_is_kept_while_english_is_refreshed(self):
        french = OLD["fr"][0].replace("Bonjour", "Chère locataire, chers locataires")
        self._store(en_US=OLD["en_US"][0], fr_FR=french)
        with self.assertLogs(LOGGER, "WARNING") as logs:
            self.migration.migrate(self.env.cr, "18.0.1.0.0")
        stored = self._stored()
        self.assertEqual(stored["fr_FR"], french)
        self.assertIn("smartpm_friendly_limit_money", stored["en_US"])
        self.assertIn("fr_FR", "\n".join(logs.output))

    def test_template_already_new_is_left_alone_without_a_warning(self):
        before = self._stored()
        with self.assertNoLogs(LOGGER, "WARNING"):
            self.migration.migrate(self.env.cr, "18.0.1.0.0")
        self.assertEqual(self._stored(), before)
        self.assertEqual(
            shipped_templates.refresh_shipped_templates(self.env),
            {"refreshed": [], "kept": []},
        )

    def test_other_templates_and_fields_are_not_touched(self):
        subject = self.template.subject
        low = self.env.ref("smartpm_prepay.mail_template_low_credit")
        low.body_html = "<p>The owner's own low-credit mail</p>"
        self.template.subject = "Owner's subject"
        self._store(en_US=OLD["en_US"][0])
        self.migration.migrate(self.env.cr, "18.0.1.0.0")
        self.assertEqual(self.template.subject, "Owner's subject")
        self.assertNotEqual(subject, "Owner's subject")
        self.assertEqual(low.body_html, "<p>The owner's own low-credit mail</p>")
        self.assertIn("smartpm_friendly_limit_money", self._stored()["en_US"])

    def test_fresh_install_runs_nothing(self):
        self._store(en_US=OLD["en_US"][0])
        self.migration.migrate(self.env.cr, None)
        self.assertEqual(self._stored(), {"en_US": OLD["en_US"][0]})
