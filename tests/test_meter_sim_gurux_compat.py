"""Canaries: each fails the day gurux-dlms fixes a gap patched in meter_sim/gurux_compat.py.

When one fails, delete the matching patch (and this canary) and run the meter_sim tests.
"""

from __future__ import annotations

import importlib.metadata

import pytest
from gurux_dlms.enums import InterfaceType
from gurux_dlms.GXDLMSLNParameters import GXDLMSLNParameters
from gurux_dlms.GXDLMSServer import GXDLMSServer
from gurux_dlms.GXServerReply import GXServerReply
from gurux_dlms.objects import GXDLMSAssociationLogicalName, GXDLMSData
from gurux_dlms.secure.GXDLMSSecureServer import GXDLMSSecureServer
from gurux_dlms.ValueEventArgs import ValueEventArgs

pytestmark = pytest.mark.timeout(10)


def test_pinned_version():
    assert importlib.metadata.version("gurux-dlms") == "1.0.203"


def test_server_reply_lacks_set_reply():
    for name in ("setReply", "getConnectionInfo", "getCount", "setCount"):
        assert not hasattr(GXServerReply, name), name


def test_server_lacks_methods_the_command_handler_calls():
    for name in (
        "notifyRead",
        "getTransaction",
        "setTransaction",
        "isMultipleBlocks",
        "notifyConnected",
    ):
        assert not hasattr(GXDLMSServer, name), name


def test_value_event_args_not_iterable_upstream():
    # gurux_compat.apply() may have run (meter_sim imported): look at the class's own dict
    # for our patch function, i.e. upstream still has no __iter__ of its own.
    it = ValueEventArgs.__dict__.get("__iter__")
    assert it is None or it.__module__ == "meter_sim.gurux_compat"


def test_ln_parameters_lack_is_multiple_blocks_and_set_status():
    for name in ("isMultipleBlocks", "setStatus"):
        f = GXDLMSLNParameters.__dict__.get(name)
        assert f is None or f.__module__ == "meter_sim.gurux_compat", name


class _Bare(GXDLMSServer):
    """Upstream server with no meter_sim mixins."""


def _bare(interface=InterfaceType.WRAPPER):
    _Bare.__abstractmethods__ = frozenset()
    return _Bare(True, interface)


def test_initialize_appends_collection_to_object_list():
    s = _bare()
    s.items.append(GXDLMSData("0.0.42.0.0.255"))
    s.items.append(GXDLMSAssociationLogicalName("0.0.40.0.0.255"))
    with pytest.raises(TypeError):
        s.initialize()


def test_release_response_length_is_wrong():
    s = _bare()
    s.items.append(GXDLMSAssociationLogicalName("0.0.40.0.0.255"))
    from meter_sim.gurux_compat import fill_association_object_list

    fill_association_object_list(s)
    s.initialize()
    s.handleReleaseRequest(None)
    rlre = bytes(s.replyData.array())
    assert rlre[0] == 0x63 and rlre[1] != len(rlre) - 2


def test_snrm_without_hdlc_setup_fails():
    s = _bare(InterfaceType.HDLC)
    from gurux_dlms.GXByteBuffer import GXByteBuffer

    with pytest.raises(AttributeError):
        s.handleSnrmRequest(GXByteBuffer())
    with pytest.raises(AttributeError):
        s.generateDisconnectRequest()


def test_secure_server_keeps_cipher_under_other_name():
    class _Secure(GXDLMSSecureServer):
        pass

    _Secure.__abstractmethods__ = frozenset()
    s = _Secure(True, InterfaceType.WRAPPER)
    assert s.settings.cipher is None and s.settings.ciphering is not None


# --- HLS-GMAC (gurux_compat.apply_hls) -------------------------------------------------------
def _hls_settings(authentication=None):
    from gurux_dlms.enums import Authentication, Security
    from gurux_dlms.GXCiphering import GXCiphering

    settings = _bare().settings
    settings.authentication = authentication or Authentication.HIGH_GMAC
    settings.cipher = GXCiphering(b"SIM00001")
    settings.cipher.security = Security.AUTHENTICATION_ENCRYPTION
    settings.stoCChallenge = bytearray(16)
    settings.ctoSChallenge = bytearray(16)
    settings.sourceSystemTitle = bytearray(b"CLIENT01")
    return settings


def _upstream(owner, name):
    f = owner.__dict__[name]
    f = getattr(f, "__func__", f)
    return getattr(f, "upstream", f)


def test_generate_aare_for_hls_calls_set_uint8_without_value():
    from gurux_dlms._GXAPDU import _GXAPDU
    from gurux_dlms.enums import AssociationResult, SourceDiagnostic
    from gurux_dlms.GXByteBuffer import GXByteBuffer

    settings = _hls_settings()
    with pytest.raises(TypeError):
        _upstream(_GXAPDU, "generateAARE")(
            _GXAPDU,
            settings,
            GXByteBuffer(),
            AssociationResult.ACCEPTED,
            SourceDiagnostic.AUTHENTICATION_REQUIRED,
            settings.cipher,
            None,
            None,
        )


def test_fixed_aare_has_responding_title_and_challenge_lengths():
    from gurux_dlms._GXAPDU import _GXAPDU
    from gurux_dlms.enums import AssociationResult, SourceDiagnostic
    from gurux_dlms.GXByteBuffer import GXByteBuffer

    import meter_sim.server  # noqa: F401  (installs the patches)

    settings = _hls_settings()
    data = GXByteBuffer()
    _GXAPDU.generateAARE(
        settings,
        data,
        AssociationResult.ACCEPTED,
        SourceDiagnostic.AUTHENTICATION_REQUIRED,
        settings.cipher,
        None,
        None,
    )
    aare = bytes(data.array())
    assert aare[0] == 0x61 and aare[1] == len(aare) - 2
    i = aare.index(bytes([0xA4, 10, 0x04, 8]))
    assert aare[i + 4 : i + 12] == b"SIM00001"
    i = aare.index(bytes([0xAA, 18, 0x80, 16]))
    assert aare[i + 4 : i + 20] == bytes(16)


def test_user_information_does_not_advance_invocation_counter():
    from gurux_dlms._GXAPDU import _GXAPDU

    settings = _hls_settings()
    settings.cipher.invocationCounter = 7
    _upstream(_GXAPDU, "getUserInformation")(_GXAPDU, settings, settings.cipher)
    assert settings.cipher.invocationCounter == 7


def test_hls_gmac_reply_to_authentication_fails_on_octet_string():
    from gurux_dlms.GXSecure import GXSecure
    from gurux_dlms.objects import GXDLMSAssociationLogicalName

    settings = _hls_settings()
    reply = GXSecure.secure(
        settings, settings.cipher, 5, settings.stoCChallenge, settings.sourceSystemTitle
    )
    e = ValueEventArgs(settings, GXDLMSAssociationLogicalName(), 1, 0, bytearray(reply))
    with pytest.raises((TypeError, ValueError)):  # int(bytearray)
        _upstream(GXDLMSAssociationLogicalName, "invoke")(
            GXDLMSAssociationLogicalName(), settings, e
        )


def test_fixed_reply_to_authentication_advances_server_counter():
    from gurux_dlms.GXSecure import GXSecure
    from gurux_dlms.objects import GXDLMSAssociationLogicalName

    import meter_sim.server  # noqa: F401

    settings = _hls_settings()
    settings.cipher.invocationCounter = 9
    ln = GXDLMSAssociationLogicalName()
    good = bytes(
        GXSecure.secure(
            settings, settings.cipher, 5, settings.stoCChallenge, settings.sourceSystemTitle
        )
    )
    bad = ValueEventArgs(settings, ln, 1, 0, bytearray(good[:-1] + bytes([good[-1] ^ 1])))
    assert ln.invoke(settings, bad) is None and bad.error != 0
    ok = ValueEventArgs(settings, ln, 1, 0, bytearray(good))
    f_ctos = bytes(ln.invoke(settings, ok))
    assert int.from_bytes(f_ctos[1:5], "big") == 9 and settings.cipher.invocationCounter == 10


def test_method_response_helpers_missing():
    from gurux_dlms.GXDLMSSettings import GXDLMSSettings
    from gurux_dlms.objects import GXDLMSAssociationLogicalName

    for owner, name in (
        (GXDLMSAssociationLogicalName, "getAssociationStatus"),
        (GXDLMSSettings, "setConnected"),
    ):
        f = owner.__dict__.get(name)
        assert f is None or f.__module__ == "meter_sim.gurux_compat", name


def test_cipher_reset_zeroes_invocation_counter():
    from gurux_dlms.GXCiphering import GXCiphering

    c = GXCiphering(b"SIM00001")
    c.invocationCounter = 50
    c.reset()
    assert c.invocationCounter == 0


def test_server_has_no_client_invocation_counter_check():
    # Upstream decrypt accepts any counter; the day it grows a check (C# gurux has
    # expectedInvocationCounter), use it instead of _decrypt_checking_counter.
    from gurux_dlms.GXCiphering import GXCiphering

    s = _bare().settings
    for obj in (s, GXCiphering(b"SIM00001")):
        assert not any("expected" in n.lower() for n in dir(obj)), obj


def test_decrypt_prints_to_stdout():
    import importlib
    import inspect

    src = inspect.getsource(importlib.import_module("gurux_dlms.GXDLMSChippering"))
    assert 'print("Encryption is applied.")' in src


def _ciphered_get(key):
    from gurux_dlms.AesGcmParameter import AesGcmParameter
    from gurux_dlms.enums import Command, Security
    from gurux_dlms.GXCiphering import GXCiphering

    p = AesGcmParameter(
        Command.GLO_GET_REQUEST, bytearray(b"CLIENT01"), key, bytearray(range(0xD0, 0xE0))
    )
    p.security = Security.AUTHENTICATION_ENCRYPTION
    p.invocationCounter = 5
    plain = bytes.fromhex("c001c100010000 2a0000ff0200".replace(" ", ""))
    return plain, bytes(GXCiphering.encrypt(p, bytearray(plain)))


def test_decrypt_does_not_check_the_gcm_tag():
    from gurux_dlms.AesGcmParameter import AesGcmParameter
    from gurux_dlms.GXByteBuffer import GXByteBuffer
    from gurux_dlms.GXCiphering import GXCiphering

    settings = _hls_settings()
    _, apdu = _ciphered_get(bytearray(range(16)))
    wrong = AesGcmParameter(0, bytearray(b"CLIENT01"), bytearray(16), bytearray(range(0xD0, 0xE0)))
    _upstream(GXCiphering, "decrypt")(GXCiphering, settings, wrong, GXByteBuffer(bytearray(apdu)))


def test_gcm_tag_check_accepts_right_key_only():
    from gurux_dlms.AesGcmParameter import AesGcmParameter
    from gurux_dlms.GXByteBuffer import GXByteBuffer
    from gurux_dlms.GXCiphering import GXCiphering

    from meter_sim.gurux_compat import gcm_tag_valid

    settings = _hls_settings()
    plain, apdu = _ciphered_get(bytearray(range(16)))
    for key, valid in ((bytearray(range(16)), True), (bytearray(16), False)):
        p = AesGcmParameter(0, bytearray(b"CLIENT01"), key, bytearray(range(0xD0, 0xE0)))
        out = _upstream(GXCiphering, "decrypt")(
            GXCiphering, settings, p, GXByteBuffer(bytearray(apdu))
        )
        assert (bytes(out) == plain) is valid
        assert gcm_tag_valid(apdu, bytes(out), p) is valid


def test_action_refused_by_method_access_lacks_the_return_parameters_flag(monkeypatch):
    # Canary of gurux_compat.deny_action: refused through onGetMethodAccess (NO_ACCESS),
    # gurux answers `C7 01 C1 03` without the optional-data flag and dlms-cosem cannot
    # parse it. The day this answers read-write-denied, deny_action can go.
    from gurux_dlms.enums import MethodAccessMode

    from meter_sim import objects, server
    from meter_sim.fleet import Fleet
    from meter_sim.model import MeterConfig
    from meter_sim.testing import dlms_client, method

    monkeypatch.setattr(
        server._MeterServerBase, "onGetMethodAccess", lambda self, e: MethodAccessMode.NO_ACCESS
    )
    monkeypatch.setattr(server._MeterServerBase, "onPreAction", lambda self, args: None)
    with Fleet(meters=[MeterConfig("SIM00001")], speed=0) as fleet:
        c = dlms_client(fleet.port_of("SIM00001"))
        c.connect()
        try:
            c.associate()
            with pytest.raises(IndexError):
                c.action(method(70, objects.DISCONNECT_CONTROL, 1), b"\x0f\x00")
        finally:
            c.disconnect()
        assert fleet.meter("SIM00001").relay_connected


# --- segmented general-glo-ciphering requests (HDLC) ----------------------------------------
def _set_long_week_over_hdlc():
    """A ciphered SET of 8 friendly windows (longer than one HDLC frame) to an HDLC meter."""
    import datetime as dt

    from meter_bridge import executors as ex
    from meter_sim.fleet import Fleet
    from meter_sim.model import MeterConfig
    from meter_sim.testing import hls_job_meter

    payload = {
        "utc_offset_min": 0,
        "windows": [{"weekday": d % 7, "start_min": 0, "end_min": 420 + d} for d in range(8)],
        "special_days": [],
        "friendly_limit_kwh": 0,
    }
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    with Fleet(meters=[MeterConfig("SIM00093", framing="hdlc")], speed=0, start=start) as fleet:
        model = fleet.meter("SIM00093")
        job_meter = hls_job_meter(model, fleet.port_of("SIM00093"), timeout_s=3)
        job = {"id": 1, "job_type": "set_friendly_schedule", "payload": payload, "meter": job_meter}
        ex.execute_job(job, deadline_s=15)
        return model.friendly_windows


def test_canary_upstream_does_not_decipher_a_segmented_general_glo_request(monkeypatch):
    from gurux_dlms.GXDLMS import GXDLMS

    from meter_bridge.errors import JobError

    upstream = _upstream(GXDLMS, "getPdu")
    monkeypatch.setattr(GXDLMS, "getPdu", classmethod(upstream))
    with pytest.raises(JobError):
        _set_long_week_over_hdlc()


def test_segmented_general_glo_request_is_deciphered():
    assert len(_set_long_week_over_hdlc()) == 8


# -- AES-GCM (gurux_compat.fast_gcm_stream) -------------------------------------------------
# The DLMS UA Green Book's example: EK, AK, system title, IC, an authenticated-and-encrypted
# GET request and its ciphertext and 12-byte tag.
GREEN_BOOK = dict(
    key=bytes(range(16)),
    auth_key=bytes(range(0xD0, 0xE0)),
    system_title=bytes.fromhex("4D4D4D0000BC614E"),
    ic=0x01234567,
    plain=bytes.fromhex("C0010000080000010000FF0200"),
    cipher=bytes.fromhex("411312FF935A47566827C467BC"),
    tag=bytes.fromhex("7D825C3BE4A77C3FCC056B6B"),
)


def _chippering():
    import importlib

    return importlib.import_module("gurux_dlms.GXDLMSChippering")


def _gcm_parameter(security, ic=GREEN_BOOK["ic"], key=GREEN_BOOK["key"]):
    from gurux_dlms.AesGcmParameter import AesGcmParameter
    from gurux_dlms.enums import Command

    p = AesGcmParameter(
        Command.GLO_GET_REQUEST,
        bytearray(GREEN_BOOK["system_title"]),
        bytearray(key),
        bytearray(GREEN_BOOK["auth_key"]),
    )
    p.security = security
    p.invocationCounter = ic
    return p


def _both_streams(monkeypatch, run):
    """run() with gurux's own GCM stream, then with the patched one."""
    from gurux_dlms.GXDLMSChipperingStream import GXDLMSChipperingStream

    from meter_sim.gurux_compat import fast_gcm_stream

    fast = fast_gcm_stream()
    with monkeypatch.context() as m:
        m.setattr(_chippering(), "GXDLMSChipperingStream", GXDLMSChipperingStream)
        upstream = run()
    assert _chippering().GXDLMSChipperingStream is fast
    return upstream, run()


def test_fast_gcm_stream_ciphers_as_gurux_does(monkeypatch):
    from gurux_dlms.enums import Security
    from gurux_dlms.GXByteBuffer import GXByteBuffer

    chip = _chippering().GXDLMSChippering
    gb = GREEN_BOOK
    for security in (
        Security.AUTHENTICATION_ENCRYPTION,
        Security.AUTHENTICATION,
        Security.ENCRYPTION,
    ):
        for plain in (gb["plain"], bytes(range(200)), b""):

            def run(security=security, plain=plain):
                p = _gcm_parameter(security)
                apdu = bytes(chip.encryptAesGcm(p, bytearray(plain)))
                tag = bytes(p.countTag or b"")
                back = bytes(
                    chip.decryptAesGcm(
                        None, _gcm_parameter(security, ic=0), GXByteBuffer(bytearray(apdu))
                    )
                )
                return apdu, tag, back

            upstream, patched = _both_streams(monkeypatch, run)
            assert patched == upstream, (security, plain)
            assert patched[2] == plain
    # the Green Book's own figures, from the patched stream
    p = _gcm_parameter(Security.AUTHENTICATION_ENCRYPTION)
    apdu = bytes(chip.encryptAesGcm(p, bytearray(gb["plain"])))
    assert apdu.endswith(bytes([0x30]) + gb["ic"].to_bytes(4, "big") + gb["cipher"] + gb["tag"])
    assert bytes(p.countTag) == gb["tag"]


def test_fast_gcm_stream_keeps_the_hls_challenge_answer(monkeypatch):
    # f(StoC) / f(CtoS): GMAC of the challenge, what HLS-GMAC pass 3 and 4 compare
    from gurux_dlms.GXSecure import GXSecure

    def run():
        settings = _hls_settings()
        settings.cipher.systemTitle = bytearray(GREEN_BOOK["system_title"])
        settings.cipher.blockCipherKey = bytearray(GREEN_BOOK["key"])
        settings.cipher.authenticationKey = bytearray(GREEN_BOOK["auth_key"])
        return bytes(
            GXSecure.secure(
                settings,
                settings.cipher,
                GREEN_BOOK["ic"],
                bytearray(range(32)),  # the challenge
                bytearray(GREEN_BOOK["system_title"]),  # the secret: the peer's title
            )
        )

    upstream, patched = _both_streams(monkeypatch, run)
    assert patched == upstream
    assert len(patched) == 17  # SC | IC | 12-byte tag


def test_fast_gcm_stream_refuses_a_checking_decrypt():
    from gurux_dlms.enums import Security

    from meter_sim.gurux_compat import fast_gcm_stream

    with pytest.raises(NotImplementedError):
        fast_gcm_stream()(
            Security.AUTHENTICATION_ENCRYPTION, False, bytes(16), b"", bytes(12), None
        )


def test_canary_upstream_gcm_is_pure_python():
    # The day gurux ciphers with a C library (cryptography, pycryptodome), fast_gcm_stream
    # can go: upstream then builds its blocks in Python no more.
    import inspect

    from gurux_dlms.GXDLMSChipperingStream import GXDLMSChipperingStream

    src = inspect.getsource(inspect.getmodule(GXDLMSChipperingStream))
    assert "def encryptBlock" in src and "def multiplyH" in src
    for library in ("cryptography", "Crypto.Cipher", "Cryptodome"):
        assert library not in src, library
    for name in ("encryptBlock", "multiplyH", "gCTRBlock"):
        assert inspect.isfunction(GXDLMSChipperingStream.__dict__[name]), name


def _decipher(apdu, key=GREEN_BOOK["key"]):
    from gurux_dlms.enums import Security
    from gurux_dlms.GXByteBuffer import GXByteBuffer

    from meter_sim.gurux_compat import fast_gcm_stream

    fast_gcm_stream()
    p = _gcm_parameter(Security.AUTHENTICATION_ENCRYPTION, ic=0, key=key)
    return _chippering().GXDLMSChippering.decryptAesGcm(None, p, GXByteBuffer(bytearray(apdu)))


def _green_book_apdu() -> bytes:
    from gurux_dlms.enums import Security

    p = _gcm_parameter(Security.AUTHENTICATION_ENCRYPTION)
    return bytes(_chippering().GXDLMSChippering.encryptAesGcm(p, bytearray(GREEN_BOOK["plain"])))


def test_upstream_decipher_hands_its_stream_the_received_tag():
    # fast_gcm_stream checks the tag while it deciphers only because decryptAesGcm passes
    # it the tag that came with the APDU; the day it stops, tag_ok is None and
    # _decrypt_checking_counter goes back to gcm_tag_valid (a second GCM pass).
    apdu = _green_book_apdu()
    out = _decipher(apdu)
    assert bytes(out) == GREEN_BOOK["plain"]
    assert out.tag_ok is True


def test_fast_gcm_stream_finds_a_bad_tag_or_key_while_deciphering():
    apdu = _green_book_apdu()
    altered = apdu[:-1] + bytes([apdu[-1] ^ 0x01])
    assert _decipher(altered).tag_ok is False
    assert _decipher(apdu[:-14] + bytes([apdu[-14] ^ 0x80]) + apdu[-13:]).tag_ok is False
    wrong = _decipher(apdu, key=bytes(16))
    assert wrong.tag_ok is False
    assert bytes(wrong) != GREEN_BOOK["plain"]


def test_the_server_checks_each_tag_in_one_gcm_pass(sim_fleet, monkeypatch):
    # a whole HLS-GMAC session and a refused wrong key, with the second pass made to fail
    from sim_fixtures import run_job

    from meter_bridge.errors import JobError, MeterRefused
    from meter_sim import gurux_compat
    from meter_sim.model import MeterConfig

    def second_pass(*args):
        raise AssertionError("gcm_tag_valid ran: the tag was not checked deciphering")

    monkeypatch.setattr(gurux_compat, "gcm_tag_valid", second_pass)
    fleet = sim_fleet(MeterConfig("SIM00001", auth="hls"))
    model = fleet.meter("SIM00001")
    assert run_job(fleet, "SIM00001", "ping")["relay"] == "connected"
    seen = model.client_invocation_counter
    with pytest.raises((JobError, MeterRefused)):
        run_job(fleet, "SIM00001", "ping", encryption_key="00" * 16, invocation_counter=seen + 9)
    assert model.client_invocation_counter == seen
    assert run_job(fleet, "SIM00001", "ping")["relay"] == "connected"
