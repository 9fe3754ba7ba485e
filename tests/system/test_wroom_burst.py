"""System test of the admission budget (issue 10, item 1): the fast path draws from the same
budget as the controller, so a surge into an empty room is admitted at most admit_burst at once
and then at admit_rate_per_min, however many gateways share the room's Redis.

Real redis-server and two real gateways (conftest fixtures), HTTP/1.1 on loopback. The upper
bounds are the property (what protects the registration site); the lower bounds are loose, so
that a slow machine cannot break them.
"""
import time

from conftest import wait_for
from test_wroom_flow import ROOM, Conn, facts, parallel, payload, pipelined_joins, place_of, \
    ready, room

RATE = 600  # a minute: 10 a second
BURST = 10  # the default: one second of the rate


def test_a_surge_into_an_empty_room_is_admitted_at_the_burst_then_at_the_rate(make_gateway):
    settings = room(admit_rate_per_min=RATE, max_active=100000, session_ttl_s=600)
    gws = [make_gateway(settings), make_gateway(settings)]
    for g in gws:
        ready(g)
    time.sleep(1.2)  # the budget is full (it starts full and only refills to the burst)
    c = Conn(gws[0].port)
    try:
        assert facts(c)["admitted"] == 0
        # 400 joins, 100 pipelined on each of 4 connections, two per gateway, all at once.
        t_start = time.monotonic()
        answers = parallel(pipelined_joins, [(g.port, 100) for g in gws for _ in range(2)])
        t_joined = time.monotonic()
        answers = [a for per_conn in answers for a in per_conn]
        assert len(answers) == 400
        assert t_joined - t_start < 5, f"400 joins took {t_joined - t_start:.1f} s"
        admitted = [doc for status, _, doc in answers if status == 200]
        waiting = [doc for status, _, doc in answers if status == 202]
        assert len(admitted) + len(waiting) == 400, \
            sorted({status for status, _, _ in answers})
        assert all(d["state"] == "admitted" and d["session"] for d in admitted)
        assert all(d["state"] == "waiting" and d["ticket"] for d in waiting)
        # At once: the burst, plus what the rate added while the joins ran (and one tick).
        most = BURST + RATE / 60.0 * (t_joined - t_start + 0.2) + 1
        print(f"{len(admitted)} of 400 admitted at once in {t_joined - t_start:.2f} s "
              f"(at most {most:.1f})")
        assert 1 <= len(admitted) <= most, (len(admitted), most)
        # Places: unique across both gateways, the waiting ones after every place taken at once
        # on the same gateway call (a batch's admitted places come first).
        places = [place_of(d["ticket"]) for d in waiting]
        assert len(set(places)) == len(places)
        assert all(0 <= p < 400 for p in places)
        sids = {payload(d["session"]).split("|")[2] for d in admitted}
        assert len(sids) == len(admitted)

        # The rest are admitted at the rate: never above burst + rate x elapsed.
        samples = []
        t_end = t_joined + 6
        while time.monotonic() < t_end:
            n = facts(c)["admitted"]
            samples.append((time.monotonic(), n))  # the time after the answer: a bound
            time.sleep(0.2)
        for t, n in samples:
            cap = BURST + RATE / 60.0 * (t - t_start) + 2
            assert n <= cap, f"{n} admitted {t - t_start:.1f} s after the surge began (cap {cap:.0f})"
        t, n = samples[-1]
        expect = RATE / 60.0 * (t - t_start)
        print(f"{n} admitted {t - t_start:.1f} s after the surge began (rate alone: {expect:.0f})")
        assert n >= 0.5 * expect, (n, expect)  # loose: the controllers did admit at the rate
        f = facts(c)
        assert f["waiting"] > 0, f  # the queue outlasted the run: the rate, not the queue, bound

        # A waiting ticket is admitted in its turn (the lowest place first).
        first = min(places)
        ticket = next(d["ticket"] for d in waiting if place_of(d["ticket"]) == first)
        status, _, doc = wait_for(lambda: (lambda r: r if r[2]["state"] == "admitted" else None)(
            c.json("GET", f"/v1/rooms/{ROOM}/status", ticket)), timeout=10,
            what="the first waiting ticket admitted")
        assert status == 200 and doc["session"]
    finally:
        c.close()


def test_admit_burst_set_by_the_operator(make_gateway):
    """admit_burst = 3 at a slow rate: three joins in a row are admitted at once, the fourth
    waits; none of it depends on timing (the rate adds one admission a minute)."""
    gw = make_gateway(room(admit_rate_per_min=1, admit_burst=3, max_active=1000,
                           session_ttl_s=600))
    ready(gw)
    c = Conn(gw.port)
    try:
        got = [c.json("POST", f"/v1/rooms/{ROOM}/join")[0] for _ in range(5)]
        assert got == [200, 200, 200, 202, 202], got
    finally:
        c.close()
