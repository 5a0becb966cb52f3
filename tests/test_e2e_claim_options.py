"""End to end: the claim's options (docs/job-protocol.md, "Claim options") through Odoo's
JSON-RPC as the bridge's client sends them: a struct in execute_kw's fourth argument."""

import os

import pytest
from odoo_e2e import locked_meter_vals
from test_e2e_jobs import sell

from meter_bridge.odoo_client import OdooClient, OdooError
from meter_bridge.service import CREDIT_JOB_TYPES, _options_unknown

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        not os.environ.get("SMARTPM_E2E_DB"),
        reason="needs the e2e database that `make test` prepares (SMARTPM_E2E_DB)",
    ),
]
BRIDGE = "e2e-options"


def _meters(odoo, prefix, n):
    tariff = odoo.call("smartpm.tariff", "create", {"name": f"{prefix} 1/kWh", "price_per_kwh": 1})
    tenant = odoo.call("res.partner", "create", {"name": f"{prefix} tenant", "is_tenant": True})
    return [
        odoo.call(
            "smartpm.meter",
            "create",
            {
                "serial_number": f"{prefix}-{i:05d}",
                "host": "127.0.0.1",
                "port": 9,  # never reached: nothing runs these jobs
                "state": "active",
                "tenant_id": tenant,
                "tariff_id": tariff,
                **locked_meter_vals(f"{prefix}-{i:05d}"),
            },
        )
        for i in range(1, n + 1)
    ]


def _state(odoo, job_ids):
    rows = odoo.call("smartpm.meter.job", "read", job_ids, fields=["state", "bridge_id"])
    return {r["id"]: (r["state"], r["bridge_id"]) for r in rows}


def test_the_claim_takes_its_options_over_json_rpc(odoo):
    prefix = f"E2EOPT{os.getpid() % 10000}"
    first, second = _meters(odoo, prefix, 2)
    # `first`'s next job is a ping queued ahead of its credit (better priority)
    ping = odoo.call(
        "smartpm.meter.job", "create", {"meter_id": first, "job_type": "ping", "priority": 5}
    )
    behind = sell(odoo, first, 3, f"{prefix}-a")
    credit = sell(odoo, second, 4, f"{prefix}-b")
    ours = [ping, behind, credit]
    client = OdooClient(odoo.url, odoo.db, "bridge", odoo.api_key, timeout=60)
    claimed = []
    try:
        # refused, nothing claimed: a non-string type, a huge list, an unknown key
        for options in (
            {"job_types": [7]},
            {"job_types": ["add_credit"] * 100000},
            {"busy_meter_ids": ["x"]},
            {"lanes": 1},
        ):
            with pytest.raises(OdooError) as refused:
                client.claim(BRIDGE, 10, 60, options)
            assert refused.value.is_refusal, refused.value.name
            assert all(s == ("pending", False) for s in _state(odoo, ours).values())

        lane = client.claim(BRIDGE, 50, 60, {"job_types": sorted(CREDIT_JOB_TYPES)})
        claimed += [j["id"] for j in lane]
        assert [j["id"] for j in lane if j["id"] in ours] == [credit]
        assert all(j["job_type"] in CREDIT_JOB_TYPES for j in lane)

        # the meter this bridge still runs a job on is not handed out
        normal = client.claim(BRIDGE, 50, 60, {"busy_meter_ids": [first]})
        claimed += [j["id"] for j in normal]
        assert not {ping, behind} & {j["id"] for j in normal}
        assert _state(odoo, [ping, behind]) == {
            ping: ("pending", False),
            behind: ("pending", False),
        }
        # without options, as an older bridge: the meter's first job, the ping
        last = client.claim(BRIDGE, 50, 60)
        claimed += [j["id"] for j in last]
        assert [j["id"] for j in last if j["id"] in ours] == [ping]
    finally:
        if claimed:
            client.release(claimed, BRIDGE)


def test_an_argument_odoo_does_not_take_is_recognised_as_such(odoo):
    # what an Odoo from before the claim's options answers to the fourth argument: the
    # bridge's fallback must recognise it (release takes two, as claim took three)
    client = OdooClient(odoo.url, odoo.db, "bridge", odoo.api_key, timeout=60)
    with pytest.raises(OdooError) as exc:
        client._job("release", [], BRIDGE, {"job_types": ["add_credit"]})
    assert _options_unknown(exc.value, ["job_types"]), (exc.value.name, exc.value.message)
    with pytest.raises(OdooError) as unknown:
        client.claim(BRIDGE, 1, 60, {"lanes": 1})
    assert _options_unknown(unknown.value, ["lanes"])  # an Odoo without that key
    for bad in ({"job_types": ["nope"]}, {"job_types": "add_credit"}, {"busy_meter_ids": [1.5]}):
        with pytest.raises(OdooError) as refused:
            client.claim(BRIDGE, 1, 60, bad)
        assert not _options_unknown(refused.value, bad)  # a bad value is no fallback
