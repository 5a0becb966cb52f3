# SPDX-License-Identifier: GPL-2.0-or-later
"""Gurux's own DLMS client (GXDLMSClient / GXDLMSSecureClient, gurux-dlms from PyPI) over TCP,
as a head end nobody here wrote would use it: the independent check of the simulator.

    with GuruxSession(port, auth="hls", keys=..., framing="hdlc") as g:
        objects = g.object_list()       # the association view, parsed by gurux
        value = g.read(obj, 2)          # decoded and stored on the gurux object

Only gurux code talks DLMS here; this helper moves bytes over the socket (the loop of
Gurux's GXDLMSReader examples: send, getData until a frame is complete, receiverReady
while more data).
"""

from __future__ import annotations

import socket

from gurux_dlms import GXByteBuffer, GXDLMSClient, GXReplyData
from gurux_dlms.enums import Authentication, Conformance, InterfaceType, Security
from gurux_dlms.secure import GXDLMSSecureClient

CLIENT_TITLE = b"GURUXCLI"


class GuruxSession:
    def __init__(
        self,
        port: int,
        *,
        auth: str = "none",
        client_address: int | None = None,
        password: str | None = None,
        keys: dict | None = None,
        invocation_counter: int = 1,
        framing: str = "wrapper",
        general_protection: bool = False,
        server_physical_address: int = 17,
        timeout: float = 5,
    ):
        hdlc = framing == "hdlc"
        interface = InterfaceType.HDLC if hdlc else InterfaceType.WRAPPER
        server = GXDLMSClient.getServerAddress(1, server_physical_address) if hdlc else 1
        if client_address is None:
            client_address = 16 if auth == "none" else 1
        mechanism = {
            "none": Authentication.NONE,
            "lls": Authentication.LOW,
            "hls": Authentication.HIGH_GMAC,
        }[auth]
        if auth == "hls":
            client = GXDLMSSecureClient(True, client_address, server, mechanism, None, interface)
            cipher = client.settings.cipher
            cipher.systemTitle = bytearray(CLIENT_TITLE)
            cipher.security = Security.AUTHENTICATION_ENCRYPTION
            cipher.blockCipherKey = bytearray.fromhex(keys["encryption_key"])
            cipher.authenticationKey = bytearray.fromhex(keys["authentication_key"])
            cipher.invocationCounter = invocation_counter
            if general_protection:
                client.proposedConformance |= Conformance.GENERAL_PROTECTION
            else:
                client.proposedConformance &= ~Conformance.GENERAL_PROTECTION
        else:
            client = GXDLMSClient(True, client_address, server, mechanism, password, interface)
        self.client = client
        self.hdlc = hdlc
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.aare = None

    # -- bytes ---------------------------------------------------------------------------
    def _packet(self, data, reply: GXReplyData) -> None:
        if data:
            self.sock.sendall(bytes(data))
        notify = GXReplyData()
        rd = GXByteBuffer()
        while not self.client.getData(rd, reply, notify):
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("the meter closed the connection")
            rd.set(chunk)

    def _block(self, frames, reply: GXReplyData) -> GXReplyData:
        if isinstance(frames, (bytes, bytearray)):
            frames = [frames]
        for frame in frames:
            self._packet(frame, reply)
            while reply.isMoreData():
                self._packet(self.client.receiverReady(reply), reply)
        return reply

    # -- association ----------------------------------------------------------------------
    def open(self) -> GuruxSession:
        if self.hdlc:
            reply = self._block(self.client.snrmRequest(), GXReplyData())
            self.client.parseUAResponse(reply.data)
        reply = self._block(self.client.aarqRequest(), GXReplyData())
        self.client.parseAareResponse(reply.data)
        if self.client.authentication > Authentication.LOW:
            reply = self._block(self.client.getApplicationAssociationRequest(), GXReplyData())
            self.client.parseApplicationAssociationResponse(reply.data)
        return self

    def close(self) -> None:
        try:
            self._block(self.client.releaseRequest(), GXReplyData())
            if self.hdlc:
                self._block(self.client.disconnectRequest(), GXReplyData())
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        finally:
            self.sock.close()

    def __enter__(self):
        try:
            return self.open()
        except BaseException:
            self.sock.close()
            raise

    def __exit__(self, *exc):
        self.close()

    # -- services -------------------------------------------------------------------------
    def object_list(self):
        reply = self._block(self.client.getObjectsRequest(), GXReplyData())
        return self.client.parseObjects(reply.data, True)

    def read(self, obj, index: int):
        reply = self._block(self.client.read(obj, index), GXReplyData())
        _check(reply, f"GET {obj.logicalName}/{index}")
        return self.client.updateValue(obj, index, reply.value)

    def method(self, obj, index: int, value, data_type):
        reply = self._block(self.client.method(obj, index, value, data_type), GXReplyData())
        _check(reply, f"ACTION {obj.logicalName}/{index}")
        return reply.value


class MeterError(Exception):
    """The meter answered with a Data-Access-Result or action result other than success
    (gurux's client does not raise for those: it leaves reply.error set)."""

    def __init__(self, what: str, code: int):
        super().__init__(f"{what}: error {code}")
        self.code = code


def _check(reply: GXReplyData, what: str) -> None:
    if reply.error:
        raise MeterError(what, int(reply.error))
