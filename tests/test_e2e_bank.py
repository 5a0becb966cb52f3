"""End to end: a bank that knows only the WSDL buys credit and sees it delivered.

A real Odoo HTTP server (subprocess), zeep as the bank's SOAP client, a `meter-bridge`
process and a simulated meter. Skipped when Odoo or the database is missing. The sale's
invoice and payment stay in the (disposable) test database; everything else is removed.
"""

from __future__ import annotations

import itertools
import os
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from odoo_e2e import user_with_key, wait_until

from meter_sim.model import MeterConfig

odoo = pytest.importorskip("odoo")
zeep = pytest.importorskip("zeep")

from test_e2e_vending import (  # noqa: E402  (helpers shared with the vending e2e test)
    _odoo_server,
    _run_bridge_until,
    delete_committed,
    sold_meter,
)
from zeep.wsse.username import UsernameToken  # noqa: E402

SERIAL = f"E2E-BANK-{os.getpid()}"


def _setup(registry, port, serial=SERIAL):
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        company = env.ref("base.main_company")
        journal = env["account.journal"].search(
            [("type", "=", "bank"), ("company_id", "=", company.id)], limit=1
        )
        if not journal:
            pytest.skip("the main company has no bank journal (no chart of accounts)")
        bank = env["res.partner"].create(
            {
                "name": f"E2E Bank {serial}",
                "is_company": True,
                "smartpm_is_bank": True,
                "smartpm_bank_journal_id": journal.id,
            }
        )
        users = {}
        for role, group in (("bridge", "group_bridge_api"), ("bank", "group_bank_api")):
            users[role] = user_with_key(
                env,
                f"E2E {role}",
                f"e2e_{role}_{serial}",
                ("base.group_user", f"smartpm_prepay.{group}"),
            )
        users["bank"][0].partner_id.parent_id = bank
        tariff, tenant, meter = sold_meter(env, "E2E bank", serial, port)
        ids = {
            "users": [u.id for u, _key in users.values()],
            "partners": [bank.id, tenant.id],
            "tariff": tariff.id,
            "meter": meter.id,
        }
        return (
            users["bridge"][0].login,
            users["bridge"][1],
            users["bank"][0].login,
            users["bank"][1],
            ids,
        )


def _cleanup(registry, ids):
    with registry.cursor() as cr:
        delete_committed(cr, ids["meter"], ids["tariff"], ids["users"], ids["partners"])


def test_bank_buys_credit_with_the_wsdl_and_sees_it_delivered(odoo_db, sim_fleet):
    db, registry = odoo_db
    fleet = sim_fleet(MeterConfig(SERIAL, credit_kwh=1.0))
    model = fleet.meter(SERIAL)
    bridge_login, bridge_key, bank_login, bank_key, ids = _setup(registry, fleet.port_of(SERIAL))
    try:
        with _odoo_server(db) as url:
            bank = zeep.Client(
                f"{url}/smartpm/soap/vending?wsdl", wsse=UsernameToken(bank_login, bank_key)
            ).service
            customer = bank.QueryCustomer(meterNumber=SERIAL)
            assert customer.sellable and customer.tenantName == "E2E bank tenant"

            receipt = bank.Purchase(
                meterNumber=SERIAL,
                amount=Decimal("5.00"),
                bankReference=f"E2E-{os.getpid()}",
                bankTime=datetime.now(timezone.utc),
            )
            assert (receipt.state, receipt.kwh) == ("queued", Decimal("10.000"))

            delivered = _run_bridge_until(
                db,
                bridge_login,
                bridge_key,
                url,
                lambda: bank.QueryPurchase(bankReference=f"E2E-{os.getpid()}").state == "delivered",
            )
            assert delivered
            # 5.00 at 0.50 = 10 kWh on top of the 1 kWh the meter had
            assert model.credit_wh == pytest.approx(11000, abs=5)
            # the invoice and payment are posted after the answer, not before the delivery
            wait_until(lambda: _posted(registry, f"E2E-{os.getpid()}"), 30, what="the sale posted")
    finally:
        _cleanup(registry, ids)


# ---------------------------------------------------------------- concurrency
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"


def _soap_envelope(login, key, operation, token=None, **fields):
    tns = "urn:smartpm-prepay:vending:1"
    parts = "".join(f"<tns:{k}>{v}</tns:{k}>" for k, v in fields.items())
    token = token or (f"<wsse:Username>{login}</wsse:Username><wsse:Password>{key}</wsse:Password>")
    return (
        f'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:tns="{tns}">'
        f'<soap:Header><wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}"><wsse:UsernameToken>'
        f"{token}</wsse:UsernameToken></wsse:Security></soap:Header>"
        f"<soap:Body><tns:{operation}>{parts}</tns:{operation}></soap:Body></soap:Envelope>"
    ).encode()


def _soap_answer(response):
    """{field: text} of a SOAP answer, or {"fault": code}."""
    from lxml import etree

    root = etree.fromstring(response.content)
    tns = "{urn:smartpm-prepay:vending:1}"
    code = root.findtext(f".//{tns}code")
    if code:
        return {"fault": code, "message": root.findtext(f".//{tns}message")}
    answer = root.find(".//{http://schemas.xmlsoap.org/soap/envelope/}Body")[0]
    return {etree.QName(child).localname: child.text for child in answer}


def _at_once(calls):
    """Run the callables together (released by one barrier); their results, in order."""
    import threading

    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        try:
            results[i] = call()
        except Exception as exc:  # noqa: BLE001 - the test compares every outcome
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    return results


def _posted(registry, bank_reference):
    """The bank sale's invoice is posted (its posting step done)."""
    with registry.cursor() as cr:
        cr.execute(
            "SELECT 1 FROM smartpm_credit_purchase WHERE bank_reference = %s "
            "AND invoice_id IS NOT NULL AND posting_journal_id IS NULL",
            (bank_reference,),
        )
        return bool(cr.fetchone())


def _bank_sales(registry, bank_login):
    with registry.cursor() as cr:
        cr.execute(
            """
            SELECT p.id, p.name, p.channel, p.invoice_id, p.bank_reference
              FROM smartpm_credit_purchase p
              JOIN res_users u ON u.login = %s
              JOIN res_partner up ON up.id = u.partner_id
             WHERE p.bank_partner_id = up.parent_id
             ORDER BY p.id
            """,
            (bank_login,),
        )
        return cr.fetchall()


_FIXTURE_RUNS = itertools.count(1)


@pytest.fixture
def bank_server(odoo_db):
    """A running Odoo, a bank's login and key, and two sellable meters (no simulator: the
    credit is only sold, not delivered)."""
    db, registry = odoo_db
    serial = f"{SERIAL}-{next(_FIXTURE_RUNS)}"
    _bridge_login, _bridge_key, bank_login, bank_key, ids = _setup(registry, 4999, serial)
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        tariff2, tenant2, meter2 = sold_meter(env, "E2E bank 2", serial + "-B", 4998)
        extra = {"tariff": tariff2.id, "meter": meter2.id, "partners": [tenant2.id]}
    try:
        with _odoo_server(db) as url:
            yield url, db, registry, bank_login, bank_key, serial
    finally:
        _cleanup(registry, ids)
        with registry.cursor() as cr:
            delete_committed(cr, extra["meter"], extra["tariff"], [], extra["partners"])


def test_six_identical_soap_purchases_at_once_get_one_receipt(bank_server):
    import requests

    url, _db, registry, login, key, serial = bank_server
    body = _soap_envelope(
        login,
        key,
        "Purchase",
        meterNumber=serial,
        amount="5.00",
        bankReference=f"CONC-SOAP-{os.getpid()}",
        bankTime="2026-11-26T09:30:00Z",
    )

    def post():
        return requests.post(
            f"{url}/smartpm/soap/vending",
            data=body,
            headers={"Content-Type": "text/xml; charset=utf-8"},
            timeout=120,
        )

    responses = _at_once([post] * 6)
    answers = [_soap_answer(r) for r in responses]
    assert [r.status_code for r in responses] == [200] * 6, answers
    assert all(a == answers[0] for a in answers), answers
    sales = _bank_sales(registry, login)
    assert len(sales) == 1
    assert answers[0]["reference"] == sales[0][1]
    # the invoice and payment are posted right after the answer, once for the six calls
    wait_until(lambda: _bank_sales(registry, login)[0][3], 30, what="the sale invoiced")
    with registry.cursor() as cr:
        cr.execute(
            "SELECT count(*) FROM account_move WHERE ref = %s AND move_type = 'out_invoice'",
            (sales[0][1],),
        )
        invoices = cr.fetchone()[0]
        cr.execute("SELECT count(*) FROM account_payment WHERE memo = %s", (sales[0][1],))
        payments = cr.fetchone()[0]
    assert (invoices, payments) == (1, 1)


def _digest_token(login, secret):
    """A PasswordDigest UsernameToken's content, as a bank's stack makes it."""
    import base64
    import hashlib

    nonce = os.urandom(16)
    created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = base64.b64encode(hashlib.sha1(nonce + created.encode() + secret.encode()).digest())
    profile = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
    return (
        f"<wsse:Username>{login}</wsse:Username>"
        f'<wsse:Password Type="{profile}#PasswordDigest">{digest.decode()}</wsse:Password>'
        f"<wsse:Nonce>{base64.b64encode(nonce).decode()}</wsse:Nonce>"
        f"<wsu:Created>{created}</wsu:Created>"
    )


def _give_digest_secret(registry, login, secret):
    """The bank of ``login`` gets a SOAP shared secret; answers the bank user's id."""
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        user = env["res.users"].search([("login", "=", login)])
        user.partner_id.commercial_partner_id.smartpm_soap_digest_secret = secret
        return user.id


def test_six_requests_with_one_digest_nonce_at_once_sell_once(bank_server):
    """One captured PasswordDigest token replayed on six bodies at the same moment: the
    unique nonce index lets one through, the five others are refused, one sale."""
    import requests
    from lxml import etree

    url, _db, registry, login, _key, serial = bank_server
    secret = f"e2e-digest-secret-{os.getpid()}-0123456789"
    uid = _give_digest_secret(registry, login, secret)
    token = _digest_token(login, secret)
    bodies = [
        _soap_envelope(
            login,
            None,
            "Purchase",
            token=token,
            meterNumber=serial,
            amount="5.00",
            bankReference=f"CONC-DIG-{os.getpid()}-{i}",
            bankTime="2026-11-26T09:30:00Z",
        )  # fmt: skip
        for i in range(6)
    ]

    def poster(body):
        return lambda: requests.post(
            f"{url}/smartpm/soap/vending",
            data=body,
            headers={"Content-Type": "text/xml; charset=utf-8"},
            timeout=120,
        )

    responses = _at_once([poster(body) for body in bodies])
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [500] * 5, [r.text[:300] for r in responses]
    refused = [etree.fromstring(r.content) for r in responses if r.status_code == 500]
    assert {f.findtext(".//faultcode") for f in refused} == {"wsse:FailedAuthentication"}
    assert all("nonce was already used" in f.findtext(".//faultstring") for f in refused)
    sold = [_soap_answer(r) for r in responses if r.status_code == 200]
    sales = _bank_sales(registry, login)
    assert [s[1] for s in sales] == [sold[0]["reference"]]
    with registry.cursor() as cr:
        cr.execute("SELECT count(*) FROM smartpm_soap_nonce WHERE user_id = %s", [uid])
        assert cr.fetchone()[0] == 1

    # the bank's zeep client, from the WSDL, over SOAP 1.2 with a fresh digest each call
    client = zeep.Client(
        f"{url}/smartpm/soap/vending?wsdl", wsse=UsernameToken(login, secret, use_digest=True)
    )
    service = client.bind("VendingService", "VendingSoap12Port")
    receipt = service.QueryPurchase(bankReference=sold[0]["bankReference"])
    assert receipt.reference == sold[0]["reference"]


def test_six_identical_xmlrpc_purchases_at_once_get_one_receipt(bank_server):
    import xmlrpc.client

    url, db, registry, login, key, serial = bank_server
    uid = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/common").authenticate(db, login, key, {})
    ref = f"CONC-XR-{os.getpid()}"

    def call():
        return xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/object").execute_kw(
            db, uid, key, "smartpm.bank.api", "purchase",
            [serial, 5.0, False, ref, "2026-11-26T09:30:00Z"],
        )  # fmt: skip

    receipts = _at_once([call] * 6)
    assert all(isinstance(r, dict) for r in receipts), receipts
    assert all(r == receipts[0] for r in receipts), receipts
    sales = _bank_sales(registry, login)
    assert [(s[1], s[2]) for s in sales] == [(receipts[0]["reference"], "bank_xmlrpc")]


def test_one_reference_on_both_protocols_at_once_is_one_sale(bank_server):
    import xmlrpc.client

    import requests

    url, db, registry, login, key, serial = bank_server
    uid = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/common").authenticate(db, login, key, {})
    ref = f"CONC-BOTH-{os.getpid()}"
    body = _soap_envelope(
        login, key, "Purchase", meterNumber=serial, amount="5.00", bankReference=ref,
        bankTime="2026-11-26T09:30:00Z",
    )  # fmt: skip

    def soap_call():
        response = requests.post(f"{url}/smartpm/soap/vending", data=body, timeout=120)
        return _soap_answer(response)["reference"]

    def rpc_call():
        return xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/object").execute_kw(
            db, uid, key, "smartpm.bank.api", "purchase",
            [serial, 5.0, False, ref, "2026-11-26T09:30:00Z"],
        )["reference"]  # fmt: skip

    references = _at_once([soap_call, rpc_call] * 3)
    assert len(set(references)) == 1, references
    assert len(_bank_sales(registry, login)) == 1


def test_one_reference_for_two_meters_at_once_is_one_sale_and_a_duplicate(bank_server):
    import requests

    url, _db, registry, login, key, serial = bank_server
    ref = f"CONC-TWO-{os.getpid()}"

    def buy(serial):
        body = _soap_envelope(
            login, key, "Purchase", meterNumber=serial, amount="5.00", bankReference=ref,
            bankTime="2026-11-26T09:30:00Z",
        )  # fmt: skip
        return _soap_answer(requests.post(f"{url}/smartpm/soap/vending", data=body, timeout=120))

    answers = _at_once([lambda: buy(serial), lambda: buy(serial + "-B")] * 2)
    faults = [a.get("fault") for a in answers]
    assert set(faults) <= {None, "DUPLICATE_REFERENCE"}, answers
    assert None in faults and "DUPLICATE_REFERENCE" in faults, answers
    sales = _bank_sales(registry, login)
    assert len(sales) == 1
    assert {a["reference"] for a in answers if "reference" in a} == {sales[0][1]}


def test_chunked_body_over_the_limit_is_refused_by_a_real_server(bank_server):
    import requests

    url, _db, _registry, login, key, serial = bank_server
    start = _soap_envelope(login, key, "QueryCustomer", meterNumber=serial)[:-40]

    def chunks():
        yield start
        for _i in range(80):  # 80 KiB of comments, beyond the 64 KiB limit
            yield b"<!--" + b"x" * 1017 + b"-->"

    response = requests.post(
        f"{url}/smartpm/soap/vending",
        data=chunks(),
        headers={"Content-Type": "text/xml"},
        timeout=60,
    )
    assert response.status_code == 500
    assert _soap_answer(response)["fault"] == "INVALID_REQUEST"
    # and the server goes on serving
    ok = requests.post(
        f"{url}/smartpm/soap/vending",
        data=_soap_envelope(login, key, "QueryCustomer", meterNumber=serial),
        timeout=60,
    )
    assert _soap_answer(ok)["meterNumber"] == serial
