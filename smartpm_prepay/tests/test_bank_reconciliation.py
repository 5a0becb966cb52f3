import csv
import io
from datetime import datetime

from odoo.addons.account.tests.common import AccountTestInvoicingCommon
from odoo.tests import tagged

from ..services import bank_api, engine
from ..wizards.bank_reconciliation import csv_cell

FORMULA = ("=", "+", "-", "@", "\t", "\r")


@tagged("post_install", "-at_install")
class TestBankReconciliation(AccountTestInvoicingCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.user.groups_id += cls.env.ref("smartpm_prepay.group_manager")
        cls.env.user.tz = "UTC"
        cls.env.company.write({"smartpm_min_amount": 1.0, "smartpm_max_amount": 1000.0})
        tariff = cls.env["smartpm.tariff"].create({"name": "R", "price_per_kwh": 0.5})
        tenant = cls.env["res.partner"].create({"name": "Ada", "is_tenant": True})
        cls.meter = cls.env["smartpm.meter"].create(
            {
                "serial_number": "REC-1",
                "host": "127.0.0.1",
                "port": 4100,
                "state": "active",
                "tenant_id": tenant.id,
                "tariff_id": tariff.id,
            }
        )
        cls.bank = cls.env["res.partner"].create(
            {
                "name": "Recon Bank",
                "is_company": True,
                "smartpm_is_bank": True,
                "smartpm_bank_journal_id": cls.company_data["default_journal_bank"].id,
            }
        )
        cls.bank_user = cls.env["res.users"].create(
            {
                "name": "Recon API",
                "login": "recon_api",
                "parent_id": cls.bank.id,
                "groups_id": [
                    (
                        6,
                        0,
                        [
                            cls.env.ref("base.group_user").id,
                            cls.env.ref("smartpm_prepay.group_bank_api").id,
                        ],
                    )
                ],
            }
        )

    def _sell(self, ref, amount, when):
        env = self.env(user=self.bank_user)
        receipt = bank_api.purchase(env, "bank_soap", "REC-1", amount, None, ref, when)
        purchase = self.env["smartpm.credit.purchase"].search([("name", "=", receipt["reference"])])
        engine.as_engine(purchase).write({"date": datetime.fromisoformat(when.rstrip("Z"))})
        return purchase

    def test_report_lists_the_days_sales_and_totals_them_without_reversals(self):
        self._sell("A1", 10.0, "2026-11-20T08:00:00Z")
        self._sell("A2", 15.5, "2026-11-20T23:59:00Z")
        self._sell("B1", 99.0, "2026-11-21T00:00:00Z")
        reversed_sale = self._sell("A3", 7.0, "2026-11-20T12:00:00Z")
        bank_api.reverse_purchase(self.env(user=self.bank_user), "A3")
        report = self.env["smartpm.bank.reconciliation"].create(
            {"bank_id": self.bank.id, "date": "2026-11-20"}
        )
        self.assertEqual(report.purchase_ids.mapped("bank_reference"), ["A1", "A3", "A2"])
        self.assertEqual(reversed_sale.state, "reversed")
        self.assertEqual(report.total_amount, 25.5)
        self.assertEqual(report.reversed_amount, 7.0)

    def test_csv_export_has_one_line_per_sale_and_the_total(self):
        self._sell("C1", 10.0, "2026-11-20T08:00:00Z")
        report = self.env["smartpm.bank.reconciliation"].create(
            {"bank_id": self.bank.id, "date": "2026-11-20"}
        )
        action = report.action_export_csv()
        self.assertIn(
            f"/web/content/smartpm.bank.reconciliation/{report.id}/csv_file/", action["url"]
        )
        lines = report._render_csv().splitlines()
        self.assertEqual(lines[0].split(",")[:3], ["date", "reference", "bank_reference"])
        self.assertIn(",C1,", lines[1])
        self.assertTrue(lines[-1].startswith("TOTAL,") and ",10.00," in lines[-1])

    def test_a_bank_user_reads_only_its_own_banks_sales(self):
        self._sell("D1", 10.0, "2026-11-20T08:00:00Z")
        other_bank = self.bank.copy({"name": "Other", "smartpm_is_bank": True})
        other_user = self.bank_user.copy({"login": "other_recon_api", "parent_id": other_bank.id})
        Purchase = self.env["smartpm.credit.purchase"]
        self.assertEqual(len(Purchase.with_user(self.bank_user).search([])), 1)
        self.assertFalse(Purchase.with_user(other_user).search([]))

    def test_csv_cells_cannot_carry_spreadsheet_formulas(self):
        self.meter.tenant_id.sudo().name = '=HYPERLINK("http://x","pay")'
        self._sell("+1+cmd|'/Ccalc'!A0", 10.0, "2026-11-20T08:00:00Z")
        self._sell("@SUM(1)", 11.0, "2026-11-20T09:00:00Z")
        self._sell("-2+3", 12.0, "2026-11-20T10:00:00Z")
        report = self.env["smartpm.bank.reconciliation"].create(
            {"bank_id": self.bank.id, "date": "2026-11-20"}
        )
        rows = list(csv.reader(io.StringIO(report._render_csv())))
        cells = [cell for row in rows for cell in row]
        for cell in cells:
            self.assertFalse(cell.startswith(FORMULA), cell)
        self.assertIn('\'=HYPERLINK("http://x","pay")', cells)
        self.assertEqual(
            [row[2] for row in rows[1:-1]], ["'+1+cmd|'/Ccalc'!A0", "'@SUM(1)", "'-2+3"]
        )
        # figures are left as they are: the total still adds up
        self.assertEqual(rows[-1][7], "33.00")

    def test_csv_cell_escapes_tab_and_carriage_return_too(self):
        for text in ("\tx", "\rx", "=1", "+1", "-1", "@x"):
            self.assertEqual(csv_cell(text), "'" + text)
        self.assertEqual(csv_cell("CP000123"), "CP000123")
        self.assertEqual(csv_cell(10.5), "10.5")
