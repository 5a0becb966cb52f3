# SPDX-License-Identifier: GPL-2.0-or-later
"""Gurux's own client (GXDLMSClient, gurux-dlms from PyPI) against the simulator: the
association view and every attribute it lists as readable, with every authentication the
simulator offers and both ciphering styles, wrapper and HDLC; a command; and the canaries
of the gurux server work-arounds these need (meter_sim/gurux_compat.py)."""

from __future__ import annotations

import pytest
from gurux_client import GuruxSession
from gurux_dlms import GXByteBuffer, GXDLMSSettings, GXReplyData
from gurux_dlms.enums import (
    AccessMode,
    Authentication,
    Conformance,
    DataType,
    InterfaceType,
    MethodAccessMode,
    ObjectType,
    Security,
)
from gurux_dlms.objects import GXDLMSAssociationLogicalName, GXDLMSData
from gurux_dlms.secure import GXDLMSSecureClient
from gurux_dlms.ValueEventArgs import ValueEventArgs

from meter_bridge.codec import decode_data
from meter_bridge.dlms import MeterConnection
from meter_sim import gurux_compat, objects, server
from meter_sim.model import MeterConfig, MeterModel
from meter_sim.testing import hls_job_meter

pytestmark = pytest.mark.timeout(120)
KEYS = {
    "encryption_key": "000102030405060708090a0b0c0d0e0f",
    "authentication_key": "d0d1d2d3d4d5d6d7d8d9dadbdcdddedf",
}


def _session(fleet, serial, **kw) -> GuruxSession:
    model = fleet.meter(serial)
    if model.config.auth == "hls" and kw.get("auth", "hls") == "hls":
        kw.setdefault("auth", "hls")
        kw.update(keys=KEYS, invocation_counter=(model.client_invocation_counter or 0) + 1)
    elif model.config.auth == "lls" and "auth" not in kw:
        kw.update(auth="lls", password=model.config.password)
    return GuruxSession(fleet.port_of(serial), framing=model.config.framing, **kw)


def _read_everything(g: GuruxSession, only=None):
    """Read every attribute the object list says is readable (of the objects `only`, if
    given); (objects, reads, failures)."""
    listed = g.object_list()
    reads, failures = 0, []
    for obj in listed:
        if only is not None and obj.logicalName not in only:
            continue
        order = list(range(1, obj.getAttributeCount() + 1))
        if obj.objectType == ObjectType.PROFILE_GENERIC:
            order = [1, 3] + [i for i in order if i not in (1, 3)]  # gurux: columns first
        for index in order:
            if not int(obj.getAccess(index)) & int(AccessMode.READ):
                continue
            try:
                g.read(obj, index)
                reads += 1
            except Exception as e:  # noqa: BLE001 - collected, asserted empty below
                failures.append((obj.logicalName, int(obj.objectType), index, repr(e)))
    return listed, reads, failures


# HLS-GMAC costs gurux's pure-Python AES per APDU: each ciphering style is read in full once
# (glo over the wrapper, general-glo over HDLC); the other two combinations read the
# association view and the money objects.
MONEY = (objects.CLOCK, objects.CREDIT, objects.ACCOUNT, objects.TOKEN_GATEWAY)


@pytest.mark.parametrize(
    "config, session, full",
    [
        (dict(auth="none"), {}, True),
        (dict(auth="none", framing="hdlc"), {}, True),
        (dict(auth="lls", password="secret12"), {}, True),
        (dict(auth="lls", password="secret12", framing="hdlc"), {}, True),
        (dict(auth="hls", **KEYS), dict(general_protection=False), True),
        (dict(auth="hls", **KEYS), dict(general_protection=True), False),
        (dict(auth="hls", framing="hdlc", **KEYS), dict(general_protection=False), False),
        (dict(auth="hls", framing="hdlc", **KEYS), dict(general_protection=True), True),
    ],
    ids=[
        "none",
        "none-hdlc",
        "lls",
        "lls-hdlc",
        "hls-glo",
        "hls-general-glo",
        "hls-glo-hdlc",
        "hls-general-glo-hdlc",
    ],
)
def test_gurux_client_reads_the_association_view_and_every_listed_object(
    sim_fleet, config, session, full
):
    fleet = sim_fleet(MeterConfig("SIM00001", **config))
    with _session(fleet, "SIM00001", **session) as g:
        listed, reads, failures = _read_everything(g, None if full else MONEY)
        if config["auth"] == "hls":
            granted = g.client.negotiatedConformance & Conformance.GENERAL_PROTECTION
            assert bool(granted) == session["general_protection"]
    assert failures == []
    served = {(int(o.objectType), o.logicalName) for o in listed}
    assert served == {(int(o.objectType), o.logicalName) for o in objects.build_objects("SIM00001")}
    by_ln = {o.logicalName: o for o in listed}
    clock = by_ln[objects.CLOCK]
    assert clock.time.value.year >= 2024  # decoded by gurux as a date-time
    if config["auth"] == "hls":
        assert reads > (100 if full else 20)
        credit = by_ln[objects.CREDIT]
        assert credit.currentCreditAmount == fleet.meter("SIM00001").credit_wh
        assert by_ln[objects.ACCOUNT].availableCredit == credit.currentCreditAmount


def test_object_list_access_rights_follow_the_association(sim_fleet):
    fleet = sim_fleet(MeterConfig("SIM00001", auth="hls", **KEYS))
    with _session(fleet, "SIM00001", auth="none") as g:  # the public client 16
        public = {o.logicalName: o for o in g.object_list()}
    with _session(fleet, "SIM00001") as g:
        management = {o.logicalName: o for o in g.object_list()}
    assert public[objects.CLOCK].getAccess(2) == AccessMode.READ
    assert public[objects.CREDIT].getAccess(2) == AccessMode.NO_ACCESS
    assert public[objects.DISCONNECT_CONTROL].getMethodAccess(1) == MethodAccessMode.NO_ACCESS
    assert management[objects.CREDIT].getAccess(2) == AccessMode.READ_WRITE
    assert management[objects.DISCONNECT_CONTROL].getMethodAccess(1) == MethodAccessMode.ACCESS
    # the LLS secret is never readable
    assert management[objects.ASSOCIATION_LN].getAccess(7) == AccessMode.WRITE
    assert public[objects.ASSOCIATION_LN].getAccess(7) == AccessMode.NO_ACCESS


@pytest.mark.parametrize("general_protection", [False, True], ids=["glo", "general-glo"])
def test_gurux_client_commands_the_relay(sim_fleet, general_protection):
    fleet = sim_fleet(MeterConfig("SIM00001", auth="hls", **KEYS))
    model = fleet.meter("SIM00001")
    with _session(fleet, "SIM00001", general_protection=general_protection) as g:
        relay = {o.logicalName: o for o in g.object_list()}[objects.DISCONNECT_CONTROL]
        g.method(relay, 1, 0, DataType.INT8)  # remote_disconnect
        assert model.relay_connected is False
        g.method(relay, 2, 0, DataType.INT8)  # remote_reconnect
    assert model.relay_connected is True


def test_bridge_reads_the_association_view(sim_fleet):
    fleet = sim_fleet(MeterConfig("SIM00001", auth="hls", **KEYS))
    model = fleet.meter("SIM00001")
    with MeterConnection(hls_job_meter(model, fleet.port_of("SIM00001"))) as conn:
        view = decode_data(conn.get_raw(objects.ASSOCIATION_LN, 15, 2))
        partners = decode_data(conn.get_raw(objects.ASSOCIATION_LN, 15, 3))
        context = decode_data(conn.get_raw(objects.ASSOCIATION_LN, 15, 5))
    assert len(view) == len(objects.build_objects("SIM00001"))
    class_id, version, ln, (attribute_access, method_access) = view[2]
    assert (class_id, ln) == (8, bytes([0, 0, 1, 0, 0, 255]))
    assert [a[0] for a in attribute_access] == list(range(1, 10))
    assert partners == [1, 1]  # client 1, server 1
    assert context[0][1] == "1"  # conformance bit 1: general-protection granted
    assert context[3] == 6  # DLMS version


# --- canaries: each fails the day gurux fixes the bug its work-around is for -----------------
def test_canary_upstream_association_view_attributes_fail():
    settings = GXDLMSSettings(True, None)
    association = GXDLMSAssociationLogicalName(objects.ASSOCIATION_LN)
    association.objectList.append(GXDLMSData(objects.LOGICAL_DEVICE_NAME))
    for index, error in ((2, AttributeError), (3, TypeError), (5, ValueError)):
        with pytest.raises(error):
            association.getValue(settings, ValueEventArgs(settings, association, index, 0, None))


def _gurux_hls_in_process(model: MeterModel) -> GXDLMSSecureClient:
    """HLS-GMAC with service-specific ciphering, frames handed to the server directly."""
    srv = server.make_server(model)
    client = GXDLMSSecureClient(True, 1, 1, Authentication.HIGH_GMAC, None, InterfaceType.WRAPPER)
    cipher = client.settings.cipher
    cipher.systemTitle = bytearray(b"GURUXCLI")
    cipher.security = Security.AUTHENTICATION_ENCRYPTION
    cipher.blockCipherKey = bytearray.fromhex(KEYS["encryption_key"])
    cipher.authenticationKey = bytearray.fromhex(KEYS["authentication_key"])
    cipher.invocationCounter = 1
    client.proposedConformance &= ~Conformance.GENERAL_PROTECTION

    def exchange(frames):
        reply = GXReplyData()
        for frame in frames:
            for out in server.handle_bytes(srv, bytes(frame)):
                client.getData(GXByteBuffer(bytearray(out)), reply, GXReplyData())
        return reply

    client.parseAareResponse(exchange(client.aarqRequest()).data)
    client.parseApplicationAssociationResponse(
        exchange(client.getApplicationAssociationRequest()).data
    )
    return client


def test_canary_upstream_cannot_decipher_service_specific_requests(monkeypatch):
    from gurux_dlms.GXDLMS import GXDLMS

    model = MeterModel(MeterConfig("SIM00001", auth="hls", **KEYS))
    assert _gurux_hls_in_process(model)  # with the work-around
    upstream = gurux_compat._handle_glo_ded_request.upstream
    monkeypatch.setattr(GXDLMS, "handleGloDedRequest", classmethod(upstream))
    with pytest.raises(Exception, match="(?i)server to client do not match"):
        _gurux_hls_in_process(MeterModel(MeterConfig("SIM00002", auth="hls", **KEYS)))


def test_conformance_bits_match_the_blue_book_order():
    bits = gurux_compat.conformance_bits(Conformance.GENERAL_PROTECTION | Conformance.GET)
    text = format(int.from_bytes(bits, "big"), "024b")
    assert text[1] == "1" and text[19] == "1" and text.count("1") == 2
