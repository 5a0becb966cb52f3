"""The demo cashier sells credit to a demo tenant with a debt: the register's receipt
screen shows the debt repaid, the debt left and the credit bought (issue 17 §5)."""

from odoo.tests import tagged

from .common import DemoJourneyCase


@tagged("post_install", "-at_install")
class TestCashierDebtJourney(DemoJourneyCase):
    def test_demo_cashier_sells_to_a_tenant_with_a_debt_and_the_receipt_shows_the_split(self):
        meter = self.env.ref("smartpm_prepay.demo_meter_02")  # SIM00002 (the tour's)
        debt = self.env["smartpm.tenant.debt"].create(
            {
                "tenant_id": meter.tenant_id.id,
                "company_id": meter.company_id.id,
                "description": "Arrears before prepaid",
                "amount": 5.0,
                "recovery_rule": "fixed",
                "recovery_fixed": 4.0,
            }
        )
        debt.action_confirm()
        before = meter.purchase_ids
        self.start_tour(
            "/odoo/action-point_of_sale.action_pos_config_kanban",
            "smartpm_cashier_debt_journey",
            login="cashier",
            timeout=600,
        )
        purchase = meter.purchase_ids - before
        self.assertEqual(len(purchase), 1)
        self.assertEqual(purchase.create_uid, self.cashier)
        self.assertEqual((purchase.amount, purchase.debt_recovered), (10.0, 4.0))
        self.assertEqual(purchase.credit_amount, 6.0)
        self.assertEqual(debt.balance, 1.0)
        self.assertEqual(debt.invoice_id.amount_residual, 1.0)
