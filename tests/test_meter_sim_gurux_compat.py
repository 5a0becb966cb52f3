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
