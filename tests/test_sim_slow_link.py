"""Slow links of the simulated meters (MeterConfig latency_ms, jitter_ms, loss): every
answer is held for the latency on the network loop's timer heap, a lost request goes
unanswered, and the bridge's timeout and Odoo's retry carry a job over a lossy link exactly
once. No timing is asserted beyond bounds that prove the delay is applied."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest

pytest.importorskip("gurux_dlms")

from sim_fixtures import run_job  # noqa: E402

from meter_bridge.service import BridgeService  # noqa: E402
from meter_sim import cli  # noqa: E402
from meter_sim.model import MeterConfig  # noqa: E402
from meter_sim.testing import credit_token, hls_job_meter  # noqa: E402

try:
    from test_bridge_service_fakes import fake_odoo, settings_for, wait_until
except ImportError:  # tests/ turned into a package
    from tests.test_bridge_service_fakes import fake_odoo, settings_for, wait_until

pytestmark = pytest.mark.timeout(120)
LATENCY_S = 0.2


def test_each_round_trip_waits_for_the_latency_of_its_meter(sim_fleet):
    fleet = sim_fleet(
        MeterConfig("SLOW1", latency_ms=LATENCY_S * 1000, jitter_ms=20),
        MeterConfig("FAST1"),
    )
    stats = fleet.net.link_stats
    t0 = time.monotonic()
    result = run_job(fleet, "SLOW1", "ping")
    slow_s = time.monotonic() - t0
    round_trips = stats["delayed"]
    assert "relay" in result
    # association, HLS pass 3/4, the GETs of a ping, release: each answer held back
    assert round_trips >= 4
    assert slow_s >= round_trips * (LATENCY_S - 0.02)

    t0 = time.monotonic()
    run_job(fleet, "FAST1", "ping")
    fast_s = time.monotonic() - t0
    assert stats["delayed"] == round_trips, "a meter without latency answers at once"
    assert fast_s < slow_s / 2
    assert stats["dropped"] == 0


def test_the_loop_keeps_serving_other_meters_while_answers_wait(sim_fleet):
    """The latency is a timer, not a sleep of the network thread: pings of many slow meters
    at once take about as long as one."""
    configs = [MeterConfig(f"SLOW{i}", latency_ms=LATENCY_S * 1000) for i in range(12)]
    fleet = sim_fleet(*configs)
    t0 = time.monotonic()
    run_job(fleet, "SLOW0", "ping")
    one_s = time.monotonic() - t0
    errors = []

    def ping(serial):
        try:
            run_job(fleet, serial, "ping", deadline_s=60)
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=ping, args=(c.serial,)) for c in configs[1:]]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    together_s = time.monotonic() - t0
    assert not errors
    # served one after the other they would take 11 times as long
    assert together_s < one_s * 4


def test_a_lost_request_is_not_answered(sim_fleet):
    fleet = sim_fleet(MeterConfig("LOSSY", loss=0.999))
    from meter_bridge.errors import MeterUnreachable

    with pytest.raises(MeterUnreachable):
        run_job(fleet, "LOSSY", "ping", deadline_s=3, timeout_s=1)
    assert fleet.net.link_stats["dropped"] >= 1
    assert fleet.meter("LOSSY").client_invocation_counter in (None, 0)


def test_cli_link_settings_reach_the_meters(tmp_path):
    args = cli.build_parser().parse_args(
        ["--meters", "2", "--latency-ms", "500", "--jitter-ms", "100", "--loss", "0.01"]
    )
    meters, _ = cli._meters(args)
    assert {(m.latency_ms, m.jitter_ms, m.loss) for m in meters} == {(500, 100, 0.01)}

    config = tmp_path / "fleet.json"
    config.write_text(
        '{"latency_ms": 800, "meters": [{"serial": "A"}, {"serial": "B", "latency_ms": 50}]}'
    )
    meters, extra = cli._meters(cli.build_parser().parse_args(["--config", str(config)]))
    assert [m.latency_ms for m in meters] == [800, 50]
    assert "latency_ms" not in extra
    # the command line replaces the file's fleet-wide value, a meter's own still wins
    args = cli.build_parser().parse_args(["--config", str(config), "--latency-ms", "10"])
    assert [m.latency_ms for m in cli._meters(args)[0]] == [10, 50]

    for bad in (["--loss", "1"], ["--latency-ms", "-1"]):
        assert cli.main(["--meters", "1", "--base-port", "0", *bad]) == 2


@contextlib.contextmanager
def bridge(url):
    settings = settings_for(
        url,
        bridge_id="slow-bridge",
        lease_seconds=30,
        job_timeout=20.0,
        rpc_timeout=5.0,
        log_level="WARNING",
    )
    service = BridgeService(settings)  # the real DLMS executor
    thread = threading.Thread(target=service.run, name="slow-bridge", daemon=True)
    thread.start()
    try:
        yield service
    finally:
        service.request_stop()
        thread.join(15)


def test_a_lossy_link_is_retried_and_the_credit_arrives_exactly_once(sim_fleet):
    """A third of the request frames lost: the bridge's reads time out, it reports a
    retryable failure, Odoo hands the job out again until one attempt gets through. The
    token is entered once: the meter's credit grows by the token's kWh, not twice."""
    fleet = sim_fleet(MeterConfig("LOSSY", loss=0.35, latency_ms=20), seed=3)
    model = fleet.meter("LOSSY")
    before = model.state()["credit_wh"]
    with fake_odoo() as odoo:
        odoo.retry_delay = 0.0
        job_id = odoo.add_job(
            "add_credit",
            {"token": credit_token(7, 2500, "LOSSY").hex(), "kwh": 2.5},
            serial="LOSSY",
            max_attempts=40,
        )
        with odoo.cond:
            odoo.jobs[job_id]["meter"] = {
                "id": 1,
                **hls_job_meter(model, fleet.port_of("LOSSY"), timeout_s=1),
            }
        with bridge(odoo.url):
            assert wait_until(lambda: odoo.state(job_id) in ("done", "failed"), timeout=100)
        job = odoo.job(job_id)
    assert job["state"] == "done", job["error"]
    assert fleet.net.link_stats["dropped"] >= 1
    assert job["attempt_count"] >= 2, "the loss never hit this job: nothing was retried"
    assert [c for c, _ in odoo.calls].count("complete") == 1
    assert model.state()["credit_wh"] == before + 2500


class _Draws:
    """A link's random draws, given in advance: below the loss share loses the frame."""

    def __init__(self, *values):
        self.values = list(values)

    def random(self):
        return self.values.pop(0)


WRAPPER_FRAME = bytes.fromhex("0001 0010 0001 0005 c001c1000f".replace(" ", ""))
HDLC_FRAME = bytes.fromhex("7ea00a000200232193e6c37e")


@pytest.mark.parametrize("framing, frame", [("wrapper", WRAPPER_FRAME), ("hdlc", HDLC_FRAME)])
def test_loss_takes_whole_frames_not_socket_chunks(framing, frame):
    """A frame that TCP delivers in three reads is lost or kept whole, decided once: half a
    frame never reaches the meter's parser."""
    from meter_sim.server import lose_frames

    cfg = MeterConfig("CHUNKS", framing=framing, loss=0.5)
    cut = [frame[:3], frame[3:7], frame[7:]]
    for draw, expected in ((0.9, frame), (0.1, b"")):
        buf, rng = bytearray(), _Draws(draw)
        got, lost = b"", 0
        for chunk in cut:
            kept, n = lose_frames(cfg, rng, buf, chunk)
            got, lost = got + kept, lost + n
        assert got == expected
        assert lost == (0 if expected else 1)
        assert not buf and not rng.values, "one draw per frame, nothing left half-read"


def test_loss_decides_each_frame_of_a_read_apart():
    from meter_sim.server import lose_frames

    cfg = MeterConfig("TWO", framing="hdlc", loss=0.5)
    other = bytes.fromhex("7ea00a0002002321b3e2057e")
    buf = bytearray()
    kept, lost = lose_frames(cfg, _Draws(0.1, 0.9), buf, HDLC_FRAME + other + other[:4])
    assert (kept, lost) == (other, 1)
    assert bytes(buf) == other[:4], "the frame still arriving waits for its end"
