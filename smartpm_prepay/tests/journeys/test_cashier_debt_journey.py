"""The demo cashier sells credit to a demo tenant with a debt and emergency credit taken: the
register's popup, receipt screen and printed ticket show the debt repaid, the debt left, the
credit bought, the emergency credit the meter keeps and the net energy (issue 17 §1, §5),
the same lines as the purchase's receipt in every other channel (services/receipt.py)."""

from odoo.tests import tagged

from .common import DemoJourneyCase
from .test_cashier_journey import ScreenLogMixin, _plain


@tagged("post_install", "-at_install")
class TestCashierDebtJourney(ScreenLogMixin, DemoJourneyCase):
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
        # the tenant took 2 kWh of emergency credit (as the meter last reported)
        meter.sudo().write({"emergency_status": "in_use", "emergency_in_use_kwh": 2.0})
        before = meter.purchase_ids
        balance_before = meter._smartpm_estimated_balance_kwh()
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
        self.assertEqual(purchase.expected_emergency_repaid_kwh, 2.0)
        self.assertAlmostEqual(purchase.expected_balance_kwh, balance_before + purchase.kwh - 2.0)

        # every line the purchase's receipt has, unit for unit, on the screens
        def rows(lines, skip=()):
            return [
                (r["key"], _plain(r["label"]), _plain(r["value"]))
                for r in lines
                if r["key"] not in skip
            ]

        expected = rows(purchase.receipt_lines)
        self.assertIn(
            ("emergency_repaid_kwh", "Emergency credit repaid (expected)", "2.00 kWh"), expected
        )
        self.assertIn(
            ("debt_recovered", "Debt recovered", _plain(self._money(4.0, meter))), expected
        )
        self.assertEqual(rows(self._screen("receipt_screen")["lines"]), expected)
        # the ticket prints the energy and the balance on lines of their own
        self.assertEqual(
            rows(self._screen("ticket")["lines"]),
            rows(purchase.receipt_lines, ("kwh", "new_balance_kwh")),
        )
        # the popup previewed the same split, before the purchase had a transfer number
        self.assertEqual(
            rows(self._screen("preview")["lines"]),
            rows(purchase.receipt_lines, ("transfer_number",)),
        )

    def _money(self, amount, meter):
        from ...services.sale_info import format_money

        return format_money(self.env, amount, meter._get_tariff().currency_id)
