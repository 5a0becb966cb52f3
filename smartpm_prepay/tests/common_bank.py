from datetime import timedelta

from odoo import fields
from odoo.addons.account.tests.common import AccountTestInvoicingHttpCommon
from odoo.tests import new_test_user

from .common import serving_for_long


class BankChannelCase(AccountTestInvoicingHttpCommon):
    """A bank with its journal and Bank API user (with an API key), a tenant, a sellable
    meter and a meter out of service; the Odoo HTTP server runs in-process."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        serving_for_long(cls)
        cls.company = cls.env.company
        cls.env.user.groups_id += cls.env.ref("smartpm_prepay.group_manager")
        cls.company.write({"smartpm_min_amount": 1.0, "smartpm_max_amount": 1000.0})
        cls.currency = cls.company.currency_id
        cls.tariff = cls.env["smartpm.tariff"].create({"name": "Bank test", "price_per_kwh": 0.25})
        cls.tenant = cls.env["res.partner"].create({"name": "Nkechi Bank-Test", "is_tenant": True})
        cls.meter = cls.env["smartpm.meter"].create(
            {
                "serial_number": "BNK-001",
                "host": "127.0.0.1",
                "port": 4100,
                "state": "active",
                "tenant_id": cls.tenant.id,
                "tariff_id": cls.tariff.id,
            }
        )
        cls.meter_draft = cls.env["smartpm.meter"].create(
            {
                "serial_number": "BNK-DRAFT",
                "host": "127.0.0.1",
                "port": 4101,
                "state": "draft",
                "tenant_id": cls.tenant.id,
                "tariff_id": cls.tariff.id,
            }
        )
        cls.journal = cls.company_data["default_journal_bank"]
        cls.bank = cls.env["res.partner"].create(
            {
                "name": "Test Bank",
                "is_company": True,
                "smartpm_is_bank": True,
                "smartpm_bank_journal_id": cls.journal.id,
            }
        )
        cls.bank_user = cls._bank_user("bank_api", cls.bank)
        cls.api_key = cls._api_key(cls.bank_user)
        other_journal = cls.journal.copy({"name": "Other bank", "code": "OBNK"})
        cls.other_bank = cls.env["res.partner"].create(
            {
                "name": "Other Bank",
                "is_company": True,
                "smartpm_is_bank": True,
                "smartpm_bank_journal_id": other_journal.id,
            }
        )
        cls.other_bank_user = cls._bank_user("other_bank_api", cls.other_bank)
        cls.other_api_key = cls._api_key(cls.other_bank_user)
        cls.clerk = new_test_user(
            cls.env,
            "clerk_api",
            groups="base.group_user,smartpm_prepay.group_cashier",
            company_id=cls.company.id,
        )
        cls.clerk_key = cls._api_key(cls.clerk)

    @classmethod
    def _bank_user(cls, login, bank):
        user = new_test_user(
            cls.env,
            login,
            groups="base.group_user,smartpm_prepay.group_bank_api",
            company_id=cls.company.id,
            password=f"{login}-pw-123",
        )
        user.partner_id.parent_id = bank
        return user

    @classmethod
    def _api_key(cls, user):
        return (
            cls.env["res.users.apikeys"]
            .with_user(user)
            ._generate("rpc", "test", fields.Datetime.now() + timedelta(days=30))
        )

    def _purchases(self):
        return self.env["smartpm.credit.purchase"].search([("meter_id", "=", self.meter.id)])

    def _post_bank_sales(self):
        """The posting step after a bank purchase's answer (its invoice and payment): in a
        test the commit never happens, so its post-commit step never runs; run the cron's."""
        self.env.invalidate_all()  # the request may have run on the test cursor
        self.env["smartpm.credit.purchase"]._cron_post_deferred_sales()
        self.env.invalidate_all()

    def _claim_delivery(self, purchase):
        """A bridge takes the sale's credit job (the token may go out from now on)."""
        from ..services import engine, job_queue

        env = engine.as_engine(self.env["smartpm.meter.job"]).env
        claimed = [j["id"] for j in job_queue.claim(env, "bank-test-bridge", 500, 60)]
        self.assertIn(purchase.job_id.id, claimed)

    def _meter_answers(self, purchase, applied):
        """The delivery's lease passes, the check_token job runs, the meter answers."""
        from ..services import engine, job_queue

        self.env.invalidate_all()  # the request ran on the test cursor, not this cache
        check = purchase.check_job_id
        self.assertTrue(check, f"{purchase.name} has no check job")
        self.env.flush_all()
        self.env.cr.execute(
            """UPDATE smartpm_meter_job SET lease_until = now() at time zone 'utc'
                      - interval '1 minute' WHERE id = %s AND state = 'claimed';
               UPDATE smartpm_meter_job SET next_attempt_at = now() at time zone 'utc'
                      - interval '1 second' WHERE id = %s""",
            (purchase.job_id.id, check.id),
        )
        self.env.invalidate_all()
        env = engine.as_engine(self.env["smartpm.meter.job"]).env
        claimed = [j["id"] for j in job_queue.claim(env, "bank-test-bridge", 500, 60)]
        self.assertIn(check.id, claimed)
        result = {
            "transfer_number": purchase.transfer_number,
            "applied": applied,
            "cancelled": not applied,
        }
        job_queue.complete(env, check.id, "bank-test-bridge", result)
        self.env.invalidate_all()
