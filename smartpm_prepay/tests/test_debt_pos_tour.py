"""POS tour in headless Chromium: a tenant with a debt buys credit at the register and the
receipt screen shows the split."""

from odoo.addons.point_of_sale.tests.test_frontend import TestPointOfSaleHttpCommon
from odoo.tests import tagged


@tagged("post_install", "-at_install")
class TestDebtPosTour(TestPointOfSaleHttpCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pos_user.groups_id += cls.env.ref("smartpm_prepay.group_cashier")
        credit = cls.env.ref("smartpm_prepay.product_electricity_credit")
        credit.write({"active": True, "available_in_pos": True, "taxes_id": [(5, 0, 0)]})
        su = cls.env(su=True)
        tariff = su["smartpm.tariff"].create({"name": "Flat", "price_per_kwh": 0.5})
        site = su["smartpm.site"].create({"name": "Debt Court", "code": "DEBTC"})
        line = su["smartpm.line"].create({"name": "Debt line", "site_id": site.id})
        transformer = su["smartpm.transformer"].create({"name": "TR-DEBT", "line_id": line.id})
        cls.tenant = su["res.partner"].create({"name": "Pos Debtor", "is_tenant": True})
        cls.meter = su["smartpm.meter"].create(
            {
                "serial_number": "POS-DEBT",
                "state": "active",
                "host": "127.0.0.1",
                "port": 4100,
                "transformer_id": transformer.id,
                "tariff_id": tariff.id,
                "tenant_id": cls.tenant.id,
            }
        )
        cls.debt = su["smartpm.tenant.debt"].create(
            {
                "tenant_id": cls.tenant.id,
                "company_id": cls.meter.company_id.id,
                "description": "Arrears",
                "amount": 5.0,
                "recovery_rule": "fixed",
                "recovery_fixed": 4.0,
            }
        )
        cls.debt.action_confirm()

    def test_cashier_sees_the_debt_split_on_the_receipt(self):
        self.main_pos_config.with_user(self.pos_user).open_ui()
        self.start_pos_tour("smartpm_pos_debt_split", login="pos_user")
        purchase = self.meter.sudo().purchase_ids
        self.assertEqual(len(purchase), 1)
        self.assertEqual((purchase.amount, purchase.debt_recovered), (10.0, 4.0))
        self.assertAlmostEqual(purchase.kwh, 12.0)
        self.assertEqual(self.debt.balance, 1.0)
        self.assertEqual(self.debt.invoice_id.amount_residual, 1.0)
