"""Issue 20 §1: the addon's languages. The committed .pot is Odoo's export of today's code
(``make pot``); every translation in i18n/ is complete, keeps each placeholder and tag of
its msgid, passes ``msgfmt -c`` and loads into Odoo without a warning; a tenant reading the
portal in French, and an owner printing a statement in French, read French; the POS's
``_t`` strings reach the browser through /web/webclient/translations."""

import html
import io
import logging
import re
import shutil
import subprocess
import unittest
from pathlib import Path

import polib

from odoo import Command, fields
from odoo.tests import HttpCase, TransactionCase, new_test_user, tagged
from odoo.tools.translate import TranslationImporter, trans_export

MODULE = "smartpm_prepay"
I18N = Path(__file__).resolve().parent.parent / "i18n"
POT = I18N / f"{MODULE}.pot"

# printf placeholders (%s, %(name)s, %(kwh).1f, %%; not "% of", a bare percent sign),
# Jinja-like {{ ... }} and ${...} of mail and SMS templates
_PRINTF = re.compile(r"%(?:\([^)]+\))?[-#0+]*\d*(?:\.\d+)?[sdifrxXeEgGc%]")
_EXPR = re.compile(r"\{\{.*?\}\}|\$\{.*?\}", re.S)
# a quoted text inside an expression is words (' at '), not code: translated freely
_LITERAL = re.compile(r"'[^']*'|\"[^\"]*\"")
_TAG = re.compile(r"<(/?)([a-zA-Z][\w.-]*)((?:\s+[\w:.-]+(?:=\"[^\"]*\"|='[^']*')?)*)\s*(/?)>")
_ATTR = re.compile(r"([\w:.-]+)(?:=(\"[^\"]*\"|'[^']*'))?")
# attributes Odoo translates inside a term: their text may change, not their presence
_TRANSLATED_ATTRS = {"title", "alt", "placeholder", "aria-label", "string", "help", "label"}


# texts of the statement (summary rows) the tests read in each language
STATEMENT_WORDS = (
    "Opening credit",
    "Purchases",
    "Reversals and refunds",
    "Consumption",
    "Closing credit",
)


def po_files():
    return sorted(I18N.glob("*.po"))


def placeholders(text):
    """What a translation must keep of its msgid: printf placeholders, template expressions
    and tags with their untranslated attributes (t-out, class, href...), as a sorted list."""
    found = _PRINTF.findall(text) + [
        " ".join(_LITERAL.sub("''", e).split()) for e in _EXPR.findall(text)
    ]
    for closing, name, attrs, empty in _TAG.findall(text):
        kept = sorted(
            f"{key}={value}" if key not in _TRANSLATED_ATTRS else key
            for key, value in _ATTR.findall(attrs)
        )
        found.append(f"<{closing}{name} {' '.join(kept)}{empty}>")
    return sorted(found)


def entries(po):
    """An export's entries as the test compares them: msgctxt and msgid, with the
    references (model:, model_terms:, code:) and the extraction comments (odoo-python,
    odoo-javascript), without the header and its dates."""
    return {
        (e.msgctxt, e.msgid): (
            sorted(f"{path}:{line}" if line else path for path, line in e.occurrences),
            sorted(line for line in e.comment.splitlines() if line),
        )
        for e in po
        if not e.obsolete
    }


def lang_of(env, po_path):
    """The Odoo language a file of i18n/ is for: fr.po -> fr_FR, zh_CN.po -> zh_CN."""
    code = po_path.stem
    Lang = env["res.lang"].with_context(active_test=False)
    lang = Lang.search([("code", "=", code)]) or Lang.search(
        [("iso_code", "=", code)], order="id", limit=1
    )
    return lang


@tagged("post_install", "-at_install")
class TestI18nFiles(TransactionCase):
    def test_pot_is_odoos_export_of_todays_code(self):
        buffer = io.BytesIO()
        # a source file Babel cannot parse is only logged, and its terms left out of both
        with self.assertNoLogs("odoo.tools.translate", level="ERROR"):
            trans_export(None, [MODULE], buffer, "po", self.env.cr)
        fresh = entries(polib.pofile(buffer.getvalue().decode()))
        committed = entries(polib.pofile(str(POT)))
        added = sorted(msgid for key, msgid in set(fresh) - set(committed))
        gone = sorted(msgid for key, msgid in set(committed) - set(fresh))
        moved = sorted(k[1] for k in set(fresh) & set(committed) if fresh[k] != committed[k])
        self.assertFalse(
            added or gone or moved,
            f"{POT.name} is not Odoo's export of the code: run `make pot`, then merge the new "
            f"terms into each .po and translate them. New: {added[:10]}; gone: {gone[:10]}; "
            f"references changed: {moved[:10]}",
        )
        self.assertGreater(len(fresh), 1000)

    def test_there_are_translations(self):
        self.assertIn("fr", [p.stem for p in po_files()])

    def test_every_po_translates_every_msgid_of_the_pot(self):
        wanted = {(e.msgctxt, e.msgid) for e in polib.pofile(str(POT))}
        for path in po_files():
            po = polib.pofile(str(path))
            done = {(e.msgctxt, e.msgid) for e in po.translated_entries() if not e.fuzzy}
            missing = sorted(msgid for _ctx, msgid in wanted - done)
            self.assertFalse(missing, f"{path.name}: {len(missing)} untranslated: {missing[:10]}")

    def test_every_po_keeps_the_placeholders_and_tags_of_its_msgid(self):
        for path in po_files():
            for e in polib.pofile(str(path)).translated_entries():
                self.assertEqual(
                    placeholders(e.msgstr),
                    placeholders(e.msgid),
                    f"{path.name}: the translation of {e.msgid!r} changes its placeholders "
                    f"or tags: {e.msgstr!r}",
                )

    def test_the_placeholder_check_sees_a_lost_placeholder(self):
        self.assertNotEqual(placeholders("%(ref)s was sold"), placeholders("%(réf)s vendu"))
        self.assertNotEqual(placeholders("<b t-out='x'/>"), placeholders("<b/>"))
        self.assertNotEqual(placeholders("{{ object.name }}"), placeholders("{{ objet.nom }}"))
        self.assertEqual(
            placeholders("{{ x and (' at ' + x) }}"), placeholders("{{ x and (' à ' + x) }}")
        )
        self.assertEqual(placeholders("% of each"), placeholders("% de chaque"))
        self.assertEqual(
            placeholders('<i class="fa" title="Warning"/>'),
            placeholders('<i class="fa" title="Avertissement"/>'),
        )

    def test_every_po_passes_msgfmt_check(self):
        msgfmt = shutil.which("msgfmt")
        for path in po_files():
            if msgfmt:
                run = subprocess.run(
                    [msgfmt, "-c", "-o", "/dev/null", str(path)], capture_output=True, text=True
                )
                self.assertEqual(run.returncode, 0, f"msgfmt -c {path.name}: {run.stderr}")
                continue
            # gettext is not installed: Babel's checks (placeholders, plural forms)
            from babel.messages.pofile import read_po

            with path.open("rb") as fileobj:
                catalog = read_po(fileobj)
            problems = [(m.id, errs) for m, errs in catalog.check()]
            self.assertFalse(problems, f"{path.name}: {problems[:5]}")

    def test_every_po_loads_into_odoo_without_a_warning(self):
        for path in po_files():
            lang = lang_of(self.env, path)
            self.assertTrue(lang, f"{path.name}: no Odoo language has the code {path.stem}")
            lang._activate_lang(lang.code)
            with self.assertNoLogs("odoo", level=logging.WARNING):
                importer = TranslationImporter(self.env.cr, verbose=False)
                importer.load_file(str(path), lang.code)
                importer.save(overwrite=True)
            po = {e.msgid: e.msgstr for e in polib.pofile(str(path))}
            menu = self.env.ref(f"{MODULE}.menu_root").with_context(lang=lang.code)
            self.assertEqual(menu.name, po[self.env.ref(f"{MODULE}.menu_root").name])


class FrenchSetup:
    """fr_FR active with the addon's French terms (loaded once for the class)."""

    LANG = "fr_FR"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["res.lang"]._activate_lang(cls.LANG)
        cls.env["ir.module.module"]._load_module_terms([MODULE], [cls.LANG], overwrite=True)
        cls.fr = {e.msgid: e.msgstr for e in polib.pofile(str(I18N / "fr.po"))}
        cls.company = cls.env.company
        cls.tariff = cls.env["smartpm.tariff"].create({"name": "i18n", "price_per_kwh": 0.25})
        cls.tenant = cls.env["res.partner"].create(
            {"name": "Awa Locataire", "is_tenant": True, "lang": cls.LANG}
        )
        cls.meter = cls.env["smartpm.meter"].create(
            {
                "serial_number": "I18N-FR-001",
                "host": "127.0.0.1",
                "port": 4100,
                "state": "active",
                "tenant_id": cls.tenant.id,
                "tariff_id": cls.tariff.id,
            }
        )


@tagged("post_install", "-at_install")
class TestFrenchStatementPdf(FrenchSetup, TransactionCase):
    @unittest.skipUnless(shutil.which("pdftotext"), "pdftotext (poppler-utils) is not installed")
    def test_statement_pdf_printed_by_a_french_owner_is_in_french(self):
        owner = new_test_user(
            self.env,
            "owner_fr",
            groups="base.group_user,smartpm_prepay.group_manager",
            password="owner_fr-pw-123",
            lang=self.LANG,
        )
        # the PDF (wkhtmltopdf) in the owner's language, as the web client asks for it; in
        # process and outside an HttpCase: over HTTP wkhtmltopdf's asset requests would wait
        # for the test's cursor, and under a test server that served a session its pages
        # come out blank
        pdf, kind = (
            self.env["ir.actions.report"]
            .with_user(owner)
            .with_company(self.company)
            .with_context(lang=owner.lang, force_report_rendering=True)
            ._render_qweb_pdf(f"{MODULE}.report_tenant_statement", self.tenant.ids)
        )
        self.assertEqual(kind, "pdf")
        text = subprocess.run(
            ["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True
        ).stdout.decode()
        self.assertIn("Awa Locataire", text)
        self.assertIn("Relevé d'électricité", text)
        self.assertIn("Crédit d'ouverture", text)
        self.assertIn("Crédit de clôture", text)
        self.assertNotIn("Opening credit", text)


@tagged("post_install", "-at_install")
class TestFrenchPages(FrenchSetup, HttpCase):
    def test_portal_statement_page_renders_in_french(self):
        new_test_user(
            self.env,
            "awa_fr",
            groups="base.group_portal",
            partner_id=self.tenant.id,
            name=self.tenant.name,
            password="awa_fr-pw-123",
            lang=self.LANG,
        )
        self.authenticate("awa_fr", "awa_fr-pw-123")
        today = fields.Date.to_string(fields.Date.context_today(self.tenant))
        response = self.url_open(f"/my/statement?date_from={today}&date_to={today}")
        self.assertEqual(response.status_code, 200)
        page = html.unescape(response.text)
        self.assertIn("I18N-FR-001", page)
        for english in STATEMENT_WORDS:
            self.assertNotIn(f">{english}<", page)
            self.assertIn(f">{self.fr[english]}<", page)

    def test_report_page_of_a_french_owner_is_in_french(self):
        new_test_user(
            self.env,
            "owner_fr",
            groups="base.group_user,smartpm_prepay.group_manager",
            password="owner_fr-pw-123",
            lang=self.LANG,
        )
        self.authenticate("owner_fr", "owner_fr-pw-123")
        page = self.url_open(f"/report/html/{MODULE}.report_tenant_statement/{self.tenant.id}")
        self.assertEqual(page.status_code, 200)
        text = html.unescape(page.text)
        for english in STATEMENT_WORDS:
            self.assertNotIn(f">{english}<", text)
            self.assertIn(f">{self.fr[english]}<", text)

    def test_pos_js_strings_reach_the_browser_in_french(self):
        # a `_t` of static/src/pos (delivery_status.xml), as the POS loads it
        msgid = "Credit will be sent to the meter when the order reaches the server."
        pot = {e.msgid: e for e in polib.pofile(str(POT))}
        self.assertIn("odoo-javascript", pot[msgid].comment)
        response = self.url_open(
            f"/web/webclient/translations/i18n-test?lang={self.LANG}&mods={MODULE}"
        )
        self.assertEqual(response.status_code, 200)
        body = response.json()
        self.assertEqual(body["lang"], self.LANG)
        messages = {m["id"]: m["string"] for m in body["modules"][MODULE]["messages"]}
        self.assertEqual(
            messages[msgid],
            "Le crédit sera envoyé au compteur lorsque la commande atteindra le serveur.",
        )


@tagged("post_install", "-at_install")
class TestFrenchNumbers(FrenchSetup, TransactionCase):
    """Money and kWh written the reader's way (services/sale_info.format_money and
    format_kwh, the statement's number templates): a French reader sees decimal commas in
    kWh as in money, on the receipt, the statement and the friendly-period notice."""

    def test_receipt_statement_and_friendly_limit_write_numbers_in_french(self):
        from ..services import friendly, statement
        from ..services.vending import vend

        self.company.smartpm_min_amount = 1.0
        purchase = vend(self.env, self.meter, 10.5, "backoffice", "I18N-NUM-1")  # 42 kWh
        fr_env = self.env(context=dict(self.env.context, lang=self.LANG))
        rows = {r["key"]: r["value"] for r in purchase.with_env(fr_env).receipt_lines}
        self.assertEqual(rows["kwh"], "42,00 kWh")
        self.assertIn("10,50", rows["amount"])
        en_rows = {r["key"]: r["value"] for r in purchase.receipt_lines}
        self.assertEqual(en_rows["kwh"], "42.00 kWh")
        self.assertIn("10.50", en_rows["amount"])
        # the statement: kWh with the comma the money has
        today = fields.Date.context_today(self.env.user)
        page = (
            self.env["ir.actions.report"]
            .with_context(lang=self.LANG)
            ._render_qweb_html(
                f"{MODULE}.report_tenant_statement",
                self.tenant.ids,
                data={"date_from": str(today), "date_to": str(today)},
            )[0]
            .decode()
        )
        self.assertTrue(statement.tenant_statement(self.env, self.tenant, today, today))
        self.assertIn("42,000", page)
        self.assertNotIn("42.000", page)
        self.assertIn("10,50", page)
        # the friendly limit the tenant is told
        self.company.smartpm_friendly_limit_kwh = 5.0
        self.assertEqual(friendly.format_limit(self.meter.with_env(fr_env)), "-5,0 kWh")
        self.assertEqual(friendly.format_limit(self.meter), "-5.0 kWh")

    def test_tariff_tiers_are_written_in_french(self):
        tariff = self.env["smartpm.tariff"].create(
            {
                "name": "i18n tiers",
                "price_per_kwh": 0.25,
                "tier_ids": [
                    Command.create({"from_kwh": 12.5, "price_per_kwh": 0.30}),
                    Command.create({"from_kwh": 100.0, "price_per_kwh": 0.40}),
                ],
            }
        )
        french = tariff.with_context(lang=self.LANG)._price_description()
        self.assertIn("Premiers 12,5 kWh du mois", french)
        self.assertIn("de 12,5 à 100 kWh", french)  # no trailing zeros: 100, not 100,00
        english = tariff._price_description()
        self.assertIn("First 12.5 kWh of the month", english)
        self.assertIn("from 12.5 to 100 kWh", english)
