"""The console and the developer portal in a real browser: Playwright driving Debian's Chromium.

One ``portico`` in store mode (SQLite in a temporary directory) and a small HTTP upstream are started
for the module. Teams ``shop`` (owns services) and ``apps`` (owns applications) and three people are
made through the admin API: alice (admin), bob (``service_admin`` of shop) and carol (``developer``
of apps). Everything else is done in the browser as a person would, and checked through the gateway
with plain HTTP calls, as a client would.

Env: ``PORTICO_BIN`` (default ``target/debug/portico``), ``CHROMIUM`` (default
``/usr/bin/chromium``), ``PORTICO_SCREENSHOTS`` (a folder for the main pages' screenshots; default
a temporary one; ``make screenshots`` writes ``docs/screenshots``), ``CONSOLE_TEST_KEEP=1`` keeps
the temporary directory.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from idp import CLIENT_ID, CLIENT_SECRET, Provider

ROOT = Path(__file__).resolve().parent.parent.parent
BIN = os.environ.get("PORTICO_BIN", str(ROOT / "target" / "debug" / "portico"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ADMIN_TOKEN = "console-test-admin-token"
PASSWORDS = {"alice": "alice-password-1", "bob": "bob-password-12", "carol": "carol-password-1"}
DEADLINE = 30.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Upstream(BaseHTTPRequestHandler):
    """Answers every request with its method and path as JSON."""

    def _answer(self):
        body = json.dumps({"upstream": "orders", "method": self.command, "path": self.path}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *args):
        pass


def http(method, url, body=None, headers=None):
    """(status, parsed JSON body or text) of one plain HTTP call."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def until(what, check, deadline=DEADLINE):
    """Polls ``check`` until it returns a true value, or fails after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > end:
            raise AssertionError(f"not within {deadline}s: {what} (last: {got!r})")
        time.sleep(0.1)


#: The identity provider's people and their groups.
IDP_USERS = {
    "dana": {"groups": ["shop-devs"]},
    "erin": {"groups": ["platform", "shop-devs"]},
    "stranger": {"groups": ["visitors"]},
    "wrongaud": {"groups": ["platform"]},
    "alice": {"groups": ["platform"]},
}


class Gateway:
    def __init__(self, tmp):
        self.tmp = tmp
        self.port, self.admin_port = free_port(), free_port()
        self.idp = Provider(IDP_USERS)
        self.upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
        threading.Thread(target=self.upstream.serve_forever, daemon=True).start()
        self.upstream_addr = f"127.0.0.1:{self.upstream.server_address[1]}"
        cfg = tmp / "portico.yaml"
        cfg.write_text(
            "server:\n"
            f"  listeners: [{{address: 127.0.0.1:{self.port}}}]\n"
            "  threads: 1\n"
            f"  admin: 127.0.0.1:{self.admin_port}\n"
            f"  access_log: {{path: {tmp / 'access.log'}}}\n"
            f"  store: sqlite://{tmp / 'store.db'}\n"
            f"  state_dir: {tmp / 'state'}\n"
            "  grace_period: 1s\n  graceful_shutdown_timeout: 1s\n"
            "  console:\n    oidc:\n"
            f"      issuer: {self.idp.issuer}\n"
            f"      client_id: {CLIENT_ID}\n"
            "      client_secret: {env: PORTICO_TEST_OIDC_SECRET}\n"
            f"      redirect_url: http://127.0.0.1:{self.admin_port}/console/oidc/callback\n"
            "      label: Test IdP\n"
            "      scopes: [openid, profile, email, groups]\n"
            "      roles:\n"
            "        - {group: platform, role: admin}\n"
            "        - {group: shop-devs, team: shop, role: developer}\n"
        )
        env = dict(os.environ, PORTICO_ADMIN_TOKEN=ADMIN_TOKEN, PORTICO_TEST_OIDC_SECRET=CLIENT_SECRET, RUST_LOG="warn")
        self.log = open(tmp / "portico.log", "w")
        self.proc = subprocess.Popen([BIN, "run", "-c", str(cfg)], stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.admin = f"http://127.0.0.1:{self.admin_port}"
        self.base = f"http://127.0.0.1:{self.port}"
        until("the admin listener is ready", lambda: self.ready())

    def ready(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"portico exited: {(self.tmp / 'portico.log').read_text()}")
        try:
            return http("GET", f"{self.admin}/readyz")[0] == 200
        except OSError:
            return False

    def api(self, method, path, body=None):
        return http(method, f"{self.admin}/admin/v1{path}", body, {"authorization": f"Bearer {ADMIN_TOKEN}"})

    def call(self, path, key=None):
        return http("GET", f"{self.base}{path}", headers={"x-api-key": key} if key else {})

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.upstream.shutdown()
        self.idp.stop()
        self.log.close()


@pytest.fixture(scope="module")
def gw():
    tmp = Path(tempfile.mkdtemp(prefix="portico-console-"))
    g = Gateway(tmp)
    try:
        for team, desc in [("shop", "sells things"), ("apps", "builds the shop's apps")]:
            assert g.api("PUT", f"/teams/{team}", {"description": desc})[0] in (200, 201)
        assert g.api("PUT", "/users/alice", {"role": "admin", "password": PASSWORDS["alice"]})[0] in (200, 201)
        for user in ("bob", "carol"):
            assert g.api("PUT", f"/users/{user}", {"password": PASSWORDS[user]})[0] in (200, 201)
        assert g.api("PATCH", "/teams/shop", {"members": [{"user": "bob", "role": "service_admin"}]})[0] == 200
        assert g.api("PATCH", "/teams/apps", {"members": [{"user": "carol", "role": "developer"}]})[0] == 200
        yield g
    finally:
        g.stop()
        if os.environ.get("CONSOLE_TEST_KEEP"):
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots():
    folder = Path(os.environ.get("PORTICO_SCREENSHOTS") or tempfile.mkdtemp(prefix="portico-shots-"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sign_in(browser, gw, user, password=None):
    """A new browser context signed in as ``user``, and its page."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.on("dialog", lambda d: pytest.fail(f"a script ran in the page: {d.message}"))
    page.goto(f"{gw.admin}/console")
    assert page.url.startswith(f"{gw.admin}/console/login"), page.url
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", password or PASSWORDS[user])
    page.click("button[type=submit]")
    return ctx, page


def shot(page, shots, name):
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


def key_of(page):
    return page.locator("#new-key").inner_text().strip()


def test_the_whole_flow_from_a_new_service_to_a_rollback(gw, browser, shots):
    # Sign-in: a wrong password is refused, the right one opens the dashboard.
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.goto(f"{gw.admin}/console/login")
    shot(page, shots, "01-sign-in")
    page.fill("input[name=user]", "alice")
    page.fill("input[name=password]", "not-her-password")
    page.click("button[type=submit]")
    expect(page.locator("#error")).to_contain_text("Wrong user name or password")
    ctx.close()
    ctx, page = sign_in(browser, gw, "alice")
    expect(page.locator("h1")).to_have_text("Dashboard")
    expect(page.locator("#whoami")).to_contain_text("alice")

    # A REST service owned by shop, needing approved subscriptions, served from releases.
    page.goto(f"{gw.admin}/console/services")
    form = page.locator("#new-service")
    form.locator("input[name=name]").fill("orders")
    form.locator("select[name=team]").select_option("shop")
    form.locator("input[name=description]").fill("Orders of the shop")
    form.locator("input[name=target]").fill(gw.upstream_addr)
    form.locator("input[name=path]").fill("/orders")
    form.locator("select[name=subscription]").select_option("manual")
    form.locator("select[name=publishing]").select_option("releases")
    form.locator("input[name=category]").fill("commerce")
    form.locator("button[type=submit]").click()
    expect(page.locator("#service-name")).to_have_text("orders")
    expect(page.locator("#serving")).to_have_text("nothing yet")
    assert gw.call("/orders/1")[0] == 404, "nothing is served before the first publish"

    page.locator("#new-release input[name=release]").fill("v1")
    page.locator("#new-release input[name=note]").fill("first cut")
    page.locator("#new-release button").click()
    expect(page.locator("#releases")).to_contain_text("first cut")
    page.locator("#publish-v1").click()
    expect(page.locator("#notice")).to_contain_text("v1 is published")
    expect(page.locator("#serving")).to_have_text("v1")
    until("v1 is served (401 without a key)", lambda: gw.call("/orders/1")[0] == 401)
    shot(page, shots, "03-service")

    # An application of team apps and its key, shown once.
    page.goto(f"{gw.admin}/console/applications")
    page.locator("#new-application input[name=name]").fill("shop-app")
    page.locator("#new-application select[name=team]").select_option("apps")
    page.locator("#new-application button").click()
    expect(page.locator("#application-name")).to_have_text("shop-app")
    page.locator("#new-key-form button").click()
    key = key_of(page)
    assert re.fullmatch(r"pk_[0-9a-f]{64}", key), key
    shot(page, shots, "04-application-new-key")
    page.reload()
    assert key not in page.content(), "a key is shown once"
    status, body = gw.call("/orders/1", key)
    assert (status, body["error"]["code"]) == (403, "not_subscribed"), body

    # Subscribing waits for the service team's approval.
    page.goto(f"{gw.admin}/console/applications/shop-app")
    page.locator("#subscribe select[name=service]").select_option("orders")
    page.locator("#subscribe input[name=reason]").fill("the checkout flow")
    page.locator("#subscribe button").click()
    expect(page.locator("#notice")).to_contain_text("waits for the service team's approval")
    status, body = gw.call("/orders/1", key)
    assert (status, body["error"]["code"]) == (403, "subscription_pending"), body
    ctx.close()

    # A developer cannot reach the approval queue.
    dctx, dev = sign_in(browser, gw, "carol")
    expect(dev.locator("h1")).to_have_text("Dashboard")
    expect(dev.locator("header nav")).not_to_contain_text("Approvals")
    resp = dev.goto(f"{gw.admin}/console/subscriptions")
    assert resp.status == 403
    expect(dev.locator("#problem")).to_contain_text("approve subscriptions")
    dctx.close()

    # bob, shop's service admin, approves with a reason; the key works at once.
    bctx, bob = sign_in(browser, gw, "bob")
    bob.goto(f"{gw.admin}/console/subscriptions")
    row = bob.locator("#pending tr", has_text="shop-app")
    expect(row.locator(".reason")).to_have_text("the checkout flow")
    shot(bob, shots, "05-approvals")
    row.locator("form", has_text="approve").locator("input[name=reason]").fill("fine by shop")
    row.locator("form", has_text="approve").locator("button").click()
    expect(bob.locator("#notice")).to_contain_text("approved")
    status, body = gw.call("/orders/1", key)
    assert status == 200 and body["upstream"] == "orders", body
    bctx.close()

    # The call is in the call log, its detail and the dashboard.
    ctx, page = sign_in(browser, gw, "alice")

    def logged():
        page.goto(f"{gw.admin}/console/logs?service=orders&status=200")
        return page.locator("#calls a").count() > 0

    until("the call is in the call log", logged)
    shot(page, shots, "06-call-log")
    page.locator("#calls a").first.click()
    expect(page.locator("#call")).to_contain_text("shop-app")
    shot(page, shots, "07-call-detail")

    def counted():
        page.goto(f"{gw.admin}/console?service=orders&range=1h")
        return int(page.locator("#fig-requests").inner_text()) >= 4

    until("the dashboard counts the calls", counted)
    assert page.locator("#chart-traffic").get_attribute("src").startswith("data:image/svg+xml;base64,")
    shot(page, shots, "02-dashboard")

    # A new route in the working copy is not served until its release is published; rollback.
    page.goto(f"{gw.admin}/console/services/orders")
    form = page.locator("#new-route")
    form.locator("input[name=route]").fill("orders-v2")
    form.locator("input[name=path]").fill("/v2/*")
    form.locator("select[name=upstream]").select_option("orders")
    form.locator("textarea[name=policies]").fill("- rate_limit: {requests: 1000, per: second}")
    form.locator("button").click()
    expect(page.locator("#routes")).to_contain_text("orders-v2")
    expect(page.locator("#routes tr", has_text="orders-v2")).to_contain_text("rate_limit")
    assert gw.call("/v2/x", key)[0] == 404, "the working copy is not served"
    page.locator("#new-release input[name=release]").fill("v2")
    page.locator("#new-release button").click()
    page.goto(f"{gw.admin}/console/services/orders/releases/v2?against=v1")
    expect(page.locator("#diff .diff-added").first).to_contain_text("+ orders-v2")
    shot(page, shots, "08-release-diff")
    page.goto(f"{gw.admin}/console/services/orders")
    page.locator("#publish-v2").click()
    expect(page.locator("#serving")).to_have_text("v2")
    assert gw.call("/v2/x", key)[0] == 200
    page.locator("#publish-v1").click()
    expect(page.locator("#serving")).to_have_text("v1")
    assert gw.call("/v2/x", key)[0] == 404, "rolled back to v1"
    assert gw.call("/orders/2", key)[0] == 200

    # The portal: the catalogue, the service's page, "try it" through the gateway.
    page.goto(f"{gw.admin}/portal")
    expect(page.locator("#catalogue")).to_contain_text("orders")
    shot(page, shots, "09-portal")
    page.locator("#catalogue a", has_text="orders").click()
    expect(page.locator("#sample-curl")).to_contain_text(f"{gw.base}/orders")
    expect(page.locator("main")).not_to_contain_text("/v2/*")  # the working copy's route is not served
    page.locator("#try-it input[name=path]").fill("/hello")
    page.locator("#try-it button").click()
    expect(page.locator("#error")).to_contain_text("is not a path of orders")
    page.locator("#try-it input[name=path]").fill("/orders/7")
    page.locator("#try-it input[name=key]").fill(key)
    page.locator("#try-it button").click()
    expect(page.locator("#try-status")).to_have_text("200")
    expect(page.locator("#try-body")).to_contain_text('"/7"')
    shot(page, shots, "10-portal-service")

    # Revoking the key refuses its next request.
    page.goto(f"{gw.admin}/console/applications/shop-app")
    page.locator("#credentials button.bad").first.click()
    expect(page.locator("#notice")).to_contain_text("is revoked")
    assert gw.call("/orders/1", key)[0] == 401

    for name, path in [("11-teams", "/console/teams"), ("12-ai", "/console/ai"), ("13-audit", "/console/audit")]:
        page.goto(f"{gw.admin}{path}")
        shot(page, shots, name)
    ctx.close()


PETSTORE = """openapi: 3.0.3
info: {title: Pets, version: "1.0", description: Pets of the shop}
paths:
  /pets:
    get: {operationId: listPets, summary: List the pets, responses: {"200": {description: the pets}}}
  /pets/{id}:
    get:
      operationId: getPet
      summary: One pet
      parameters: [{name: id, in: path, required: true, schema: {type: integer}}]
      responses: {"200": {description: the pet}}
"""


def test_an_openapi_import_makes_routes_and_a_publish_can_wait_for_approval(gw, browser):
    body = {"team": "shop", "description": "Pets", "publishing": "releases", "publish_approval": True}
    assert gw.api("PUT", "/upstreams/pets", {"team": "shop", "targets": [{"address": gw.upstream_addr}]})[0] in (200, 201)
    assert gw.api("PUT", "/services/pets", body)[0] in (200, 201)
    ctx, page = sign_in(browser, gw, "alice")
    page.goto(f"{gw.admin}/console/services/pets")
    page.locator("#import textarea[name=document]").fill(PETSTORE)
    page.locator("#import select[name=upstream]").select_option("pets")
    page.locator("#import button").click()
    expect(page.locator("#notice")).to_contain_text("2 routes written")
    expect(page.locator("#routes")).to_contain_text("pets-getpet")
    expect(page.locator("#routes")).to_contain_text("/pets/{id}")
    page.locator("#new-release input[name=release]").fill("r1")
    page.locator("#new-release button").click()
    page.locator("#publish-r1").click()
    expect(page.locator("#notice")).to_contain_text("waits for a service admin")
    assert gw.call("/pets/1")[0] == 404, "not served before it is accepted"
    ctx.close()

    bctx, bob = sign_in(browser, gw, "bob")
    bob.goto(f"{gw.admin}/console/services/pets")
    row = bob.locator("#publications tr", has_text="pending")
    row.locator("form", has_text="accept").locator("input[name=comment]").fill("looks right")
    row.locator("form", has_text="accept").locator("button").click()
    expect(bob.locator("#notice")).to_contain_text("accepted")
    expect(bob.locator("#serving")).to_have_text("r1")
    status, body = gw.call("/pets/1")
    assert status == 200 and body["path"] == "/pets/1", body
    # The portal renders the document's operations.
    bob.goto(f"{gw.admin}/portal/services/pets")
    expect(bob.locator(".op")).to_have_count(2)
    expect(bob.locator("main")).to_contain_text("One pet")
    bctx.close()


def test_an_ai_service_and_the_ai_page_show_key_fingerprints_only(gw, browser):
    secret = "sk-console-test-secret-0123456789"
    provider = {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "keys": [{"value": secret}]}
    assert gw.api("PUT", "/resources/ai_provider/mockai", provider)[0] == 200
    ctx, page = sign_in(browser, gw, "alice")
    page.goto(f"{gw.admin}/console/services")
    form = page.locator("#new-service")
    form.locator("input[name=name]").fill("assistant")
    form.locator("select[name=team]").select_option("shop")
    form.locator("select[name=kind]").select_option("ai")
    form.locator("input[name=path]").fill("/assistant")
    form.locator("button[type=submit]").click()
    expect(page.locator("#routes")).to_contain_text("/assistant/*")
    expect(page.locator("#routes")).to_contain_text("ai")
    status, body = gw.call("/assistant/v1/models")
    assert status == 200 and body["object"] == "list", body
    page.goto(f"{gw.admin}/console/ai")
    expect(page.locator("#providers")).to_contain_text("mockai")
    expect(page.locator("#providers code.key")).to_contain_text("sha256:")
    assert secret not in page.content()
    ctx.close()


def test_markup_in_names_is_shown_as_text(gw, browser):
    evil = "<script>alert(1)</script>"
    assert gw.api("PUT", "/services/xss", {"team": "shop", "description": evil, "metadata": {"category": evil}})[0] in (200, 201)
    ctx, page = sign_in(browser, gw, "alice")
    for path in ["/console/services", "/console/services/xss", "/portal", "/portal/services/xss"]:
        page.goto(f"{gw.admin}{path}")
        expect(page.get_by_text(evil).filter(visible=True).first).to_be_visible()
        assert page.locator("script").count() == 0, path
    status, _ = gw.api("PUT", "/services/%3Cb%3Ebold%3C%2Fb%3E", {"team": "shop"})
    if status in (200, 201):
        page.goto(f"{gw.admin}/console/services")
        expect(page.get_by_text("<b>bold</b>").filter(visible=True).first).to_be_visible()
    ctx.close()


def test_forms_need_the_sessions_csrf_token_and_origin(gw, browser):
    ctx, page = sign_in(browser, gw, "alice")
    cookie = next(c for c in ctx.cookies() if c["name"] == "portico_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict", cookie
    resp = page.goto(f"{gw.admin}/console/applications")
    csp = resp.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script" not in csp and "frame-ancestors 'none'" in csp, csp
    token = page.locator("#new-application input[name=_csrf]").get_attribute("value")
    url = f"{gw.admin}/console/applications"
    for form, headers in [
        ({"name": "evil-1", "team": "apps"}, {}),
        ({"name": "evil-2", "team": "apps", "_csrf": "0" * 32}, {}),
        ({"name": "evil-3", "team": "apps", "_csrf": token}, {"origin": "http://evil.example"}),
    ]:
        r = page.request.post(url, form=form, headers=headers, max_redirects=0)
        assert r.status == 403, (form, headers, r.status)
    r = page.request.post(url, form={"name": "good", "team": "apps", "_csrf": token}, max_redirects=0)
    assert r.status == 303, r.status
    names = [a["name"] for a in gw.api("GET", "/applications?limit=1000")[1]["items"]]
    assert "good" in names and not any(n.startswith("evil") for n in names), names
    # Signing out revokes the session's token.
    page.goto(f"{gw.admin}/console")
    page.click("text=Sign out")
    assert page.url.startswith(f"{gw.admin}/console/login")
    page.goto(f"{gw.admin}/console/applications")
    assert page.url.startswith(f"{gw.admin}/console/login")
    ctx.close()


def via_idp(browser, gw, user):
    """A new context that signs in through the identity provider as ``user``: (context, page)."""
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(f"{gw.admin}/console/login?next=/console/settings")
    page.click("#oidc")
    page.fill("#idp-user", user)
    page.click("#idp-go")
    return ctx, page


def test_sign_in_through_an_openid_connect_provider_maps_groups_to_roles(gw, browser):
    ctx, page = via_idp(browser, gw, "dana")
    expect(page.locator("h1")).to_have_text("Settings")
    expect(page.locator("#whoami")).to_contain_text("dana")
    expect(page.locator("main")).to_contain_text("shop: developer")
    assert page.goto(f"{gw.admin}/console/subscriptions").status == 403, "a developer does not approve"
    token_request = gw.idp.token_requests[-1]
    assert len(token_request["code_verifier"]) >= 43, "PKCE: the provider checked the verifier"
    members = gw.api("GET", "/teams/shop")[1]["members"]
    assert {"user": "dana", "role": "developer"} in members, members
    ctx.close()

    ctx, page = via_idp(browser, gw, "erin")
    expect(page.locator("#whoami")).to_contain_text(re.compile(r"^erin .*· admin$"))
    expect(page.locator("header nav")).to_contain_text("Approvals")
    ctx.close()
    assert gw.api("GET", "/users/erin")[1].get("role") == "admin"

    for user, why in [("stranger", "give no role"), ("wrongaud", "ID token"), ("alice", "local user")]:
        ctx, page = via_idp(browser, gw, user)
        expect(page.locator("#error")).to_contain_text(why)
        assert "/console/login" in page.url or page.locator("input[name=password]").count() == 1
        ctx.close()


def test_a_sign_in_cannot_be_replayed_or_finished_in_another_browser(gw, browser):
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(f"{gw.admin}/console/login")
    page.click("#oidc")
    page.fill("#idp-user", "dana")
    with page.expect_response(lambda r: "/console/oidc/callback" in r.url) as info:
        page.click("#idp-go")
    callback = info.value.url
    expect(page.locator("#whoami")).to_contain_text("dana")
    resp = page.goto(callback)
    assert resp.status == 400
    expect(page.locator("#error")).to_contain_text("expired or was already used")
    ctx.close()
    # A callback carried to another browser (no binding cookie) is refused.
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(f"{gw.admin}/console/login")
    page.click("#oidc")
    page.fill("#idp-user", "dana")
    page.check("#idp-stop")
    page.click("#idp-go")
    stolen = page.locator("#callback").get_attribute("href")
    ctx.close()
    other = browser.new_context()
    page = other.new_page()
    assert page.goto(stolen).status == 400
    expect(page.locator("#error")).to_contain_text("another browser")
    other.close()


def test_sign_in_is_rate_limited(gw, browser):
    # Last: after this, sign-in from this address is closed for a minute.
    ctx = browser.new_context()
    page = ctx.new_page()
    statuses = []
    for _ in range(12):
        page.goto(f"{gw.admin}/console/login")
        page.fill("input[name=user]", "mallory")
        page.fill("input[name=password]", "guess-guess-guess")
        with page.expect_response(lambda r: r.url.endswith("/console/login") and r.request.method == "POST") as info:
            page.click("button[type=submit]")
        statuses.append(info.value.status)
    assert statuses[0] == 401 and statuses[-1] == 429, statuses
    expect(page.locator("#error")).to_contain_text("Too many sign-in attempts")
    ctx.close()
