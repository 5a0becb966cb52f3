"""Object maps once per claim (``object_maps: "per_claim"``, docs/job-protocol.md): the
bridge parses each profile's map once and gives every job of the profile that map, never
the contract's; an Odoo from before claim options is claimed from without them."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from vendor_profile import vendor_object_map  # noqa: E402

from meter_bridge.errors import JobError  # noqa: E402
from meter_bridge.object_map import DEFAULT_MAP, FUNCTIONS, ObjectMap, ObjectMapCache  # noqa: E402
from meter_bridge.odoo_client import OdooClient  # noqa: E402

try:
    from test_bridge_service_fakes import fake_odoo, running, settings_for, wait_until
except ImportError:  # tests/ turned into a package
    from tests.test_bridge_service_fakes import fake_odoo, running, settings_for, wait_until

pytestmark = pytest.mark.timeout(30)

VENDOR_RELAY = "0.1.96.3.10.255"
CONTRACT_RELAY = "0.0.96.3.10.255"


def contract_object_map():
    """The SmartPM profile's map as Odoo sends it (every function at the contract's code)."""
    out = {}
    for name, ((obis, ic), _classes, attr) in FUNCTIONS.items():
        out[name] = {"obis": obis, "ic": ic, **({"attribute": attr} if attr else {})}
    return out


def job(job_id, key, raw=None):
    meter = {"serial_number": f"M{job_id}", "object_map_key": key}
    if raw is not None:
        meter["object_map"] = raw
    return {"id": job_id, "job_type": "ping", "meter": meter}


def per_claim_answer():
    """Two profiles, five jobs, each map in the first job of its key only."""
    return [
        job(1, "vendor", vendor_object_map()),
        job(2, "smartpm", contract_object_map()),
        job(3, "vendor"),
        job(4, "smartpm"),
        job(5, "vendor"),
    ]


def relay_of(job_dict):
    return ObjectMap.from_meter(job_dict["meter"])["relay"][0]


def test_jobs_of_another_vendors_profile_get_that_profiles_map_never_the_default():
    cache = ObjectMapCache()
    jobs = cache.resolve(per_claim_answer())
    assert [relay_of(j) for j in jobs] == [
        VENDOR_RELAY,
        CONTRACT_RELAY,
        VENDOR_RELAY,
        CONTRACT_RELAY,
        VENDOR_RELAY,
    ]
    assert cache.parses == 2  # once per map, not once per job
    vendor = ObjectMap.from_meter(jobs[4]["meter"])
    assert vendor is ObjectMap.from_meter(jobs[0]["meter"]) and vendor is not DEFAULT_MAP


def test_a_key_whose_map_is_not_in_the_claim_fails_the_job_retried_and_never_uses_the_default():
    cache = ObjectMapCache()
    cache.resolve([job(1, "vendor", vendor_object_map())])
    (orphan,) = cache.resolve([job(2, "vendor")])  # an earlier claim's map does not count
    with pytest.raises(JobError, match="object map vendor was not in this job's claim") as exc:
        ObjectMap.from_meter(orphan["meter"])
    assert exc.value.retryable


def test_an_equal_map_of_a_later_claim_is_not_parsed_again_and_a_changed_one_is():
    cache = ObjectMapCache()
    cache.resolve(per_claim_answer())
    cache.resolve(per_claim_answer())
    assert cache.parses == 2
    moved = {**vendor_object_map(), "relay": {"obis": "0.2.96.3.10.255", "ic": 70}}
    (j,) = cache.resolve([job(1, "vendor", moved)])  # same key, other content: content wins
    assert cache.parses == 3
    assert relay_of(j) == "0.2.96.3.10.255"


def test_the_cache_is_bounded():
    cache = ObjectMapCache(size=2)
    for n in range(5):
        cache.resolve([job(n, f"k{n}", vendor_object_map())])
    assert len(cache._parsed) == 2


def test_a_bad_map_fails_every_job_of_its_key_with_the_reason():
    bad = {**vendor_object_map(), "relay": {"obis": "0.1.96.300.10.255", "ic": 70}}
    jobs = ObjectMapCache().resolve([job(1, "bad", bad), job(2, "bad")])
    for j in jobs:
        with pytest.raises(JobError, match="is not an OBIS code") as exc:
            ObjectMap.from_meter(j["meter"])
        assert not exc.value.retryable


def test_per_job_maps_of_an_older_odoo_are_parsed_with_their_job_as_before():
    raw = vendor_object_map()
    jobs = ObjectMapCache().resolve([{"id": 1, "meter": {"object_map": raw}}])
    assert jobs[0]["meter"]["object_map"] is raw
    assert relay_of(jobs[0]) == VENDOR_RELAY
    assert ObjectMap.from_meter({"serial_number": "X"}) is DEFAULT_MAP


def test_the_bridge_claims_maps_per_claim_and_runs_each_job_on_its_profiles_map():
    seen = {}

    def executor(job, *, deadline_s=None):
        seen[job["id"]] = relay_of(job)
        return {}

    with fake_odoo() as odoo:
        vendor = [odoo.add_job(serial=f"V{n}", object_map=vendor_object_map()) for n in range(3)]
        smartpm = [odoo.add_job(serial=f"S{n}", object_map=contract_object_map()) for n in range(2)]
        with running(settings_for(odoo.url, concurrency=1, prefetch=8, batch_size=10), executor):
            assert wait_until(lambda: all(odoo.state(i) == "done" for i in vendor + smartpm))
        first = odoo.calls_of("claim")[0]
        assert first[3] == {"object_maps": "per_claim"}
    assert {i: seen[i] for i in vendor} == dict.fromkeys(vendor, VENDOR_RELAY)
    assert {i: seen[i] for i in smartpm} == dict.fromkeys(smartpm, CONTRACT_RELAY)


def test_an_odoo_without_claim_options_is_claimed_from_without_them_from_then_on():
    seen = {}

    def executor(job, *, deadline_s=None):
        seen[job["id"]] = relay_of(job)
        return {}

    with fake_odoo() as odoo:
        odoo.has_claim_options = False
        a = odoo.add_job(serial="V1", object_map=vendor_object_map())
        b = odoo.add_job(serial="V2", object_map=vendor_object_map())
        with running(settings_for(odoo.url, concurrency=1, prefetch=0, batch_size=1), executor):
            assert wait_until(lambda: odoo.state(a) == odoo.state(b) == "done")
        # refused once with the options, then never sent again
        claims = odoo.calls_of("claim")
        assert len(claims[0]) == 4 and claims[0][3]["object_maps"] == "per_claim"
        assert all(len(args) == 3 for args in claims[1:])
    # each job ran on its own (per-job) map, the vendor's
    assert seen == {a: VENDOR_RELAY, b: VENDOR_RELAY}


def test_a_claim_without_options_sends_three_arguments():
    with fake_odoo() as odoo:
        client = OdooClient(odoo.url, "testdb", "bridge", "secret", timeout=2.0)
        assert client.claim("b1", 5, 60) == []
        assert client.claim("b1", 5, 60, {}) == []
        assert [len(args) for args in odoo.calls_of("claim")] == [3, 3]
