"""The company's minimum and maximum sale are in the company's currency: a tariff sold in
another currency gets them converted at the day's rate (its own limits are its own)."""

from odoo.addons.account.tests.common import AccountTestInvoicingCommon
from odoo.tests import tagged

from ..services import bank_api, vending


@tagged("post_install", "-at_install")
class TestLimitsInTheTariffsCurrency(AccountTestInvoicingCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.user.groups_id += cls.env.ref("smartpm_prepay.group_manager")
        cls.company = cls.env.company
        cls.company.write({"smartpm_min_amount": 1.0, "smartpm_max_amount": 1000.0})
        # one unit of the company's currency is worth 2 of the other one
        cls.other = cls.setup_other_currency("EUR", rates=[("2000-01-01", 2.0)])
        cls.tariff = cls.env["smartpm.tariff"].create(
            {"name": "In EUR", "price_per_kwh": 0.5, "currency_id": cls.other.id}
        )
        tenant = cls.env["res.partner"].create({"name": "Ama Limits", "is_tenant": True})
        cls.meter = cls.env["smartpm.meter"].create(
            {
                "serial_number": "LIM-EUR",
                "host": "127.0.0.1",
                "port": 4100,
                "state": "active",
                "tenant_id": tenant.id,
                "tariff_id": cls.tariff.id,
            }
        )
        cls.bank = cls.env["res.partner"].create(
            {
                "name": "Limits Bank",
                "is_company": True,
                "smartpm_is_bank": True,
                "smartpm_bank_journal_id": cls.company_data["default_journal_bank"].id,
            }
        )
        groups = cls.env.ref("base.group_user") | cls.env.ref("smartpm_prepay.group_bank_api")
        cls.bank_user = cls.env["res.users"].create(
            {
                "name": "Limits API",
                "login": "limits_api",
                "parent_id": cls.bank.id,
                "groups_id": [(6, 0, groups.ids)],
            }
        )

    def test_company_limits_are_converted_into_the_tariffs_currency(self):
        self.assertNotEqual(self.company.currency_id, self.other)
        self.assertEqual(self.tariff._get_amount_limits(self.company), (2.0, 2000.0))

    def test_bank_sees_the_converted_limits_and_sales_follow_them(self):
        answer = bank_api.query_customer(self.env(user=self.bank_user), "LIM-EUR")
        self.assertEqual(
            (answer["currency"], answer["minimumAmount"], answer["maximumAmount"]),
            ("EUR", "2.00", "2000.00"),
        )
        for amount in (1.5, 2000.01):
            with self.subTest(amount=amount), self.assertRaises(vending.VendingError) as err:
                vending.check_amount(self.tariff, self.meter, amount)
            self.assertEqual(err.exception.code, "amount_out_of_range")
        # above the company's 1000 in its own currency, within the 2000 EUR it is worth
        purchase = vending.vend(self.env, self.meter, 1500.0, "backoffice", "LIM-1")
        self.assertEqual((purchase.amount, purchase.currency_id), (1500.0, self.other))

    def test_a_tariffs_own_limits_are_not_converted(self):
        self.tariff.write({"min_amount": 5.0, "max_amount": 50.0})
        self.assertEqual(self.tariff._get_amount_limits(self.company), (5.0, 50.0))

    def test_same_currency_keeps_the_company_limits(self):
        tariff = self.env["smartpm.tariff"].create({"name": "Local", "price_per_kwh": 0.5})
        self.assertEqual(tariff.currency_id, self.company.currency_id)
        self.assertEqual(tariff._get_amount_limits(self.company), (1.0, 1000.0))
