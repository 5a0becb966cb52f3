"""The bridge as a head end: read the simulator's association view, then every attribute it
states readable, and describe each for a person (meter-bridge read), with every
authentication the simulator offers (issue 19: "the bridge reads every object")."""

from __future__ import annotations

import pytest

from meter_bridge.codec import decode_data
from meter_bridge.describe import describe
from meter_bridge.dlms import MeterConnection
from meter_bridge.errors import MeterRefused
from meter_sim import objects
from meter_sim.model import MeterConfig
from meter_sim.testing import hls_job_meter

pytestmark = pytest.mark.timeout(60)
READ = 1  # access_mode bit: read (1 read, 3 read-write, 4/6 authenticated read...)


def _readable(mode: int) -> bool:
    return mode in (1, 3, 4, 6)


def _meter(fleet, config) -> dict:
    model = fleet.meter("SIM00001")
    port = fleet.port_of("SIM00001")
    if config.auth == "hls":
        return hls_job_meter(model, port)
    meter = {"host": "127.0.0.1", "port": port, "framing": config.framing, "timeout_s": 3}
    if config.auth == "lls":
        return {**meter, "auth": "lls", "password": config.password, "client_address": 1}
    return {**meter, "auth": "none", "client_address": 16}


@pytest.mark.parametrize(
    "config",
    [
        MeterConfig("SIM00001", auth="none"),
        MeterConfig("SIM00001", auth="lls", password="secret12", framing="hdlc"),
        MeterConfig("SIM00001", auth="hls"),
    ],
    ids=["public", "lls-hdlc", "hls"],
)
def test_bridge_reads_every_attribute_the_object_list_states_readable(sim_fleet, config):
    fleet = sim_fleet(config)
    fleet.meter("SIM00001").advance(1800)  # some profile entries
    with MeterConnection(_meter(fleet, config), deadline_s=30) as conn:
        view = decode_data(conn.get_raw(objects.ASSOCIATION_LN, 15, 2))
        read, refused, described = 0, [], {}
        for class_id, _version, ln, (attribute_access, _methods) in view:
            obis = ".".join(str(b) for b in ln)
            for index, mode, _selectors in attribute_access:
                if not _readable(mode):
                    with pytest.raises(MeterRefused):
                        conn.get_raw(obis, class_id, index)  # what the list says, it does
                    continue
                try:
                    raw = conn.get_raw(obis, class_id, index)
                except MeterRefused as e:
                    refused.append((obis, index, str(e)))
                    continue
                described[(obis, index)] = describe(raw, class_id, index)
                read += 1
        assert conn.fresh_associations == 0
    assert refused == []
    assert len(view) == len(objects.build_objects("SIM00001"))
    assert described[(objects.CLOCK, 2)]["type"] == "date-time"
    if config.auth != "none":
        assert described[(objects.CLOCK, 5)]["text"].startswith("****-03-last")
        assert described[(objects.ACCOUNT, 13)]["type"] == "date-time"
        assert described[(objects.TOKEN_GATEWAY, 3)]["type"] == "date-time"
        assert described[("1.0.32.7.0.255", 3)]["text"] == "10^-1 V"
        assert read > 100
    else:
        assert (objects.CREDIT, 2) not in described
