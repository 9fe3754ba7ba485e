"""System tests of ended sessions at the gate (issue 10, item 2): a session that left (on any
gateway) or expired is refused with 401 session_expired on every protected route, while status
polls stay free of Redis and a protected request costs one ZSCORE.

Real redis-server and two real gateways on it (conftest fixtures), HTTP/1.1 on loopback. Time
bounds are hang guards, except the session's own expiry (session_ttl_s = 10, the least).
"""
import time

import requests

from conftest import wait_for
from test_registration import body
from test_wroom_flow import ROOM, ready, redis_cmdstat, room

HANG = 10.0


def join(g, name=ROOM):
    r = requests.post(g.url(f"/v1/rooms/{name}/join"), timeout=HANG)
    assert r.status_code in (200, 202), r.text
    return r.json()


def auth(token):
    return {"Authorization": f"Bearer {token}"}


def leave(g, token, name=ROOM):
    r = requests.post(g.url(f"/v1/rooms/{name}/leave"), headers=auth(token), timeout=HANG)
    assert r.status_code == 204, r.text


def register(g, session):
    return requests.post(g.url("/v1/registrations"), json=body(),
                         headers=auth(session), timeout=HANG)


def session_route(g, session, name=ROOM):
    return requests.get(g.url(f"/v1/rooms/{name}/session"), headers=auth(session), timeout=HANG)


def registration(g, session, rid):
    return requests.get(g.url(f"/v1/registrations/{rid}"), headers=auth(session), timeout=HANG)


def refused(r):
    return r.status_code == 401 and r.json()["error"]["code"] == "session_expired"


def admitted_now(g, name=ROOM):
    doc = join(g, name)
    assert doc["state"] == "admitted", doc
    return doc["session"]


def test_left_sessions_are_refused_on_every_gateway(make_gateway, redis):
    settings = room(admit_rate_per_min=600, max_active=1, session_ttl_s=600)
    g0, g1 = make_gateway(settings), make_gateway(settings)
    ready(g0)
    ready(g1)

    # A is admitted (capacity 1), registers, and leaves on g0.
    a = admitted_now(g0)
    r = register(g1, a)
    assert r.status_code == 202, r.text
    rid_a = r.json()["id"]
    assert registration(g0, a, rid_a).status_code == 200
    leave(g0, a)
    # B takes the freed slot on g1, and leaves there.
    wait_for(lambda: requests.get(g1.url(f"/v1/rooms/{ROOM}"), timeout=HANG).json()["active"]
             == 0, timeout=HANG, what="A's slot freed")
    b = admitted_now(g1)
    assert session_route(g1, b).status_code == 200
    leave(g1, b)
    wait_for(lambda: requests.get(g0.url(f"/v1/rooms/{ROOM}"), timeout=HANG).json()["active"]
             == 0, timeout=HANG, what="B's slot freed")
    c = admitted_now(g0)

    # A and B are refused everywhere, on every protected route; the leave on one gateway is
    # honoured by the other at once.
    for g in (g0, g1):
        for s in (a, b):
            r = register(g, s)
            assert refused(r), (r.status_code, r.text)
            r = session_route(g, s)
            assert refused(r), (r.status_code, r.text)
            r = registration(g, s, rid_a)
            assert refused(r), (r.status_code, r.text)
    # C works on both.
    for g in (g0, g1):
        assert session_route(g, c).status_code == 200
        r = register(g, c)
        assert r.status_code == 202, r.text
    # Leaving again is harmless; the session stays refused.
    leave(g1, a)
    assert refused(session_route(g0, a))


def test_a_session_ended_with_its_ticket_is_refused_and_the_ticket_too(make_gateway):
    """The holder of an admitted ticket redeems it for a session, then leaves with the ticket
    (not the session): the session it got is ended as well, and the ticket gives it no more."""
    g = make_gateway(room(admit_rate_per_min=600, max_active=1, session_ttl_s=600))
    ready(g)
    c = admitted_now(g)
    t = join(g)
    assert t["state"] == "waiting", t
    ticket = t["ticket"]
    leave(g, c)

    def redeemed():
        r = requests.get(g.url(f"/v1/rooms/{ROOM}/status"), headers=auth(ticket), timeout=HANG)
        assert r.status_code == 200, r.text
        return r.json()["state"] == "admitted" and r.json()["session"]
    d = wait_for(redeemed, timeout=HANG, what="the waiting ticket admitted")
    assert session_route(g, d).status_code == 200
    leave(g, ticket)
    assert refused(session_route(g, d))
    assert refused(register(g, d))
    r = requests.get(g.url(f"/v1/rooms/{ROOM}/status"), headers=auth(ticket), timeout=HANG)
    assert r.status_code == 410 and r.json()["error"]["code"] == "ticket_expired", r.text


def test_an_expired_session_is_refused(make_gateway):
    g = make_gateway({**room(admit_rate_per_min=600, max_active=10, session_ttl_s=10)})
    ready(g)
    s = admitted_now(g)
    assert session_route(g, s).status_code == 200
    t0 = time.monotonic()
    wait_for(lambda: refused(session_route(g, s)), timeout=15, interval=0.25,
             what="the session refused after its expiry")
    assert time.monotonic() - t0 > 5  # it was its expiry (10 s), not something else
    assert refused(register(g, s))


def test_polls_cost_no_redis_and_a_protected_request_one_zscore(make_gateway, redis):
    g = make_gateway(room(admit_rate_per_min=600, max_active=1, session_ttl_s=600))
    ready(g)
    s = admitted_now(g)
    ticket = join(g)["ticket"]
    with requests.Session() as http:
        # The gate's one command per protected request (test_wroom_trust checks that a poll
        # sends no command at all).
        z0 = redis_cmdstat(redis, "zscore")
        for _ in range(50):
            r = http.get(g.url(f"/v1/rooms/{ROOM}/session"), headers=auth(s), timeout=HANG)
            assert r.status_code == 200
        assert redis_cmdstat(redis, "zscore") - z0 == 50
        z0 = redis_cmdstat(redis, "zscore")
        for _ in range(50):
            r = http.get(g.url(f"/v1/rooms/{ROOM}/status"), headers=auth(ticket), timeout=HANG)
            assert r.status_code == 200 and r.json()["state"] == "waiting", r.text
        assert redis_cmdstat(redis, "zscore") == z0
