"""The waiting page, GET /rooms/{room}: rendered by the real gateway, read by Debian's headless
Chromium (with and without JavaScript) and as plain HTML.

The browser is driven by tests/system/page/drive.js (playwright-core from the npm registry,
installed there with `npm ci` when node_modules is missing), which launches /usr/bin/chromium
(or $CHROMIUM). A missing Chromium or Node.js fails the test with the command that installs it:
nothing here is skipped.

Capacity is what makes an applicant wait: the room admits one session at a time (max_active 1),
the test holds that session itself, and releases it with leave while the browser waits.
"""
import html
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time

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
    assert '<a id="continue" class="button" href="/">Lanjutkan pendaftaran</a>' in doc
    assert meta_refresh(doc) is None


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
