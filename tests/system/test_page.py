"""The waiting page, GET /rooms/{room}: rendered by the real gateway, read by Debian's headless
Chromium (with and without JavaScript) and as plain HTML.

The browser is driven by tests/system/page/drive.js (playwright-core from the npm registry,
installed there with `npm ci` when node_modules is missing), which launches /usr/bin/chromium
(or $CHROMIUM). A missing Chromium or Node.js fails the test with the command that installs it:
nothing here is skipped.

Capacity is what makes an applicant wait: the room admits one session at a time (max_active 1),
the test holds that session itself, and releases it with leave while the browser waits.

The way on ([room.NAME] continue_url) is followed to a registration site played by a small
HTTP server of the test on another port of 127.0.0.1 (another origin), whose page posts back
what its script reads of the fragment; the hand-off token found there is checked by
verify_handoff below, written from docs/api.md ("Hand-off to the registration site") as a site
would write it, with the standard library only.
"""
import base64
import hashlib
import hmac
import html
import http.server
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse

import pytest
import requests

from conftest import ROOT, parse_responses, raw_request, wait_for

PAGE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "page")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
TEMPLATES = os.path.join(ROOT, "conf", "templates")
# Where the test leaves its screenshot of the page (the test's own directory by default).
SCREENSHOTS = os.environ.get("ANTRE_SCREENSHOTS")

ROOM = {
    "room.w.admit_rate_per_min": 600,
    "room.w.max_active": 1,
    "room.w.session_ttl_s": 600,
    "room.w.redeem_window_s": 120,
    "room.w.continue_url": "/daftar",
}


# ---- the browser ------------------------------------------------------------------------------

def driver_ready():
    """Fail (never skip) unless Chromium, Node.js and playwright-core are there."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"Chromium not found at {CHROMIUM}: the waiting-page test needs Debian's "
                    "chromium; install it with `make test-deps` (as root) or "
                    "`apt-get install chromium`")
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.fail("Node.js and npm not found: the waiting-page test drives Chromium from "
                    "Node.js; install them with `make test-deps` (as root) or "
                    "`apt-get install nodejs npm`")
    if not os.path.isfile(os.path.join(PAGE_DIR, "node_modules", "playwright-core",
                                       "package.json")):
        r = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=PAGE_DIR,
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            pytest.fail(f"`npm ci` in {PAGE_DIR} failed (exit {r.returncode}):\n"
                        f"{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return node


class Browser:
    """One headless Chromium behind drive.js: cmd("goto", url=...) etc., one JSON line each."""

    def __init__(self, workdir, name, js=True, width=360, height=740, locale="id-ID"):
        node = driver_ready()
        profile = os.path.join(workdir, f"{name}-profile")
        os.makedirs(profile, exist_ok=True)
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.log = open(self.log_path, "w")
        argv = [node, "drive.js", "--chromium", CHROMIUM, "--user-data-dir", profile,
                "--width", str(width), "--height", str(height), "--locale", locale]
        if not js:
            argv.append("--no-js")
        # Its own process group: Chromium's processes are the driver's children, and teardown
        # ends that group (by the driver's PID) even if the driver hangs.
        self.proc = subprocess.Popen(argv, cwd=PAGE_DIR, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     bufsize=1, start_new_session=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._reader, daemon=True).start()
        self.version = self._answer(90, "start")["version"]

    def _reader(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _answer(self, timeout, what):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"browser: no answer to {what} within {timeout} s; "
                                 f"log:\n{self.read_log()}")
        if line is None:
            raise AssertionError(f"browser: driver exited during {what}; log:\n{self.read_log()}")
        a = json.loads(line)
        if not a.get("ok"):
            raise AssertionError(f"browser: {what}: {a.get('error')}")
        return a.get("value")

    def cmd(self, cmd, timeout=60, **args):
        args["cmd"] = cmd
        self.proc.stdin.write(json.dumps(args) + "\n")
        self.proc.stdin.flush()
        return self._answer(timeout, f"{cmd} {args}")

    def wait_text(self, selector, pattern, timeout_s=15):
        return self.cmd("wait_text", timeout=timeout_s + 30, selector=selector, pattern=pattern,
                        timeout_ms=int(timeout_s * 1000))

    def probe(self, selector):
        return self.cmd("probe", selector=selector)

    def read_log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()[-4000:]

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write('{"cmd": "quit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(15)
            except (OSError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the driver's own group, if anything is left
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.log.close()


@pytest.fixture
def browsers(workdir):
    made = []

    def factory(name="browser", **kw):
        b = Browser(workdir, name, **kw)
        made.append(b)
        return b

    yield factory
    for b in made:
        b.close()


# ---- the gateway ------------------------------------------------------------------------------

def with_templates(workdir, src=TEMPLATES):
    """The gateway runs in WORKDIR and reads conf/templates/waiting.html relative to it."""
    dst = os.path.join(workdir, "conf", "templates")
    os.makedirs(dst, exist_ok=True)
    shutil.copy(os.path.join(src, "waiting.html"), os.path.join(dst, "waiting.html"))
    return os.path.join(dst, "waiting.html")


@pytest.fixture
def page_gateway(make_gateway, workdir):
    with_templates(workdir)
    return make_gateway(ROOM)


def hold_the_slot(g, room="w"):
    """Join first and take the room's only slot (fast path); return the session token."""
    r = requests.post(g.url(f"/v1/rooms/{room}/join"), timeout=5)
    assert r.status_code == 200 and r.json()["state"] == "admitted", r.text
    return r.json()["session"]


def release(g, session, room="w"):
    r = requests.post(g.url(f"/v1/rooms/{room}/leave"),
                      headers={"Authorization": f"Bearer {session}"}, timeout=5)
    assert r.status_code == 204, r.text


def waiting_ticket(g, room="w"):
    """Join through the API while the room is full; return (requests session with the cookie,
    join answer)."""
    s = requests.Session()
    r = s.post(g.url(f"/v1/rooms/{room}/join"), timeout=5)
    assert r.status_code == 202, r.text
    assert s.cookies.get("antre_ticket") == r.json()["ticket"]
    return s, r.json()


def section(doc, state):
    """The <section data-for=STATE ...> element's opening tag and body."""
    m = re.search(r'<section[^>]*data-for="%s"([^>]*)>(.*?)</section>' % state, doc, re.S)
    assert m, f"no section for {state}"
    return m.group(1), m.group(2)


def shown(doc, state):
    attrs, _ = section(doc, state)
    return "hidden" not in attrs


def text_of(fragment):
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment))).strip()


def meta_refresh(doc):
    m = re.search(r'<noscript><meta http-equiv="refresh" content="(\d+)"></noscript>', doc)
    return int(m.group(1)) if m else None


# ---- with JavaScript ---------------------------------------------------------------------------

def test_page_joins_waits_and_is_admitted_by_itself_in_chromium(page_gateway, browsers, workdir):
    g = page_gateway
    holder = hold_the_slot(g)
    b = browsers("js")
    assert b.cmd("goto", url=g.url("/rooms/w"))["status"] == 200
    assert b.probe("#join")["text"].strip() == "Masuk antrean"
    assert b.probe("#join")["visible"]
    assert not b.probe("#position")["visible"]

    b.cmd("click", selector="#join")
    assert b.wait_text("#position", r"^\s*1\s*$").strip() == "1"
    assert not b.probe("#join")["visible"]
    assert b.probe("#eta")["text"].strip()
    storage = b.cmd("local_storage")
    ticket = storage.get("antre:w:ticket")
    assert ticket and ticket.startswith("v1."), storage
    cookies = {c["name"]: c for c in b.cmd("cookies")}
    assert cookies["antre_ticket"]["value"] == ticket and cookies["antre_ticket"]["httpOnly"]

    # A reload never loses the place: the same ticket, the same position.
    b.cmd("reload")
    assert b.wait_text("#position", r"^\s*1\s*$").strip() == "1"
    assert b.cmd("local_storage").get("antre:w:ticket") == ticket
    # Even without the cookie, the ticket kept in localStorage finds the place again.
    b.cmd("clear_cookies")
    b.cmd("reload")
    assert b.wait_text("#position", r"^\s*1\s*$").strip() == "1"
    shot = os.path.join(SCREENSHOTS or workdir, "antre-page-waiting-360x740.png")
    b.cmd("screenshot", path=shot)
    assert os.path.getsize(shot) > 1000

    # The room frees its slot; the page, polling the API, moves to "admitted" by itself
    # (no navigation: it updates in place).
    loads = b.cmd("navigations")["count"]
    release(g, holder)
    b.wait_text("#continue", "Lanjutkan pendaftaran", timeout_s=30)
    assert b.cmd("navigations")["count"] == loads
    assert not b.probe("#position")["visible"]
    storage = b.cmd("local_storage")
    assert "antre:w:ticket" not in storage
    session = json.loads(storage["antre:w:session"])["session"]
    r = requests.get(g.url("/v1/rooms/w/session"),
                     headers={"Authorization": f"Bearer {session}"}, timeout=5)
    assert r.status_code == 200 and r.json()["state"] == "admitted", r.text
    m = g.metrics()
    assert m['antre_room_redeems_total{room="w"}'] == 1

    # Reloading once admitted still shows the way on, not the join button.
    b.cmd("reload")
    b.wait_text("#continue", "Lanjutkan pendaftaran", timeout_s=10)
    assert not b.probe("#join")["visible"]


def test_page_in_english_joins_through_the_api(page_gateway, browsers):
    g = page_gateway
    hold_the_slot(g)
    b = browsers("en")
    b.cmd("goto", url=g.url("/rooms/w?lang=en"))
    assert b.probe("#join")["text"].strip() == "Join the queue"
    assert b.probe("a[hreflang=id]")["text"].strip() == "Bahasa Indonesia"
    b.cmd("click", selector="#join")
    b.wait_text("#position", r"^\s*1\s*$")
    assert "less than a minute" in b.probe("#eta")["text"]
    assert "Your position" in b.probe(".position")["text"]
    # Only the API was used: the page did not navigate.
    assert b.cmd("url").endswith("/rooms/w?lang=en")


# ---- without JavaScript ------------------------------------------------------------------------

def test_page_without_javascript_joins_by_form_and_refreshes(page_gateway, browsers):
    g = page_gateway
    holder = hold_the_slot(g)
    b = browsers("nojs", js=False)
    b.cmd("goto", url=g.url("/rooms/w"))
    assert b.probe("#join")["visible"]
    # The form posts to /rooms/w/join, which answers 303 back to the page with the cookie.
    url = b.cmd("click", selector="#join")
    assert url == g.url("/rooms/w")
    assert b.probe("#position")["text"].strip() == "1"
    cookies = {c["name"]: c for c in b.cmd("cookies")}
    assert cookies["antre_ticket"]["httpOnly"]
    doc = b.cmd("html")
    assert meta_refresh(doc) == 2  # poll_after_s near the front of the queue
    # The page reloads by itself (meta refresh), keeping the place.
    n = b.cmd("navigations")["count"]
    b.cmd("wait_navigations", count=n + 2, timeout_ms=20000)
    assert b.probe("#position")["text"].strip() == "1"
    # Admitted: a later refresh shows the way on, and the refreshing stops.
    release(g, holder)
    b.wait_text("#continue", "Lanjutkan pendaftaran", timeout_s=30)
    assert meta_refresh(b.cmd("html")) is None


def test_page_html_with_a_ticket_cookie(page_gateway):
    """The page as plain HTML: what a browser without JavaScript gets."""
    g = page_gateway
    hold_the_slot(g)
    s, joined = waiting_ticket(g)
    r = s.get(g.url("/rooms/w"), timeout=5)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["Content-Language"] == "id"
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    doc = r.text
    assert '<html lang="id">' in doc
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in doc
    # The refresh is the poll interval the API gives (2 s near the front of the queue) and
    # lives in <noscript>: with JavaScript the script polls instead.
    assert meta_refresh(doc) == joined["poll_after_s"] == 2
    assert 'data-poll-after="2"' in doc
    assert shown(doc, "waiting") and not shown(doc, "none") and not shown(doc, "admitted")
    _, body = section(doc, "waiting")
    assert re.search(r'aria-live="polite"[^>]*>[^<]*Posisi Anda\s*<strong id="position">1<',
                     body), body
    assert "Perkiraan waktu tunggu" in text_of(body)
    m = re.search(r'<progress id="progress" max="100" value="(\d+)">(\d+)%</progress>', body)
    assert m and m.group(1) == m.group(2) and 0 <= int(m.group(1)) <= 100
    assert '<label for="progress">' in body
    assert re.search(r'id="room-state">Dibuka<', doc)
    # Every script is inline: nothing is loaded from another host.
    assert not re.search(r'<script[^>]+src=', doc)
    assert not re.search(r'(src|href)="(https?:)?//', doc)

    # English by ?lang=en, by Accept-Language, and ?lang=id wins over the header.
    en = s.get(g.url("/rooms/w?lang=en"), timeout=5)
    assert '<html lang="en">' in en.text and en.headers["Content-Language"] == "en"
    assert "Your position" in text_of(section(en.text, "waiting")[1])
    assert 'hreflang="id"' in en.text
    en2 = s.get(g.url("/rooms/w"), headers={"Accept-Language": "en-US,en;q=0.9"}, timeout=5)
    assert '<html lang="en">' in en2.text
    id_ = s.get(g.url("/rooms/w?lang=id"), headers={"Accept-Language": "en"}, timeout=5)
    assert '<html lang="id">' in id_.text and "Posisi Anda" in id_.text

    # HEAD answers the same headers without a body.
    h = s.head(g.url("/rooms/w"), timeout=5)
    assert h.status_code == 200 and h.content == b""
    assert int(h.headers["Content-Length"]) > 0


def test_page_not_joined_shows_the_form_without_refresh(page_gateway):
    g = page_gateway
    r = requests.get(g.url("/rooms/w"), timeout=5)
    doc = r.text
    assert r.status_code == 200
    assert shown(doc, "none") and not shown(doc, "waiting")
    assert '<form id="join-form" method="post" action="/rooms/w/join">' in doc
    assert meta_refresh(doc) is None
    # With ?lang=en the form keeps the language through the join.
    en = requests.get(g.url("/rooms/w?lang=en"), timeout=5).text
    assert 'action="/rooms/w/join?lang=en"' in en and "Join the queue" in en
    # A forged ticket is not a place.
    bad = requests.get(g.url("/rooms/w"), cookies={"antre_ticket": "v1.x.VHx3fDF8MQ.zz"},
                       timeout=5).text
    assert shown(bad, "none")


def test_page_when_admitted_links_to_continue(page_gateway):
    g = page_gateway
    s = requests.Session()
    r = s.post(g.url("/rooms/w/join"), allow_redirects=False, timeout=5)
    # The room is empty: the form join is admitted at once and lands back on the page.
    assert r.status_code == 303 and r.headers["Location"] == "/rooms/w"
    doc = s.get(g.url("/rooms/w"), timeout=5).text
    assert shown(doc, "admitted"), "a session cookie shows the admitted page"
    assert ('<a id="continue" class="button" href="/rooms/w/continue">Lanjutkan pendaftaran</a>'
            in doc)
    assert meta_refresh(doc) is None
    # The link goes on to continue_url, a path of this origin: the session cookie travels
    # itself, and no token is added.
    r = s.get(g.url("/rooms/w/continue"), allow_redirects=False, timeout=5)
    assert r.status_code == 303 and r.headers["Location"] == "/daftar", r.headers


def test_page_stale_when_redis_is_gone(page_gateway, redis):
    g = page_gateway
    hold_the_slot(g)
    s, _ = waiting_ticket(g)
    # Fresh once the controller has run (the first 100 ms after start have no cache yet).
    wait_for(lambda: 'id="stale" class="notice" role="status" hidden' in
             s.get(g.url("/rooms/w"), timeout=5).text, timeout=10, what="fresh page")
    redis.stop()
    # The cache is older than 1 s: the page says so, and still shows the place.
    def stale_page():
        doc = s.get(g.url("/rooms/w"), timeout=5).text
        return doc if re.search(r'id="stale" class="notice" role="status">', doc) else None
    doc = wait_for(stale_page, timeout=10, interval=0.2, what="stale notice")
    assert "Data mungkin tidak terbaru" in doc
    assert shown(doc, "waiting") and meta_refresh(doc) is not None


# ---- room states -------------------------------------------------------------------------------

def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def test_page_prequeue_draws_places_fairly(make_gateway, workdir):
    with_templates(workdir)
    opens = time.time() + 3600
    g = make_gateway({"room.p.admit_rate_per_min": 60, "room.p.max_active": 10,
                      "room.p.prequeue_from": rfc3339(time.time() - 60),
                      "room.p.opens_at": rfc3339(opens)})
    doc = requests.get(g.url("/rooms/p"), timeout=5).text
    assert shown(doc, "none")
    none = text_of(section(doc, "none")[1])
    assert "diundi secara adil saat pembukaan" in none
    assert re.search(r'<time datetime="%s" data-local>' % rfc3339(opens), doc)
    assert '<form id="join-form"' in doc
    s = requests.Session()
    r = s.post(g.url("/v1/rooms/p/join"), timeout=5)
    assert r.status_code == 202 and r.json()["state"] == "prequeue", r.text
    doc = s.get(g.url("/rooms/p"), timeout=5).text
    assert shown(doc, "prequeue") and not shown(doc, "none")
    assert "diundi secara adil" in text_of(section(doc, "prequeue")[1])
    assert time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(opens)) in doc
    assert 1 <= meta_refresh(doc) <= 60
    en = s.get(g.url("/rooms/p?lang=en"), timeout=5).text
    assert "Your place will then be drawn fairly" in text_of(section(en, "prequeue")[1])


def test_page_scheduled_closed_and_paused_rooms(make_gateway, workdir):
    with_templates(workdir)
    now = time.time()
    g = make_gateway({
        "room.later.opens_at": rfc3339(now + 3600),
        "room.done.closes_at": rfc3339(now - 60),
        "room.hold.paused": "yes", "room.hold.max_active": 1,
    })
    later = requests.get(g.url("/rooms/later"), timeout=5).text
    assert shown(later, "none") and "<form" not in later
    assert "Antrean belum dibuka" in later and meta_refresh(later) == 30
    done = requests.get(g.url("/rooms/done?lang=en"), timeout=5).text
    assert "Registration has closed" in done and "<form" not in done
    assert meta_refresh(done) is None
    s = requests.Session()
    r = s.post(g.url("/v1/rooms/hold/join"), timeout=5)
    assert r.status_code == 202, r.text
    hold = s.get(g.url("/rooms/hold"), timeout=5).text
    assert shown(hold, "waiting")
    assert re.search(r'id="paused-note" class="notice">Antrean sedang dijeda', hold)
    assert re.search(r'id="room-state">Dijeda sementara<', hold)
    assert re.search(r'id="eta">belum dapat diperkirakan<', hold)


def test_page_unknown_room_and_escaping(page_gateway):
    g = page_gateway
    r = requests.get(g.url("/rooms/nope"), timeout=5)
    assert r.status_code == 404 and r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "Antrean tidak ditemukan" in r.text and "nope" in r.text
    assert shown(r.text, "unknown")
    # Room names are [a-z0-9_-], but whatever reaches the page is escaped.
    raw = raw_request(g.port, b"GET /rooms/a'b\"c<i>&x HTTP/1.1\r\nHost: t\r\n"
                              b"Connection: close\r\n\r\n")
    (status, headers, body), = parse_responses(raw)
    if status == 404:
        doc = body.decode()
        assert "a&#39;b&quot;c&lt;i&gt;&amp;x" in doc
        assert "<i>" not in doc and "a'b" not in doc
    else:  # the parser may refuse such a path outright
        assert status == 400, raw[:200]


# ---- the template ------------------------------------------------------------------------------

def test_page_template_is_reloaded_on_sighup_and_errors_keep_the_old_one(make_gateway, workdir):
    path = with_templates(workdir)
    g = make_gateway(ROOM)
    assert "Masuk antrean" in requests.get(g.url("/rooms/w"), timeout=5).text

    def reloads(result):
        return g.metrics().get(f'antre_config_reloads_total{{result="{result}"}}', 0)

    with open(path, "w") as f:
        f.write("<p lang=\"{{lang}}\">custom {{room}} {{#state_none}}join{{/state_none}}"
                "{{^state_none}}pos {{position}}{{/state_none}}</p>\n")
    ok = reloads("ok")
    g.signal(signal.SIGHUP)
    wait_for(lambda: reloads("ok") > ok, timeout=10, what="reload")
    assert requests.get(g.url("/rooms/w"), timeout=5).text == '<p lang="id">custom w join</p>\n'

    # An unknown name (line 2) is refused with its line; the page in use stays.
    with open(path, "w") as f:
        f.write("<p>\n{{positon}}</p>\n")
    ok = reloads("ok")
    g.signal(signal.SIGHUP)
    wait_for(lambda: reloads("ok") > ok, timeout=10, what="reload")
    wait_for(lambda: "line 2: unknown value {{positon}}" in g.read_log(), timeout=5,
             what="template error in the log")
    assert requests.get(g.url("/rooms/w"), timeout=5).text == '<p lang="id">custom w join</p>\n'

    # An unclosed section is refused too.
    with open(path, "w") as f:
        f.write("{{#stale}}x\n")
    ok = reloads("ok")
    g.signal(signal.SIGHUP)
    wait_for(lambda: reloads("ok") > ok, timeout=10, what="reload")
    wait_for(lambda: "{{#stale}} is never closed" in g.read_log(), timeout=5,
             what="template error in the log")
    assert requests.get(g.url("/rooms/w"), timeout=5).text == '<p lang="id">custom w join</p>\n'


def test_page_without_a_template_serves_the_built_in_page(make_gateway):
    g = make_gateway(ROOM)  # the work directory has no conf/templates
    assert "serving the built-in waiting page" in g.read_log()
    r = requests.get(g.url("/rooms/w"), timeout=5)
    assert r.status_code == 200 and "Masuk antrean" in r.text
    assert 'action="/rooms/w/join"' in r.text
    hold_the_slot(g)
    s, joined = waiting_ticket(g)
    doc = s.get(g.url("/rooms/w"), timeout=5).text
    assert '<meta http-equiv="refresh" content="2">' in doc
    assert re.search(r'aria-live="polite">Posisi Anda: <strong>1</strong>', doc)


# ---- the form routes' errors: HTML, never JSON -----------------------------------------------

def form_message(r, status):
    """The refused form's answer: the page (HTML) under STATUS, its message shown; the text."""
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["Content-Type"] == "text/html; charset=utf-8", r.headers
    assert not r.text.lstrip().startswith("{"), r.text[:200]
    m = re.search(r'<p id="message" class="notice error" role="alert"([^>]*)>(.*?)</p>', r.text,
                  re.S)
    assert m, "no message element on the page"
    assert "hidden" not in m.group(1), "the message is hidden"
    return text_of(m.group(2))


def test_form_routes_unknown_room_answer_the_page(page_gateway):
    g = page_gateway
    r = requests.post(g.url("/rooms/nope/join"), allow_redirects=False, timeout=5)
    assert form_message(r, 404) == "Antrean ini tidak ada."
    r = requests.get(g.url("/rooms/nope/continue?lang=en"), allow_redirects=False, timeout=5)
    assert form_message(r, 404) == "There is no such queue."


def test_form_join_closed_and_not_yet_open_rooms_answer_the_page(make_gateway, workdir):
    with_templates(workdir)
    now = time.time()
    g = make_gateway({"room.later.opens_at": rfc3339(now + 3600),
                      "room.done.closes_at": rfc3339(now - 60)})
    r = requests.post(g.url("/rooms/done/join"), allow_redirects=False, timeout=5)
    assert form_message(r, 403) == "Pendaftaran gelombang ini sudah ditutup."
    r = requests.post(g.url("/rooms/later/join?lang=en"), allow_redirects=False, timeout=5)
    assert form_message(r, 403) == "The queue is not open yet."
    # Without a ticket, continue goes back to the page (which offers to join), never JSON.
    r = requests.get(g.url("/rooms/done/continue"), allow_redirects=False, timeout=5)
    assert r.status_code == 303 and r.headers["Location"] == "/rooms/done", r.text


def test_form_join_cross_site_answers_the_page(page_gateway):
    g = page_gateway
    r = requests.post(g.url("/rooms/w/join"), headers={"Origin": "https://evil.example"},
                      allow_redirects=False, timeout=5)
    assert form_message(r, 403) == "Permintaan dari situs lain ditolak."
    assert "antre_ticket" not in r.cookies


def test_form_routes_without_redis_answer_the_page(page_gateway, redis):
    g = page_gateway
    hold = hold_the_slot(g)
    s, _ = waiting_ticket(g)
    release(g, hold)
    # Admitted (the controller runs every 100 ms): continue would redeem the ticket in Redis.
    wait_for(lambda: requests.get(g.url("/v1/rooms/w/status"), cookies=s.cookies,
                                  timeout=5).json().get("state") == "admitted",
             timeout=10, what="admitted")
    before = g.metrics().get('antre_refusals_total{reason="redis_down"}', 0)
    redis.stop()
    wait_for(lambda: requests.get(g.url("/readyz"), timeout=5).status_code == 503, timeout=10,
             what="redis gone")
    r = requests.post(g.url("/rooms/w/join"), allow_redirects=False, timeout=5)
    assert form_message(r, 503) == "Layanan sedang tidak siap; silakan coba lagi sebentar lagi."
    assert int(r.headers["Retry-After"]) >= 1
    r = s.get(g.url("/rooms/w/continue?lang=en"), allow_redirects=False, timeout=5)
    assert form_message(r, 503) == "The service is not ready; please try again shortly."
    assert int(r.headers["Retry-After"]) >= 1
    # Counted once each, where answered.
    assert g.metrics().get('antre_refusals_total{reason="redis_down"}', 0) == before + 2


def test_form_routes_rate_limited_answer_the_page(make_gateway, workdir):
    with_templates(workdir)
    g = make_gateway(dict(ROOM, **{"gateway.per_ip_rate": 1, "gateway.per_ip_burst": 1}))
    got = [requests.post(g.url("/rooms/w/join"), allow_redirects=False, timeout=5)
           for _ in range(3)]
    limited = [r for r in got if r.status_code == 429]
    assert limited, [r.status_code for r in got]
    assert form_message(limited[0], 429).startswith("Terlalu banyak permintaan")
    assert int(limited[0].headers["Retry-After"]) >= 1
    got = [requests.get(g.url("/rooms/w/continue"), allow_redirects=False, timeout=5)
           for _ in range(3)]
    limited = [r for r in got if r.status_code == 429]
    assert limited, [r.status_code for r in got]
    assert form_message(limited[0], 429).startswith("Terlalu banyak permintaan")


# ---- the programme's name ----------------------------------------------------------------------

def test_page_shows_the_configured_programme_name(make_gateway, workdir):
    with_templates(workdir)
    g = make_gateway(dict(ROOM, **{"programme.name": "Program <Uji> & Co"}))
    doc = requests.get(g.url("/rooms/w"), timeout=5).text
    assert "<strong>Program &lt;Uji&gt; &amp; Co</strong>" in doc
    assert "Program <Uji>" not in doc and "<strong>antre</strong>" not in doc
    # Reloadable: SIGHUP shows the new name.
    g.write_conf({"programme.name": "Kartu Uji"})
    g.signal(signal.SIGHUP)
    wait_for(lambda: "<strong>Kartu Uji</strong>" in requests.get(g.url("/rooms/w"), timeout=5).text,
             timeout=10, what="the new name after reload")


def test_built_in_page_shows_the_configured_programme_name(make_gateway):
    g = make_gateway(dict(ROOM, **{"programme.name": "Program Bawaan"}))
    assert "serving the built-in waiting page" in g.read_log()
    assert "<strong>Program Bawaan</strong>" in requests.get(g.url("/rooms/w"), timeout=5).text


# ---- the way on: continue_url and the hand-off -------------------------------------------------

HANDOFF_KEY = "5f1e0c3a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f"


class HandoffRefused(Exception):
    pass


def read_handoff_keys(path):
    """The hand-off key file as a site reads it (docs/api.md): `kid hex` lines, `#` comments,
    every key verifies; a `pepper` line is not a key."""
    keys = {}
    with open(path) as f:
        for line in f:
            words = line.split("#", 1)[0].split()
            if len(words) == 2 and words[0] != "pepper":
                keys[words[0]] = bytes.fromhex(words[1])
    return keys


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text):
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise HandoffRefused("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def handoff_from_fragment(fragment):
    """The token of a page address's fragment ("#antre_handoff=..."), as the site's script
    reads location.hash."""
    got = urllib.parse.parse_qs(fragment.lstrip("#")).get("antre_handoff")
    if not got:
        raise HandoffRefused("no antre_handoff in the fragment")
    return got[0]


def verify_handoff(token, keys, audience, room, now=None):
    """What a registration site does with a hand-off token (docs/api.md): the MAC under the key
    the kid names, then typ, aud (the site's own origin), room and exp. Returns the claims."""
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != "v1":
        raise HandoffRefused("malformed")
    _, kid, payload, mac = parts
    if kid not in keys:
        raise HandoffRefused("unknown key")
    want = hmac.new(keys[kid], f"v1.{kid}.{payload}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(unb64url(mac), want):
        raise HandoffRefused("bad signature")
    claims = json.loads(unb64url(payload))
    if claims.get("typ") != "antre-handoff":
        raise HandoffRefused("not a hand-off")
    if claims.get("aud") != audience:
        raise HandoffRefused("another audience")
    if claims.get("room") != room:
        raise HandoffRefused("another room")
    if not (now if now is not None else time.time()) < claims["exp"]:
        raise HandoffRefused("expired")
    return claims


class Site:
    """The registration site on another origin: serves /landing (a page whose script posts
    location.hash back to /record) and keeps what it saw."""

    PAGE = (b"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Daftar</title></head>"
            b"<body><p id=\"landed\">landed</p><script>"
            b"fetch('/record', {method: 'POST', body: location.hash}).then(function () {"
            b"document.getElementById('landed').textContent = 'recorded'; });"
            b"</script></body></html>")

    def __init__(self):
        self.requests = []  # (path, headers) of every GET, as the server saw them
        self.fragments = []  # what the page's script read of location.hash
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                site.requests.append((self.path, dict(self.headers)))
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(Site.PAGE)))
                self.end_headers()
                self.wfile.write(Site.PAGE)

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                site.fragments.append(self.rfile.read(n).decode())
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def site():
    s = Site()
    yield s
    s.close()


def handoff_keyfile(workdir):
    path = os.path.join(workdir, "handoff.key")
    with open(path, "w") as f:
        f.write(f"# shared with the registration site\nh1 {HANDOFF_KEY}\n")
    os.chmod(path, 0o600)
    return path


@pytest.fixture
def handoff_gateway(make_gateway, workdir, site):
    with_templates(workdir)
    return make_gateway(dict(ROOM, **{
        "room.w.continue_url": f"{site.origin}/landing?from=antre",
        "room.w.handoff_key_file": handoff_keyfile(workdir),
    }))


def admitted_ticket(g):
    """A ticket cookie whose place has been reached (not yet redeemed): requests session."""
    hold = hold_the_slot(g)
    s, _ = waiting_ticket(g)
    release(g, hold)
    wait_for(lambda: requests.get(g.url("/v1/rooms/w/status"),
                                  headers={"Authorization": f"Bearer {s.cookies['antre_ticket']}"},
                                  timeout=5).json().get("state") == "admitted",
             timeout=10, what="admitted")
    return s


def check_session_works(g, session):
    r = requests.get(g.url("/v1/rooms/w/session"),
                     headers={"Authorization": f"Bearer {session}"}, timeout=5)
    assert r.status_code == 200 and r.json()["state"] == "admitted", r.text


def test_continue_in_chromium_hands_the_session_to_another_origin(handoff_gateway, site,
                                                                  browsers, workdir):
    g = handoff_gateway
    keys = read_handoff_keys(os.path.join(workdir, "handoff.key"))
    holder = hold_the_slot(g)
    b = browsers("handoff")
    b.cmd("goto", url=g.url("/rooms/w"))
    b.cmd("click", selector="#join")
    b.wait_text("#position", r"^\s*1\s*$")
    release(g, holder)
    b.wait_text("#continue", "Lanjutkan pendaftaran", timeout_s=30)
    session = json.loads(b.cmd("local_storage")["antre:w:session"])["session"]

    landed = b.cmd("click", selector="#continue")
    assert landed.startswith(f"{site.origin}/landing?from=antre#antre_handoff="), landed
    b.wait_text("#landed", "^recorded$")
    # The site's server never saw the token: it lives in the fragment, which stays in the
    # browser (no request line, no Referer); the site's script read it.
    (path, headers), = [(p, h) for p, h in site.requests if p != "/favicon.ico"]
    assert path == "/landing?from=antre"
    assert "antre_handoff" not in json.dumps(headers)
    fragment, = site.fragments
    assert landed.endswith(fragment)
    token = handoff_from_fragment(fragment)

    before = time.time()
    claims = verify_handoff(token, keys, site.origin, "w")
    assert claims["session"] == session
    assert re.fullmatch(r"[0-9a-f]{32}", claims["sid"]) and claims["owner"] == ""
    assert claims["exp"] - claims["iat"] <= 60 and claims["exp"] > before
    assert abs(claims["iat"] - before) < 30
    check_session_works(g, claims["session"])

    # What a site must refuse: an expired token, another audience or room, a changed payload,
    # a token signed with another key.
    with pytest.raises(HandoffRefused, match="expired"):
        verify_handoff(token, keys, site.origin, "w", now=claims["exp"])
    with pytest.raises(HandoffRefused, match="another audience"):
        verify_handoff(token, keys, "https://daftar.example.go.id", "w")
    with pytest.raises(HandoffRefused, match="another room"):
        verify_handoff(token, keys, site.origin, "other")
    v, kid, payload, mac = token.split(".")
    forged = dict(claims, exp=claims["exp"] + 3600)
    tampered = ".".join([v, kid, b64url(json.dumps(forged).encode()), mac])
    with pytest.raises(HandoffRefused, match="bad signature"):
        verify_handoff(tampered, keys, site.origin, "w")
    with pytest.raises(HandoffRefused, match="bad signature"):
        verify_handoff(token, {kid: bytes(32)}, site.origin, "w")
    with pytest.raises(HandoffRefused, match="bad signature"):
        verify_handoff(token[:-2] + ("AA" if token[-2:] != "AA" else "BA"), keys, site.origin,
                       "w")


def test_continue_without_javascript_redirects_with_the_token(handoff_gateway, site, workdir):
    g = handoff_gateway
    keys = read_handoff_keys(os.path.join(workdir, "handoff.key"))
    s = admitted_ticket(g)
    doc = s.get(g.url("/rooms/w"), timeout=5).text
    assert shown(doc, "admitted")
    assert 'id="continue" class="button" href="/rooms/w/continue"' in doc

    # The form route redeems the ticket and goes straight on, with the session cookie and the
    # token in the fragment; the answer is never cached and passes on no Referer.
    r = s.get(g.url("/rooms/w/continue"), allow_redirects=False, timeout=5)
    assert r.status_code == 303, (r.status_code, r.text[:300])
    loc = r.headers["Location"]
    target, _, fragment = loc.partition("#")
    assert target == f"{site.origin}/landing?from=antre"
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    session = s.cookies.get("antre_session")
    assert session and not s.cookies.get("antre_ticket")
    claims = verify_handoff(handoff_from_fragment(fragment), keys, site.origin, "w")
    assert claims["session"] == session
    check_session_works(g, session)

    # Later, with the session cookie: on again, with a fresh token for the same session.
    time.sleep(1.1)
    r2 = s.get(g.url("/rooms/w/continue"), allow_redirects=False, timeout=5)
    assert r2.status_code == 303
    again = verify_handoff(handoff_from_fragment(r2.headers["Location"].partition("#")[2]), keys,
                           site.origin, "w")
    assert again["session"] == session and again["sid"] == claims["sid"]
    assert again["iat"] > claims["iat"]
    # HEAD answers the same way.
    h = s.head(g.url("/rooms/w/continue"), allow_redirects=False, timeout=5)
    assert h.status_code == 303 and h.headers["Location"].startswith(target + "#antre_handoff=")
    # A session of another room, or none, is not handed off: back to the page.
    r3 = requests.get(g.url("/rooms/w/continue"), allow_redirects=False, timeout=5)
    assert r3.status_code == 303 and r3.headers["Location"] == "/rooms/w"
    r4 = requests.get(g.url("/rooms/w/continue"), cookies={"antre_session": session + "x"},
                      allow_redirects=False, timeout=5)
    assert r4.status_code == 303 and r4.headers["Location"] == "/rooms/w"


def test_continue_without_javascript_lands_on_the_site_in_chromium(handoff_gateway, site,
                                                                   browsers, workdir):
    g = handoff_gateway
    keys = read_handoff_keys(os.path.join(workdir, "handoff.key"))
    holder = hold_the_slot(g)
    b = browsers("nojs-handoff", js=False)
    b.cmd("goto", url=g.url("/rooms/w"))
    b.cmd("click", selector="#join")
    release(g, holder)
    b.wait_text("#continue", "Lanjutkan pendaftaran", timeout_s=30)
    landed = b.cmd("click", selector="#continue")
    target, _, fragment = landed.partition("#")
    assert target == f"{site.origin}/landing?from=antre"
    claims = verify_handoff(handoff_from_fragment(fragment), keys, site.origin, "w")
    cookies = {c["name"]: c["value"] for c in b.cmd("cookies")}
    assert claims["session"] == cookies["antre_session"]
    assert [p for p, _ in site.requests if p != "/favicon.ico"] == ["/landing?from=antre"]


def no_self_link(doc):
    """No link of the admitted page leads back to the page (or to a guessed "/")."""
    _, body = section(doc, "admitted")
    hrefs = re.findall(r'href="([^"]*)"', body)
    assert not [h for h in hrefs if h in ("/", "/rooms/w", "?", "")], hrefs
    assert 'id="continue"' not in body


def test_page_without_continue_url_says_what_the_session_is_for(make_gateway, workdir, browsers):
    with_templates(workdir)
    room = {k: v for k, v in ROOM.items() if k != "room.w.continue_url"}
    g = make_gateway(room)
    holder = hold_the_slot(g)
    b = browsers("no-continue")
    b.cmd("goto", url=g.url("/rooms/w"))
    b.cmd("click", selector="#join")
    b.wait_text("#position", r"^\s*1\s*$")
    release(g, holder)
    text = b.wait_text("#session-use", "Pendaftaran, unggahan dokumen", timeout_s=30)
    assert "sesi" in text and "/v1/registrations" in text
    assert not b.probe("#continue")["found"]
    assert not b.probe("#redeem")["visible"], "the script holds the session: nothing to activate"
    no_self_link(b.cmd("html"))
    b.cmd("goto", url=g.url("/rooms/w?lang=en"))
    text = b.wait_text("#session-use", "Registrations, document uploads", timeout_s=10)
    assert "this session" in text and "registration API" in text
    assert not b.probe("#continue")["found"]

    # As plain HTML with the session cookie: the same text, no link at all.
    s = requests.Session()
    s.cookies.set("antre_session", next(c["value"] for c in b.cmd("cookies")
                                        if c["name"] == "antre_session"))
    doc = s.get(g.url("/rooms/w"), timeout=5).text
    assert shown(doc, "admitted") and "Pendaftaran, unggahan dokumen" in doc
    no_self_link(doc)
    assert not re.findall(r'href="[^"]*"', section(doc, "admitted")[1])
    # The continue route without continue_url keeps the session and goes back to the page.
    r = s.get(g.url("/rooms/w/continue"), allow_redirects=False, timeout=5)
    assert r.status_code == 303 and r.headers["Location"] == "/rooms/w"


def test_page_without_continue_url_still_lets_a_ticket_be_redeemed(make_gateway, workdir):
    with_templates(workdir)
    g = make_gateway({k: v for k, v in ROOM.items() if k != "room.w.continue_url"})
    s = admitted_ticket(g)
    # Without JavaScript an admitted ticket must be redeemed (within redeem_window_s): the page
    # offers that, and says what the session is for.
    doc = s.get(g.url("/rooms/w?lang=en"), timeout=5).text
    no_self_link(doc)
    body = text_of(section(doc, "admitted")[1])
    assert "Registrations, document uploads and email or phone verification" in body
    assert '<a id="redeem" class="button" href="/rooms/w/continue">Activate your session</a>' in doc
    r = s.get(g.url("/rooms/w/continue"), allow_redirects=False, timeout=5)
    assert r.status_code == 303 and r.headers["Location"] == "/rooms/w"
    assert s.cookies.get("antre_session")
    doc = s.get(g.url("/rooms/w"), timeout=5).text
    assert 'id="redeem"' not in doc and "Pendaftaran, unggahan dokumen" in doc


def test_built_in_page_follows_continue_url(make_gateway):
    """The built-in page (no template) links on only with a continue_url."""
    g = make_gateway({k: v for k, v in ROOM.items() if k != "room.w.continue_url"})
    s = requests.Session()
    s.post(g.url("/rooms/w/join"), allow_redirects=False, timeout=5)
    doc = s.get(g.url("/rooms/w"), timeout=5).text
    assert 'id="session-use"' in doc and 'id="continue"' not in doc and 'href="/"' not in doc
    g2 = make_gateway({"room.v.continue_url": "/daftar"})  # the same Redis: another room
    s = requests.Session()
    s.post(g2.url("/rooms/v/join"), allow_redirects=False, timeout=5)
    doc = s.get(g2.url("/rooms/v"), timeout=5).text
    assert '<a id="continue" href="/rooms/v/continue">' in doc and 'id="session-use"' not in doc


@pytest.mark.parametrize("url, why", [
    ("ftp://daftar.example.go.id/", "must be an https:// URL"),
    ("http://daftar.example.go.id/", "http:// only for a loopback host"),
    ("https://Daftar.example.go.id/", "as browsers write it"),
    ("https://daftar.example.go.id:443/", "default port"),
    ("https://user@daftar.example.go.id/", "no user or password"),
    ("//daftar.example.go.id/x", "must not start with //"),
    ("/daftar#top", "fragment"),
    ("daftar", "must be an https:// URL"),
])
def test_bad_continue_url_is_refused_at_start_with_its_line(make_gateway, workdir, url, why):
    g = make_gateway(dict(ROOM, **{"room.w.continue_url": url,
                                   "room.w.handoff_key_file": handoff_keyfile(workdir)}),
                     start=False)
    g.start(wait=False)
    assert g.proc.wait(15) == 1
    lines = open(g.conf_path).read().splitlines()
    lineno = next(i for i, l in enumerate(lines, 1) if l.startswith("continue_url ="))
    log = g.read_log()
    assert re.search(rf"^{re.escape(g.conf_path)}:{lineno}: \[room\.w\] continue_url: .*"
                     rf"{re.escape(why)}", log, re.M), log


def test_continue_url_of_another_origin_needs_its_own_key(make_gateway, workdir):
    g = make_gateway(dict(ROOM, **{"room.w.continue_url": "https://daftar.example.go.id/"}),
                     start=False)
    g.start(wait=False)
    assert g.proc.wait(15) == 1
    assert "[room.w] continue_url: another origin: needs handoff_key_file" in g.read_log()
    # The gateway's own secret_file never signs a hand-off: it would have to leave the gateway.
    g = make_gateway(dict(ROOM, **{"room.w.continue_url": "https://daftar.example.go.id/",
                                   "room.w.handoff_key_file": os.path.join(workdir, "secret")}),
                     start=False)
    g.start(wait=False)
    assert g.proc.wait(15) != 0
    assert "is the gateway's secret_file, which must not leave the gateway" in g.read_log()


def test_continue_url_and_its_key_reload_with_sighup(make_gateway, workdir, site):
    with_templates(workdir)
    g = make_gateway({k: v for k, v in ROOM.items() if k != "room.w.continue_url"})
    s = requests.Session()
    s.post(g.url("/rooms/w/join"), allow_redirects=False, timeout=5)  # admitted at once
    r = s.get(g.url("/rooms/w/continue"), allow_redirects=False, timeout=5)
    assert r.status_code == 303 and r.headers["Location"] == "/rooms/w"

    def reloads():
        return g.metrics().get('antre_config_reloads_total{result="ok"}', 0)

    ok = reloads()
    g.write_conf({"room.w.continue_url": f"{site.origin}/landing",
                  "room.w.handoff_key_file": handoff_keyfile(workdir)})
    g.signal(signal.SIGHUP)
    wait_for(lambda: reloads() > ok, timeout=10, what="reload")
    assert 'id="continue"' in s.get(g.url("/rooms/w"), timeout=5).text
    r = s.get(g.url("/rooms/w/continue"), allow_redirects=False, timeout=5)
    assert r.status_code == 303, r.text[:300]
    keys = read_handoff_keys(os.path.join(workdir, "handoff.key"))
    claims = verify_handoff(handoff_from_fragment(r.headers["Location"].partition("#")[2]), keys,
                            site.origin, "w")
    assert claims["session"] == s.cookies["antre_session"]

    # A new first key line signs from the next reload on; a site holding both lines verifies.
    with open(os.path.join(workdir, "handoff.key"), "w") as f:
        f.write(f"h2 {'ab' * 32}\nh1 {HANDOFF_KEY}\n")
    ok = reloads()
    g.signal(signal.SIGHUP)
    wait_for(lambda: reloads() > ok, timeout=10, what="reload")
    r = s.get(g.url("/rooms/w/continue"), allow_redirects=False, timeout=5)
    token = handoff_from_fragment(r.headers["Location"].partition("#")[2])
    assert token.split(".")[1] == "h2"
    verify_handoff(token, read_handoff_keys(os.path.join(workdir, "handoff.key")), site.origin,
                   "w")
