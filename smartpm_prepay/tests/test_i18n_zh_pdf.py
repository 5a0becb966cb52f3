"""Issue 20 §1: an owner working in Simplified Chinese prints a tenant's statement and a
purchase receipt. The PDFs (QWeb through wkhtmltopdf) carry the Chinese labels of
i18n/zh_CN.po as text (pdftotext reads them back, so they are real glyphs, not boxes
or outlines) and embed a CJK font (scripts/setup.sh installs fonts-wqy-microhei)."""

import re
import shutil
import subprocess
import unittest

from odoo import fields
from odoo.tests import new_test_user, tagged

from ..services import local_time, statement
from .test_prepayment_accounting import PrepaymentCase

TOOLS = all(shutil.which(tool) for tool in ("wkhtmltopdf", "pdftotext", "pdffonts"))


def _cjk_font_installed():
    if not shutil.which("fc-list"):
        return False
    out = subprocess.run(["fc-list", ":lang=zh-cn"], capture_output=True, text=True).stdout
    return bool(out.strip())


@unittest.skipUnless(TOOLS, "wkhtmltopdf and poppler-utils (pdftotext, pdffonts) are needed")
@tagged("post_install", "-at_install")
class TestChinesePdf(PrepaymentCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["res.lang"]._activate_lang("zh_CN")
        cls.env["ir.module.module"]._load_module_terms(
            ["smartpm_prepay"], ["zh_CN"], overwrite=True
        )
        cls.owner = new_test_user(
            cls.env,
            login="zh_owner",
            groups="base.group_user,smartpm_prepay.group_manager",
            company_id=cls.company.id,
            company_ids=[(6, 0, cls.company.ids)],
            lang="zh_CN",
        )
        cls.env.company.external_report_layout_id = cls.env.ref("web.external_layout_standard")

    def setUp(self):
        super().setUp()
        if not _cjk_font_installed():
            self.skipTest("no CJK font installed (scripts/setup.sh installs fonts-wqy-microhei)")

    def _owner_reports(self):
        """The report model as the owner's web client calls it: their user, their language."""
        owner = self.owner.with_user(self.owner)
        owner_env = self.env(user=self.owner, context=dict(owner.context_get()))
        self.assertEqual(owner_env.lang, "zh_CN")
        return owner_env["ir.actions.report"].with_context(force_report_rendering=True)

    def _text_and_fonts(self, pdf):
        self.assertTrue(pdf.startswith(b"%PDF"))
        text = subprocess.run(
            ["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True
        ).stdout.decode()
        fonts = subprocess.run(
            ["pdffonts", "-"], input=pdf, capture_output=True, check=True
        ).stdout.decode()
        return re.sub(r"[ \t]+", " ", text), fonts

    def _assert_cjk_font_embedded(self, fonts):
        """pdffonts prints: name, type, encoding, emb, sub, uni, object, generation; a
        WenQuanYi (or Noto CJK) font must be there with ``emb`` yes."""
        cjk = [
            line.split()
            for line in fonts.splitlines()[2:]
            if re.match(r"(?i)\S*(wenquanyi|wqy|cjk)", line)
        ]
        self.assertTrue(cjk, f"no CJK font in the PDF:\n{fonts}")
        self.assertTrue(any(row[-5] == "yes" for row in cjk), f"CJK font not embedded:\n{fonts}")

    def test_owner_prints_a_tenant_statement_in_chinese(self):
        self._sell(self.meter, 10.0, "ZH-1", delivered_on=None)._on_delivered({})
        today = local_time.local_today(self.company)
        pdf, kind = self._owner_reports()._render_qweb_pdf(
            "smartpm_prepay.report_tenant_statement",
            self.tenant.ids,
            data={
                "date_from": fields.Date.to_string(today.replace(day=1)),
                "date_to": fields.Date.to_string(today),
            },
        )
        self.assertEqual(kind, "pdf")
        text, fonts = self._text_and_fonts(pdf)
        for label in ("租户：", "期间：", "期初余额", "期末余额", "电表 PRE-1"):
            self.assertIn(label, text, f"{label!r} not on the statement:\n{text}")
        self.assertIn("Esi Prepay", text)
        self.assertIn("ZH-1", text)
        self.assertNotIn("Opening credit", text)
        self.assertNotIn("Closing credit", text)
        self._assert_cjk_font_embedded(fonts)

    def test_owner_prints_a_purchase_receipt_in_chinese(self):
        purchase = self._sell(self.meter, 10.0, "ZH-2", delivered_on=None)
        purchase._on_delivered({})
        pdf, kind = self._owner_reports()._render_qweb_pdf(
            "smartpm_prepay.action_report_purchase_receipt", purchase.ids
        )
        self.assertEqual(kind, "pdf")
        text, fonts = self._text_and_fonts(pdf)
        for label in ("电费余额收据", "已付金额", "已购电量", "充值序号"):
            self.assertIn(label, text, f"{label!r} not on the receipt:\n{text}")
        self.assertIn(purchase.name, text)
        self.assertNotIn("Amount paid", text)
        self._assert_cjk_font_embedded(fonts)

    def test_statement_in_english_stays_english(self):
        """The Chinese terms are the owner's language only: the same statement printed in
        English (the default language) has no Chinese label."""
        today = local_time.local_today(self.company)
        date_from, _last = statement.last_full_month(self.company)
        pdf, _kind = (
            self.env["ir.actions.report"]
            .with_context(force_report_rendering=True, lang="en_US")
            ._render_qweb_pdf(
                "smartpm_prepay.report_tenant_statement",
                self.tenant.ids,
                data={
                    "date_from": fields.Date.to_string(date_from),
                    "date_to": fields.Date.to_string(today),
                },
            )
        )
        text, _fonts = self._text_and_fonts(pdf)
        self.assertIn("Opening credit", text)
        self.assertNotIn("期初余额", text)
