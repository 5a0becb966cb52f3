# SPDX-License-Identifier: GPL-2.0-or-later
"""Work-arounds for gaps in the server side of gurux-dlms==1.0.203 (pinned).

One small function or subclass per gap, each saying what failed without it. Every patch
has a canary in tests/test_meter_sim_gurux_compat.py that fails the day upstream fixes the
gap, so the patch can go. Do not fork or vendor the library.
"""

from __future__ import annotations

from gurux_dlms.GXDLMSLNParameters import GXDLMSLNParameters
from gurux_dlms.GXServerReply import GXServerReply
from gurux_dlms.ValueEventArgs import ValueEventArgs


class ServerReply(GXServerReply):
    """GXDLMSServer.handleRequest calls sr.setReply(), sr.getConnectionInfo(), sr.getCount()
    and sr.setCount(), none of which GXServerReply defines: every request died with
    AttributeError before a reply was produced."""

    def setReply(self, value):  # noqa: N802 (gurux naming)
        self.reply = value

    def getConnectionInfo(self):  # noqa: N802
        return self.connectionInfo

    def getCount(self):  # noqa: N802
        return self.count

    def setCount(self, value):  # noqa: N802
        self.count = value


def _iter_value_event_args(self):
    # GXDLMSLNCommandHandler calls list(e) on one ValueEventArgs for SET and ACTION
    # ("TypeError: 'ValueEventArgs' object is not iterable"): make it a one-item list.
    yield self


def _is_multiple_blocks(self):
    # handleSetRequest calls p.isMultipleBlocks(); GXDLMSLNParameters only has the
    # attribute `multipleBlocks` (AttributeError on every SET).
    return self.multipleBlocks


def _set_status(self, value):
    # handleSetRequest calls p.setStatus() for an unknown object or a failed write;
    # GXDLMSLNParameters only has `status` (AttributeError instead of the DLMS error).
    self.status = value


def apply() -> None:
    """Install the class-level patches (idempotent)."""
    if not hasattr(ValueEventArgs, "__iter__"):
        ValueEventArgs.__iter__ = _iter_value_event_args
    if not hasattr(GXDLMSLNParameters, "isMultipleBlocks"):
        GXDLMSLNParameters.isMultipleBlocks = _is_multiple_blocks
    if not hasattr(GXDLMSLNParameters, "setStatus"):
        GXDLMSLNParameters.setStatus = _set_status


class ServerMixin:
    """Methods GXDLMSServer / GXDLMSLNCommandHandler call on the server but never define.

    Mixed in before the gurux base class."""

    _pending_read = None

    def onGetAttributeAccess(self, arg):  # noqa: N802
        # The only hook handleGetRequest gives the ValueEventArgs to before it reads;
        # remember it so notifyRead() below can pass it on.
        self._pending_read = arg
        return self.attribute_access(arg)

    def notifyRead(self):  # noqa: N802
        # handleGetRequest calls server.notifyRead() with no argument and no such method
        # exists (AttributeError on every GET); the C#/Java servers call onPreRead([e]).
        e, self._pending_read = self._pending_read, None
        if e is not None:
            self.onPreRead([e])

    def onPostRead(self, args=None):  # noqa: N802
        # handleGetRequest calls server.onPostRead() without the list of arguments.
        return None

    def getTransaction(self):  # noqa: N802
        # Block transfer (long GET/SET) calls get/setTransaction(); only `transaction` exists.
        return self.transaction

    def setTransaction(self, value):  # noqa: N802
        self.transaction = value

    def isMultipleBlocks(self):  # noqa: N802
        # Referenced on the server by some LN paths; the server has no multi-block state
        # of its own outside a transaction.
        return self.transaction is not None

    def notifyConnected(self, connection_info):  # noqa: N802
        # handleMethodRequest calls it after a successful HLS pass 3/4; undefined upstream.
        self.onConnected(connection_info)


def fill_association_object_list(server) -> None:
    """Call before server.initialize().

    GXDLMSServer.initialize() does `ln.objectList.append(self.items)` (the whole collection
    as one item) when the association's object list is empty, and GXDLMSObjectCollection
    raises "TypeError: item is not of type GXDLMSObject". Filling the list first skips it.
    """
    from gurux_dlms.objects import GXDLMSAssociationLogicalName

    for it in list(server.items):
        if isinstance(it, GXDLMSAssociationLogicalName) and len(it.objectList) == 0:
            for obj in server.items:
                it.objectList.append(obj)


class ReleaseResponseMixin:
    """GXDLMSServer.handleReleaseRequest writes the RLRE length as len(user-information)
    instead of the length of the whole content (and the 0xBE length one short), so
    dlms-cosem rejects the release: "APDU Data lenght does not correspond to length byte".
    """

    def handleReleaseRequest(self, data):  # noqa: N802
        from gurux_dlms._GXAPDU import _GXAPDU
        from gurux_dlms.enums import InterfaceType
        from gurux_dlms.internal._GXCommon import _GXCommon

        if self.settings.interfaceType in (InterfaceType.HDLC, InterfaceType.HDLC_WITH_MODE_E):
            self.replyData.set(_GXCommon.LLC_REPLY_BYTES)
        tmp = _GXAPDU.getUserInformation(self.settings, self.settings.cipher)
        # RLRE: reason normal(0), user-information = octet-string(initiate-response)
        body = bytes([0x80, 0x01, 0x00, 0xBE, 2 + len(tmp), 0x04, len(tmp)]) + bytes(tmp)
        self.replyData.setUInt8(0x63)
        self.replyData.setUInt8(len(body))
        self.replyData.set(body)


class SnrmMixin:
    """GXDLMSServer.handleSnrmRequest reads its UA parameters from `self.hdlc`, which is None
    unless a GXDLMSHdlcSetup object is attached (and even then it asks that object for
    maxInfoTX / windowSizeTX, which it does not have): every SNRM raised AttributeError and
    the client got a garbage frame instead of UA. Same reply, built from settings.hdlc."""

    def handleSnrmRequest(self, data):  # noqa: N802
        from gurux_dlms._HDLCInfo import _HDLCInfo
        from gurux_dlms.GXDLMS import GXDLMS
        from gurux_dlms.GXHdlcSettings import GXHdlcSettings

        if self.hdlc is not None:
            return super().handleSnrmRequest(data)
        hdlc = self.settings.hdlc
        hdlc.maxInfoRX = GXHdlcSettings.DEFAULT_MAX_INFO_RX
        hdlc.maxInfoTX = GXHdlcSettings.DEFAULT_MAX_INFO_TX
        hdlc.windowSizeRX = GXHdlcSettings.DEFAULT_WINDOWS_SIZE_RX
        hdlc.windowSizeTX = GXHdlcSettings.DEFAULT_WINDOWS_SIZE_TX
        GXDLMS.parseSnrmUaResponse(data, hdlc)
        self.reset(True)
        r = self.replyData
        r.setUInt8(0x81)
        r.setUInt8(0x80)
        r.setUInt8(0)
        r.setUInt8(_HDLCInfo.MAX_INFO_TX)
        GXDLMS.appendHdlcParameter(r, hdlc.maxInfoTX)
        r.setUInt8(_HDLCInfo.MAX_INFO_RX)
        GXDLMS.appendHdlcParameter(r, hdlc.maxInfoRX)
        r.setUInt8(_HDLCInfo.WINDOW_SIZE_TX)
        r.setUInt8(4)
        r.setUInt32(hdlc.windowSizeTX)
        r.setUInt8(_HDLCInfo.WINDOW_SIZE_RX)
        r.setUInt8(4)
        r.setUInt32(hdlc.windowSizeRX)
        r.setUInt8(2, len(r) - 3)
        from gurux_dlms.ConnectionState import ConnectionState

        self.settings.connected = ConnectionState.HDLC

    def generateDisconnectRequest(self):  # noqa: N802
        # Same `self.hdlc` slip as above on DISC: AttributeError, and the client waited for
        # a UA that never came. A UA without information field is what IEC 62056-46 asks.
        if self.hdlc is not None:
            return super().generateDisconnectRequest()
        return None


def secure_server_cipher(server):
    """GXDLMSSecureServer stores its GXCiphering in settings.ciphering, but every ciphering
    path (AARQ parsing, HLS, GLO APDUs) reads settings.cipher: the server behaved as if it had
    no keys at all. Point settings.cipher at the same object."""
    if getattr(server.settings, "cipher", None) is None:
        server.settings.cipher = server.settings.ciphering
    return server.settings.cipher
