"""Credit tokens minted and signed at the sale (issue 14): what the purchase stores, what
the job carries, who may read it, and that the meter's key verifies it."""

import zlib

from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged

from ..services import credit_token
from ..services.vending import VendingError
from .test_vending import VendingCase


@tagged("post_install", "-at_install")
class TestCreditToken(VendingCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.manager = new_test_user(cls.env, "t_mgr_tok", groups="smartpm_prepay.group_manager")

    def _key(self, meter=None):
        return bytes.fromhex((meter or self.meter).sudo().token_key)

    def test_sale_mints_a_token_the_meter_key_verifies(self):
        purchase = self._vend(10.0)
        raw = bytes.fromhex(purchase.token)
        self.assertEqual(len(raw), 20)
        number, wh, tag, _mac = credit_token.parse(raw)
        # the token carries the purchase's own figures, unit for unit
        self.assertEqual(number, purchase.transfer_number)
        self.assertEqual(wh, round(purchase.kwh * 1000))
        self.assertEqual(wh, 40000)
        self.assertEqual(tag, zlib.crc32(b"SELL-1"))
        self.assertTrue(credit_token.verify(self._key(), "SELL-1", raw))
        # another key, another serial, or a changed figure: not a token of this meter
        self.assertFalse(credit_token.verify(bytes(16), "SELL-1", raw))
        self.assertFalse(credit_token.verify(self._key(), "SELL-2", raw))
        forged = raw[:4] + (wh * 10).to_bytes(4, "big") + raw[8:]
        self.assertFalse(credit_token.verify(self._key(), "SELL-1", forged))

    def test_each_sale_has_its_own_token(self):
        first, second = self._vend(ref="T1"), self._vend(ref="T2")
        self.assertNotEqual(first.token, second.token)
        self.assertEqual(credit_token.parse(bytes.fromhex(second.token))[0], 2)

    def test_job_payload_has_the_token_and_no_key(self):
        purchase = self._vend(10.0)
        claimed = [j for j in self.Job.claim("b1", 100, 60) if j["id"] == purchase.job_id.id]
        self.assertEqual(len(claimed), 1)
        job = claimed[0]
        self.assertEqual(job["payload"]["token"], purchase.token)
        key_hex = self.meter.sudo().token_key
        dumped = repr(job).upper()
        self.assertNotIn(key_hex, dumped)
        self.assertNotIn("token_key", repr(job))
        # the association keys are there for the bridge that holds the job
        self.assertEqual(job["meter"]["auth_key"], self.meter.sudo().auth_key)

    def test_token_readable_by_manager_only(self):
        purchase = self._vend(10.0)
        self.assertEqual(purchase.with_user(self.manager).token, purchase.token)
        for user in (self.operator, self.cashier, self.bank, self.bridge_user):
            with self.assertRaises(AccessError, msg=user.login):
                purchase.with_user(user).read(["token"])
            self.assertNotIn("token", self.Purchase.with_user(user).fields_get(), user.login)

    def test_token_is_never_rewritten(self):
        purchase = self._vend(10.0)
        token = purchase.token
        for user in (self.manager, self.env.user):
            with self.assertRaises(UserError):
                purchase.with_user(user).write({"token": "00" * 20})
        self.assertEqual(purchase.token, token)

    def test_meter_without_token_key_is_not_sold_and_nothing_is_recorded(self):
        self.meter.sudo().token_key = False
        before = self.Purchase.search_count([])
        with self.assertRaises(VendingError) as err:
            self._vend(10.0, ref="NOKEY")
        self.assertEqual(err.exception.code, "meter_not_sellable")
        self.assertIn("SELL-1", str(err.exception))
        self.assertEqual(self.Purchase.search_count([]), before)
        self.assertEqual(self.meter.last_transfer_number, 0)

    def test_retry_after_the_owner_corrected_the_key_signs_the_same_transfer_again(self):
        self.meter.sudo().token_key = "00112233445566778899AABBCCDDEEFF"  # typed wrong
        purchase = self._vend(10.0, ref="WRONGKEY")
        old = purchase.token
        self._claim(purchase.job_id)
        self.Job.fail(purchase.job_id.id, "b1", "meter refused the credit token: MAC", False)
        self.assertEqual((purchase.state, purchase.job_id.state), ("failed", "failed"))
        self.meter.sudo().token_key = "FFEEDDCCBBAA99887766554433221100"  # the vendor's
        purchase.with_user(self.operator).action_retry_delivery()
        self.assertEqual(purchase.state, "queued")
        self.assertNotEqual(purchase.token, old)
        raw = bytes.fromhex(purchase.token)
        self.assertTrue(credit_token.verify(self._key(), "SELL-1", raw))
        # same transfer number and energy: the meter can still apply it only once
        self.assertEqual(credit_token.parse(raw)[:2], credit_token.parse(bytes.fromhex(old))[:2])
        self.assertEqual(purchase.job_id.payload["token"], purchase.token)
        self.assertEqual(purchase.job_id.payload["transfer_number"], purchase.transfer_number)
        # a retry with an unchanged key keeps the token
        self._claim(purchase.job_id)
        self.Job.fail(purchase.job_id.id, "b1", "meter unreachable", False)
        token = purchase.token
        purchase.with_user(self.operator).action_retry_delivery()
        self.assertEqual(purchase.token, token)
