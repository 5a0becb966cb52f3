"""The bridge against a meter it was not written with (tests/quirky_meter.py): stray bytes,
garbled answers, an invocation counter starting at 0, another challenge length, a meter that
refuses general-block-transfer and one that takes only service-specific ciphering."""

from __future__ import annotations

import logging
import struct

import pytest
from dlms_cosem import exceptions
from dlms_cosem.connection import DlmsConnection, make_conformance
from dlms_cosem.protocol import xdlms
from dlms_cosem.security import NoSecurityAuthentication
from quirky_meter import AUTH_KEY, ENC_KEY, Quirks, QuirkyMeter

from meter_bridge import dlms, dlms_compat
from meter_bridge.dlms import MeterConnection
from meter_bridge.errors import JobError, MeterRefused
from meter_bridge.executors import execute_job

pytestmark = pytest.mark.timeout(60)
ENERGY, VOLTAGE, CLOCK = "1.0.1.8.0.255", "1.0.32.7.0.255", "0.0.1.0.0.255"


def _read_job(meter: dict, *obis: str) -> dict:
    return {
        "job_type": "read",
        "meter": meter,
        "payload": {"objects": [{"obis": o} for o in obis]},
    }


# --- trailing bytes -------------------------------------------------------------------------
def test_value_followed_by_stray_bytes_is_kept_and_logged(caplog):
    quirks = Quirks(trailing={ENERGY: b"\x00" * 18})
    with QuirkyMeter(quirks) as meter, caplog.at_level(logging.WARNING, "meter_bridge.dlms"):
        with MeterConnection(meter.meter()) as conn:
            assert conn.get_scaled(ENERGY) == (123450, "Wh")
            assert any("18 trailing bytes" in w for w in conn.warnings)
    assert "18 trailing bytes after the value ignored" in caplog.text


def test_a_truncated_value_is_still_refused():
    objects = {(3, ENERGY, 2): b"\x06\x00\x00"}
    with QuirkyMeter(Quirks(), objects) as meter, MeterConnection(meter.meter()) as conn:
        with pytest.raises(JobError, match="undecodable answer"):
            conn.get(ENERGY, 3, 2)


# --- garbled answers --------------------------------------------------------------------------
def test_canary_upstream_state_machine_stays_stuck_after_a_garbled_answer():
    """Why the bridge opens a fresh association: after next_event() raised on a garbled
    answer, dlms-cosem refuses the next request (state AWAITING_GET_RESPONSE)."""
    conn = DlmsConnection.with_pre_established_association(
        conformance=make_conformance(None, False)
    )
    request = xdlms.GetRequestNormal(
        cosem_attribute=MeterConnection._attribute(ENERGY, 3, 2), access_selection=None
    )
    conn.send(request)
    conn.receive_data(b"\xc4\x02\xc1\x01\x00\x00\x00\x01\x01\x04\x04")
    with pytest.raises(AssertionError):
        conn.next_event()
    with pytest.raises(exceptions.LocalDlmsProtocolError, match="AWAITING_GET_RESPONSE"):
        conn.send(request)


def test_garbled_answer_is_that_objects_error_and_the_others_are_read():
    with QuirkyMeter(Quirks(garble={VOLTAGE})) as meter:
        result = execute_job(_read_job(meter.meter(), VOLTAGE, ENERGY, CLOCK))
        assert meter.associations == 2  # a fresh one after the garbled answer
    assert "AssertionError" in result["errors"][VOLTAGE]
    values = {r["obis"]: r["value"] for r in result["readings"]}
    assert values[ENERGY] == 123450
    assert values[CLOCK].startswith("2026-03-29T01:30:00")


def test_the_garbled_object_read_again_gives_its_value():
    with QuirkyMeter(Quirks(garble={VOLTAGE})) as meter, MeterConnection(meter.meter()) as conn:
        with pytest.raises(JobError, match="protocol error"):
            conn.get_scaled(VOLTAGE)
        assert conn.get_scaled(VOLTAGE) == (230.0, "V")
        assert conn.fresh_associations == 1


def test_a_meter_answering_only_garbage_ends_the_job():
    quirks = Quirks(garble={ENERGY}, garble_times=100)
    with QuirkyMeter(quirks) as meter, MeterConnection(meter.meter()) as conn:
        for _ in range(dlms.MAX_FRESH_ASSOCIATIONS + 1):
            with pytest.raises(JobError, match="protocol error"):
                conn.get(ENERGY, 3, 2)
        with pytest.raises(JobError, match="gave up after"):
            conn.get(ENERGY, 3, 2)
        assert meter.associations == dlms.MAX_FRESH_ASSOCIATIONS + 1


@pytest.mark.parametrize(
    "error",
    [AssertionError(), TypeError("'NoneType' object is not subscriptable"), struct.error("x")],
    ids=["assert", "type", "struct"],
)
def test_any_library_exception_is_a_job_error(monkeypatch, error):
    with QuirkyMeter() as meter, MeterConnection(meter.meter()) as conn:

        def boom():
            raise error

        monkeypatch.setattr(conn.client, "next_event", boom)
        with pytest.raises(JobError) as info:
            conn.get(ENERGY, 3, 2)
        assert not isinstance(info.value, MeterRefused)
        monkeypatch.undo()
        assert conn.get(ENERGY, 3, 2) == 12345  # a fresh association, the next read works


def test_hls_fresh_association_goes_on_with_the_counters():
    quirks = Quirks(auth="hls_gmac", garble={VOLTAGE})
    with QuirkyMeter(quirks) as meter:
        result = execute_job(_read_job(meter.meter(invocation_counter=41), VOLTAGE, ENERGY))
        assert meter.refusals == []  # no counter reused across the two associations
        assert meter.associations == 2
    assert result["readings"][0]["value"] == 123450
    # two associations of 4 ciphered APDUs each (AARQ, HLS reply, GET, ...), from 42 on
    assert result["invocation_counter"] > 41 + 4


# --- invocation counter 0 -----------------------------------------------------------------
def test_canary_upstream_refuses_a_first_meter_counter_of_zero():
    conn = DlmsConnection(
        client_system_title=b"SPMBRIDG", authentication=NoSecurityAuthentication()
    )
    with pytest.raises(exceptions.LocalDlmsProtocolError):
        conn.update_meter_invocation_counter(0)


def test_a_meter_counter_of_zero_is_accepted_once():
    conn = dlms_compat.DlmsConnectionCompat(
        client_system_title=b"SPMBRIDG", authentication=NoSecurityAuthentication()
    )
    conn.update_meter_invocation_counter(0)
    conn.update_meter_invocation_counter(1)
    with pytest.raises(exceptions.LocalDlmsProtocolError):
        conn.update_meter_invocation_counter(1)
    with pytest.raises(exceptions.LocalDlmsProtocolError):
        conn.update_meter_invocation_counter(0)


def test_hls_meter_whose_counter_starts_at_zero_is_read():
    with QuirkyMeter(Quirks(auth="hls_gmac", counter_start=0)) as meter:
        result = execute_job(_read_job(meter.meter(), ENERGY))
    assert result["errors"] == {}
    assert result["readings"][0]["value"] == 123450


# --- HLS challenge length -------------------------------------------------------------------
def test_challenge_length_is_configurable():
    quirks = Quirks(auth="hls_gmac", client_challenge_length=16, server_challenge_length=48)
    with QuirkyMeter(quirks) as meter:
        with pytest.raises(MeterRefused, match="association refused"):
            MeterConnection(meter.meter()).open()  # 32 bytes by default
        assert meter.refusals == ["client challenge of 32 bytes"]
        with MeterConnection(meter.meter(hls_challenge_length=16)) as conn:
            assert conn.get(ENERGY, 3, 2) == 12345


@pytest.mark.parametrize("length", [7, 65, "x"])
def test_challenge_length_outside_the_blue_book_range_is_refused(length):
    with pytest.raises(JobError, match="hls_challenge_length") as info:
        MeterConnection({"auth": "hls_gmac", "hls_challenge_length": length})
    assert not info.value.retryable


# --- conformance ----------------------------------------------------------------------------
def test_canary_upstream_conformance_proposes_general_block_transfer():
    assert make_conformance(ENC_KEY, False).general_block_transfer


def test_bridge_proposes_no_general_block_transfer():
    conformance = dlms_compat.bridge_conformance(True)
    assert not conformance.general_block_transfer
    assert conformance.general_protection and conformance.block_transfer_with_get_or_read
    assert not dlms_compat.bridge_conformance(False).general_protection


def test_meter_refusing_gbt_accepts_the_bridge():
    with QuirkyMeter(Quirks(refuse_gbt=True)) as meter:
        with MeterConnection(meter.meter()) as conn:
            assert conn.get(ENERGY, 3, 2) == 12345
        assert meter.refusals == []


# --- ciphering style ------------------------------------------------------------------------
def test_canary_upstream_ciphers_general_glo_whatever_was_granted():
    conn = DlmsConnection(
        client_system_title=b"SPMBRIDG",
        authentication=NoSecurityAuthentication(),
        global_encryption_key=ENC_KEY,
        global_authentication_key=AUTH_KEY,
        client_invocation_counter=1,
    )
    conn.conformance.general_protection = False
    request = xdlms.GetRequestNormal(
        cosem_attribute=MeterConnection._attribute(ENERGY, 3, 2), access_selection=None
    )
    assert isinstance(conn.protect(request), xdlms.GeneralGlobalCipher)


@pytest.mark.parametrize(
    "granted, style", [(False, "glo"), (True, "general-glo")], ids=["glo", "general-glo"]
)
def test_ciphering_follows_what_the_meter_granted(granted, style):
    quirks = Quirks(auth="hls_gmac", general_protection=granted)
    with QuirkyMeter(quirks) as meter:
        result = execute_job(_read_job(meter.meter(), ENERGY, VOLTAGE))
        assert meter.refusals == []
        assert set(meter.requests) == {style}
    assert [r["value"] for r in result["readings"]] == [123450, 230.0]


def test_service_specific_request_bytes():
    raw = dlms_compat.service_specific_glo(200, b"\x30", 7, b"\xaa" * 20)
    assert raw == b"\xc8\x19\x30\x00\x00\x00\x07" + b"\xaa" * 20


def test_canary_upstream_initiate_request_loses_the_first_conformance_byte():
    request = xdlms.InitiateRequest(
        proposed_conformance=dlms_compat.bridge_conformance(True),
        client_max_receive_pdu_size=65535,
    )
    parsed = xdlms.InitiateRequest.from_bytes(request.to_bytes())
    assert parsed.proposed_conformance.get  # the other bytes survive
    assert not parsed.proposed_conformance.general_protection  # the first byte is lost
