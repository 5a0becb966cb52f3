"""The simulator's servers share a profile's gurux objects (objects.profile_objects) and
take a meter's identification and association objects back from its connections that have
ended (server.ObjectSet); per-meter state stays per meter: credit, relay, counters live on
each meter's model, and two connections at once never share an association object."""

from __future__ import annotations

import pytest
from dlms_cosem.client import DataResultError
from sim_fixtures import fleet_fixture, run_job

from meter_sim import objects, server
from meter_sim.model import MeterConfig
from meter_sim.testing import attr, credit_token, dlms_client, management_client

fleet = fleet_fixture(
    MeterConfig("SIM00001", auth="hls"),
    MeterConfig("SIM00002", auth="hls"),
    MeterConfig("SIM00003", auth="hls", framing="hdlc"),
)


def add_credit(fleet, serial, transfer_number, kwh):
    wh = round(kwh * 1000)
    token = {"token": credit_token(transfer_number, wh, serial).hex(), "kwh": kwh}
    return run_job(fleet, serial, "add_credit", token)


def credit_on_the_wire(fleet, serial) -> int:
    """The meter's credit (IC 112 attribute 2) read over a new management association."""
    with management_client(fleet, serial) as client:
        raw = client.get(attr(112, objects.CREDIT, 2))
    return int.from_bytes(raw[1:5], "big", signed=True)


def test_credit_on_one_meter_does_not_appear_on_another_of_its_profile(fleet):
    one, other = fleet.meter("SIM00001"), fleet.meter("SIM00002")
    before_one, before_other = one.credit_wh, other.credit_wh
    assert credit_on_the_wire(fleet, "SIM00002") == before_other
    result = add_credit(fleet, "SIM00001", 7001, 3.25)
    assert result["credit_kwh"] == pytest.approx((before_one + 3250) / 1000, abs=0.01)
    assert other.credit_wh == before_other
    assert credit_on_the_wire(fleet, "SIM00002") == before_other
    # the other meter refuses this meter's token: nothing of the first came across
    assert run_job(fleet, "SIM00002", "ping")["credit_kwh"] == pytest.approx(
        before_other / 1000, abs=0.01
    )


@pytest.mark.parametrize("serial", ["SIM00001", "SIM00003"], ids=["wrapper", "hdlc"])
def test_a_meters_next_connection_sees_the_credit_of_the_one_before(fleet, serial):
    model = fleet.meter(serial)
    before = model.credit_wh
    add_credit(fleet, serial, 7100 + int(serial[-1]), 1.5)
    assert credit_on_the_wire(fleet, serial) == before + 1500
    again = add_credit(fleet, serial, 7100 + int(serial[-1]), 1.5)
    assert again["already_applied"] is True  # the transfer number is the meter's, kept
    assert credit_on_the_wire(fleet, serial) == before + 1500


def test_each_connection_has_its_own_identification_and_association_objects(fleet):
    one = server.make_server(fleet.meter("SIM00001"))
    again = server.make_server(fleet.meter("SIM00001"))
    other = server.make_server(fleet.meter("SIM00002"))
    shared = [o for o in one.items if o.logicalName == objects.CLOCK]
    assert shared and shared[0] in list(other.items)  # the profile's, built once
    for ln in (objects.LOGICAL_DEVICE_NAME, objects.SERIAL_NUMBER, objects.ASSOCIATION_LN):
        mine = next(o for o in one.items if o.logicalName == ln)
        assert all(mine is not o for o in list(again.items) + list(other.items)), ln
    name = next(o for o in other.items if o.logicalName == objects.LOGICAL_DEVICE_NAME)
    assert name.value == b"SIM00002"
    assert [o.logicalName for o in one.items] == [
        o.logicalName for o in objects.build_objects("SIM00001")
    ]


def _plain(value, depth=0):
    """A comparable copy of a gurux object's attribute (nested objects by their fields)."""
    from gurux_dlms.objects import GXDLMSObject

    if isinstance(value, GXDLMSObject) and depth:
        return ("object", value.logicalName)
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((repr(k), _plain(v, depth + 1)) for k, v in value.items()))
    if hasattr(value, "__dict__") and depth < 4:
        return (type(value).__name__, _fields(value, depth + 1))
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    return repr(value)


# set by gurux's server on each object it serves (GXDLMSServer.initialize, the collection's
# append): bookkeeping, neither read back nor on the wire
_BOOKKEEPING = {"start", "parent"}


def _fields(obj, depth=0):
    return tuple(
        (k, _plain(v, depth)) for k, v in sorted(vars(obj).items()) if k not in _BOOKKEEPING
    )


def test_a_management_session_leaves_the_shared_profile_objects_unchanged(fleet):
    shared = objects.profile_objects(fleet.meter("SIM00001").config.object_map)
    before = [_fields(o) for o in shared]
    serial = "SIM00001"
    add_credit(fleet, serial, 7200, 2.0)
    assert run_job(fleet, serial, "set_load_limit", {"load_limit_w": 3300}) == {
        "load_limit_w": 3300
    }
    run_job(fleet, serial, "set_thresholds", {"low_credit_kwh": 4.5, "trip_kwh": -0.5})
    run_job(fleet, serial, "disconnect")
    run_job(fleet, serial, "reconnect")
    run_job(fleet, serial, "read", {"objects": [{"obis": objects.ENERGY_IMPORT}]})
    with management_client(fleet, serial) as client:
        client.get(attr(15, objects.ASSOCIATION_LN, 2))  # the object list
        client.get(attr(7, objects.LOAD_PROFILE, 2))
    assert fleet.meter(serial).load_limit_w == 3300
    assert [_fields(o) for o in shared] == before


def test_a_meter_serves_two_connections_at_once_each_its_own_association(fleet):
    serial = "SIM00002"
    credit = fleet.meter(serial).credit_wh
    with management_client(fleet, serial) as manager:
        public = dlms_client(fleet.port_of(serial))
        with public.session():
            # the public client may not read the credit that the management client reads
            with pytest.raises(DataResultError) as err:
                public.get(attr(112, objects.CREDIT, 2))
            assert "READ_WRITE_DENIED" in str(err.value)
            assert public.get(attr(1, objects.LOGICAL_DEVICE_NAME, 2))[2:] == serial.encode()
        raw = manager.get(attr(112, objects.CREDIT, 2))
    assert int.from_bytes(raw[1:5], "big", signed=True) == credit


def test_a_set_given_back_is_taken_again_as_it_was_built(fleet):
    from gurux_dlms.enums import Authentication
    from gurux_dlms.objects.enums import AssociationStatus

    model = fleet.meter("SIM00002")
    first = server.make_server(model)
    association = first.object_set.association
    built = _fields(association)
    association.associationStatus = AssociationStatus.ASSOCIATED
    association.authenticationMechanismName.mechanismId = Authentication.HIGH_GMAC
    association.applicationContextName.contextId = 3
    association.secret = b"changed by method 2"
    association.userList.append((1, "user"))
    first.release()
    again = server.make_server(model)
    assert again.object_set.association is association  # taken again, not built
    assert _fields(association) == built
    assert list(again.items) == list(first.items)
    again.release()


def _held_sets(fleet, serial):
    return [c.server.object_set for c in list(fleet.net.conns[serial]) if c.server is not None]


def test_two_connections_of_one_meter_never_share_a_set(fleet):
    import time

    serial = "SIM00001"
    with management_client(fleet, serial):
        public = dlms_client(fleet.port_of(serial))
        with public.session():
            public.get(attr(1, objects.LOGICAL_DEVICE_NAME, 2))
            held = _held_sets(fleet, serial)
            assert len(held) == 2 and None not in held
            assert held[0] is not held[1]
            assert held[0].association is not held[1].association
    deadline = time.monotonic() + 5  # the loop sees both lines close
    while _held_sets(fleet, serial) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _held_sets(fleet, serial) == []
    assert {id(s) for s in held} <= {id(s) for s in server.ObjectSet._free[fleet.meter(serial)]}


def test_the_association_view_after_a_management_session_is_a_new_ones(fleet):
    serial = "SIM00003"  # HDLC

    def public_view():
        c = dlms_client(fleet.port_of(serial), framing="hdlc")
        with c.session():
            return [c.get(attr(15, objects.ASSOCIATION_LN, i)) for i in (1, 4, 6, 8)]

    first = public_view()
    with management_client(fleet, serial) as manager:
        managed = [manager.get(attr(15, objects.ASSOCIATION_LN, i)) for i in (4, 6, 8)]
    assert managed[1] != first[2]  # HLS-GMAC's mechanism name, not the public client's
    assert public_view() == first
