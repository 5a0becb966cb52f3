"""A bank's machine user sees its API and nothing else; its logins are throttled on their
own; a failed SOAP login costs a password hash whether the login exists or not."""

import collections
import json
import xmlrpc.client
from datetime import datetime
from unittest.mock import patch

from lxml import etree
from passlib.context import CryptContext

from odoo.tests import tagged

from ..controllers import soap
from .common_bank import BankChannelCase

TNS = "urn:smartpm-prepay:vending:1"
BANK_TIME = "2026-11-26T09:30:00Z"
RPC_ACCESS_ERROR = 4  # odoo/addons/base/controllers/rpc.py


class MachineCase(BankChannelCase):
    def _object(self):
        return xmlrpc.client.ServerProxy(f"{self.base_url()}/xmlrpc/2/object")

    def _as_bank(self, model, method, *args, **kwargs):
        return self._object().execute_kw(
            self.env.cr.dbname, self.bank_user.id, self.api_key, model, method, list(args), kwargs
        )

    def _soap(self, login, password, operation="QueryCustomer", **fields):
        import requests

        fields = fields or {"meterNumber": "BNK-001"}
        parts = "".join(f"<tns:{k}>{v}</tns:{k}>" for k, v in fields.items())
        body = (
            f'<soap:Envelope xmlns:soap="{soap.SOAP_ENV}" xmlns:tns="{TNS}">'
            f'<soap:Header><wsse:Security xmlns:wsse="{soap.WSSE}"><wsse:UsernameToken>'
            f"<wsse:Username>{login}</wsse:Username><wsse:Password>{password}</wsse:Password>"
            "</wsse:UsernameToken></wsse:Security></soap:Header>"
            f"<soap:Body><tns:{operation}>{parts}</tns:{operation}></soap:Body></soap:Envelope>"
        )
        response = requests.post(
            f"{self.base_url()}/smartpm/soap/vending",
            data=body.encode(),
            headers={"Content-Type": "text/xml"},
            timeout=30,
        )
        root = etree.fromstring(response.content)
        return root.findtext(f".//{{{TNS}}}code") or "OK"


@tagged("post_install", "-at_install")
class TestBankUserSeesOnlyItsApi(MachineCase):
    def test_bank_user_reads_no_other_partner(self):
        partners = self._as_bank("res.partner", "search_read", [], fields=["email", "phone"])
        own = self.env["res.partner"].search([("id", "child_of", self.bank.id)])
        self.assertTrue(partners)
        self.assertLessEqual({p["id"] for p in partners}, set(own.ids))
        self.assertNotIn(self.tenant.id, [p["id"] for p in partners])
        with self.assertRaises(xmlrpc.client.Fault) as caught:
            self._as_bank("res.partner", "read", [self.tenant.id], ["email", "street"])
        self.assertEqual(caught.exception.faultCode, RPC_ACCESS_ERROR)
        self.assertFalse(self._as_bank("res.partner", "search", [("name", "=", self.tenant.name)]))

    def test_bank_user_reads_no_other_user(self):
        users = self._as_bank("res.users", "search_read", [], fields=["login"])
        self.assertEqual([u["login"] for u in users], [self.bank_user.login])
        with self.assertRaises(xmlrpc.client.Fault):
            self._as_bank("res.users", "read", [self.env.user.id], ["login"])

    def test_bank_user_reads_no_meter(self):
        for method, args in (
            ("search_read", [[]]),
            ("read", [[self.meter.id], ["host", "port", "auth"]]),
            ("search_count", [[]]),
        ):
            with self.subTest(method=method), self.assertRaises(xmlrpc.client.Fault) as caught:
                self._as_bank("smartpm.meter", method, *args)
            self.assertEqual(caught.exception.faultCode, RPC_ACCESS_ERROR)

    def test_the_bank_api_still_answers_and_sells(self):
        customer = self._as_bank("smartpm.bank.api", "query_customer", "BNK-001")
        self.assertEqual(
            (customer["tenantName"], customer["tenantNumber"]),
            (self.tenant.name, self.tenant.tenant_number),
        )
        receipt = self._as_bank(
            "smartpm.bank.api", "purchase", "BNK-001", 10.0, False, "MA-1", BANK_TIME
        )
        purchase = self._purchases()
        self.assertEqual(receipt["reference"], purchase.name)
        self.assertEqual(receipt["tenantName"], purchase.tenant_id.name)
        # its own sale stays readable by the bank, the tenant behind it does not
        self.assertEqual(
            self._as_bank("smartpm.credit.purchase", "search_read", [], fields=["name"]),
            [{"id": purchase.id, "name": purchase.name}],
        )


@tagged("post_install", "-at_install")
class TestSoapLoginCost(MachineCase):
    def _verified_hashes(self, login, password):
        seen = []
        original = CryptContext.verify

        def spy(context, secret, hashed, *args, **kwargs):
            seen.append(hashed)
            return original(context, secret, hashed, *args, **kwargs)

        with patch.object(CryptContext, "verify", autospec=True, side_effect=spy):
            self.assertEqual(self._soap(login, password), "NOT_AUTHORISED")
        return seen

    def _is_password_grade(self, hashed):
        context = self.env["res.users"]._crypt_context()
        scheme = context.default_scheme()
        rounds = context.to_dict()[f"{scheme}__rounds"]
        return context.identify(hashed) == scheme and f"${rounds}$" in hashed

    def test_unknown_login_costs_a_password_hash(self):
        seen = self._verified_hashes("nobody-at-all", "some-guess")
        self.assertTrue(any(self._is_password_grade(h) for h in seen), seen)

    def test_user_without_password_costs_a_password_hash_too(self):
        self.env.cr.execute(
            "UPDATE res_users SET password = NULL WHERE id = %s", [self.bank_user.id]
        )
        self.env.registry.clear_cache()
        seen = self._verified_hashes(self.bank_user.login, "not-the-key")
        self.assertTrue(any(self._is_password_grade(h) for h in seen), seen)


@tagged("post_install", "-at_install")
class TestBankLoginThrottle(MachineCase):
    """Odoo's cooldown counts failed logins per address when there is a request (web login,
    SOAP); its XML-RPC has none. Bank API users are counted per login and address."""

    def setUp(self):
        super().setUp()
        self.env.registry.clear_cache()  # res.users.check caches good keys
        self.env["ir.config_parameter"].set_param("base.login_cooldown_after", 3)
        self.env.flush_all()
        registry = self.env.registry
        if getattr(registry, "_login_failures", None) is None:
            registry._login_failures = collections.defaultdict(lambda: (0, datetime.min))
        self._saved = dict(registry._login_failures)
        self.addCleanup(self._restore)

    def _restore(self):
        registry = self.env.registry
        registry._login_failures.clear()
        registry._login_failures.update(self._saved)
        getattr(registry, "_smartpm_bank_login_failures", {}).clear()

    def _ip_failures(self):
        return self.env.registry._login_failures.get("127.0.0.1", (0, datetime.min))[0]

    def _web_login(self, login, password):
        response = self.url_open(
            "/web/session/authenticate",
            data=json.dumps(
                {"params": {"db": self.env.cr.dbname, "login": login, "password": password}}
            ),
            headers={"Content-Type": "application/json"},
        )
        return (response.json().get("result") or {}).get("uid")

    def test_one_banks_bad_keys_lock_out_neither_another_bank_nor_the_back_office(self):
        ip_before = self._ip_failures()
        for _i in range(5):
            self.assertEqual(self._soap(self.bank_user.login, "wrong-key"), "NOT_AUTHORISED")
        # the bank itself is on cooldown, even with its right key ...
        self.assertEqual(self._soap(self.bank_user.login, self.api_key), "NOT_AUTHORISED")
        # ... but not the other bank, nor the back office behind the same address
        self.assertEqual(self._soap(self.other_bank_user.login, self.other_api_key), "OK")
        self.assertEqual(self._web_login(self.clerk.login, self.clerk.login), self.clerk.id)
        self.assertEqual(self._ip_failures(), ip_before)

    def test_back_office_failures_still_count_per_address(self):
        ip_before = self._ip_failures()
        self.assertFalse(self._web_login(self.clerk.login, "wrong"))
        self.assertEqual(self._ip_failures(), ip_before + 1)

    def test_unknown_logins_are_throttled_per_login_not_per_address(self):
        ip_before = self._ip_failures()
        for i in range(8):
            self.assertEqual(self._soap(f"guess-{i % 2}", "x"), "NOT_AUTHORISED")
        self.assertEqual(self._soap(self.bank_user.login, self.api_key), "OK")
        self.assertEqual(self._ip_failures(), ip_before)

    def test_others_failures_on_the_address_neither_block_nor_are_reset_by_a_bank(self):
        registry = self.env.registry
        registry._login_failures["127.0.0.1"] = (20, datetime.now())  # address on cooldown
        self.assertEqual(self._soap(self.bank_user.login, self.api_key), "OK")
        self.assertEqual(self._ip_failures(), 20)
        self.assertFalse(self._web_login(self.clerk.login, self.clerk.login))
