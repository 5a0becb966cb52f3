"""POS tour in headless Chromium: a tenant with a debt and emergency credit taken buys
credit at the register; the receipt screen and the printed ticket show the split."""

from odoo.addons.point_of_sale.tests.test_frontend import TestPointOfSaleHttpCommon
from odoo.tests import tagged

from ..services import receipt


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
        # 3 kWh of emergency credit taken at 2 kWh left (the meter's last report)
        cls.meter.write(
            {"emergency_status": "in_use", "emergency_in_use_kwh": 3.0, "credit_kwh": 2.0}
        )

    def test_cashier_sees_the_debt_and_emergency_split_on_the_receipt_and_ticket(self):
        self.main_pos_config.with_user(self.pos_user).open_ui()
        self.start_pos_tour("smartpm_pos_debt_split", login="pos_user")
        purchase = self.meter.sudo().purchase_ids
        self.assertEqual(len(purchase), 1)
        self.assertEqual((purchase.amount, purchase.debt_recovered), (10.0, 4.0))
        self.assertAlmostEqual(purchase.kwh, 12.0)
        self.assertEqual(self.debt.balance, 1.0)
        self.assertEqual(self.debt.invoice_id.amount_residual, 1.0)
        # what the ticket printed is the purchase's receipt (services/receipt.py)
        split = receipt.split(purchase)
        self.assertEqual(
            (split["emergency_repaid_kwh"], split["net_kwh"], split["new_balance_kwh"]),
            (3.0, 9.0, 11.0),
        )
        self.assertEqual(purchase.pos_order_line_id.smartpm_balance_kwh, 11.0)
