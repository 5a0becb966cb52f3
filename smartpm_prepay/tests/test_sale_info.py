"""services.sale_info: one answer to "may this meter be sold credit, within which limits,
at which quote", which the POS, the portal, the bank, the wizard and the RPC all show."""

from odoo.tests import tagged

from ..services.sale_info import sale_info
from .common import SmartpmCase


@tagged("post_install", "-at_install")
class TestSaleInfo(SmartpmCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company = cls.env.company
        cls.company.write({"smartpm_min_amount": 2.0, "smartpm_max_amount": 100.0})
        cls.tariff = cls.env["smartpm.tariff"].create({"name": "Two tiers", "price_per_kwh": 0.5})
        cls.env["smartpm.tariff.tier"].create(
            {"tariff_id": cls.tariff.id, "from_kwh": 10.0, "price_per_kwh": 1.0}
        )
        cls.tenant = cls._tenant("Info Tenant")
        cls.meter = cls._meter(
            "INFO-1", state="active", tenant_id=cls.tenant.id, tariff_id=cls.tariff.id
        )

    def test_a_meter_without_tariff_is_not_sellable_and_says_why(self):
        meter = self._meter("INFO-2", state="active", tenant_id=self.tenant.id)
        info = sale_info(meter, 10.0)
        self.assertFalse(info["sellable"])
        self.assertIn("INFO-2 has no tariff", info["reason"])
        self.assertEqual(info["reason_code"], "meter_not_sellable")
        self.assertFalse(info["quote"])
        # the company's limits, in its currency: what the bank is told
        self.assertEqual((info["min_amount"], info["max_amount"]), (2.0, 100.0))
        self.assertEqual(info["currency"], self.company.currency_id)

    def test_an_amount_out_of_the_limits_is_refused_without_a_quote(self):
        info = sale_info(self.meter, 500.0)
        self.assertTrue(info["sellable"])
        self.assertEqual(info["reason_code"], "amount_out_of_range")
        self.assertIn(info["limits"], info["reason"])
        self.assertFalse(info["quote"])

    def test_a_register_of_another_company_is_refused(self):
        other = self.env["res.company"].create({"name": "Other Owner"})
        info = sale_info(self.meter, 10.0, company=other)
        self.assertIn("belongs to", info["reason"])
        self.assertFalse(info["quote"])

    def test_an_acceptable_amount_is_quoted_by_tier(self):
        info = sale_info(self.meter, 10.0)  # 10 kWh at 0.50 = 5.00, then 5 kWh at 1.00
        self.assertFalse(info["reason"])
        self.assertEqual(info["quote"]["kwh"], 15.0)
        self.assertEqual([t["kwh"] for t in info["tiers"]], [10.0, 5.0])
        self.assertIn("10 kWh at", info["tiers_info"])
        self.assertIn(info["tiers_info"], info["price_info"])
        self.assertIn("on average", info["price_info"])

    def test_no_amount_gives_the_limits_and_no_quote(self):
        info = sale_info(self.meter)
        self.assertTrue(info["sellable"])
        self.assertFalse(info["reason"])
        self.assertFalse(info["quote"])
        self.assertEqual(info["tariff"], self.tariff)
        self.assertEqual((info["min_amount"], info["max_amount"]), (2.0, 100.0))
