"""A small OpenID Connect provider for the console's sign-in tests.

Discovery, an authorization endpoint that asks for a user name (no password: it is a test), a
token endpoint that checks the client's secret and the PKCE verifier (S256) against the challenge,
and the JWKS of its RSA key. ID tokens are RS256 with ``iss``, ``aud``, ``exp``, ``nonce`` and the
user's ``groups``; the user ``wrongaud`` gets a token for another audience. With ``stop`` ticked,
the way back to the client is shown as a link instead of followed.
"""

import base64
import hashlib
import html
import json
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

CLIENT_ID = "portico-console"
CLIENT_SECRET = "console-client-secret"


class Provider:
    def __init__(self, users):
        self.users = users
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.codes = {}
        self.token_requests = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()

    def id_token(self, user, nonce):
        info = self.users[user]
        claims = {
            "iss": self.issuer, "sub": f"sub-{user}", "aud": "someone-else" if user == "wrongaud" else CLIENT_ID,
            "iat": int(time.time()), "exp": int(time.time()) + 300, "nonce": nonce,
            "preferred_username": user, "name": info.get("name", user), "email": f"{user}@example.com",
            "groups": info.get("groups", []),
        }
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "test-key"})

    def _handler(self):
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body, ctype="application/json", headers=()):
                data = body.encode() if isinstance(body, str) else body
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(data)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _form(self):
                n = int(self.headers.get("content-length") or 0)
                return {k: v[0] for k, v in urllib.parse.parse_qs(self.rfile.read(n).decode()).items()}

            def do_GET(self):
                url = urllib.parse.urlparse(self.path)
                if url.path == "/.well-known/openid-configuration":
                    doc = {"issuer": provider.issuer, "authorization_endpoint": f"{provider.issuer}/authorize",
                           "token_endpoint": f"{provider.issuer}/token", "jwks_uri": f"{provider.issuer}/jwks",
                           "response_types_supported": ["code"], "code_challenge_methods_supported": ["S256"]}
                    return self._send(200, json.dumps(doc))
                if url.path == "/jwks":
                    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(provider.key.public_key()))
                    jwk.update({"kid": "test-key", "alg": "RS256", "use": "sig"})
                    return self._send(200, json.dumps({"keys": [jwk]}))
                if url.path == "/authorize":
                    q = urllib.parse.parse_qs(url.query)
                    hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v[0])}">'
                                     for k, v in q.items())
                    page = (f'<html><body><h1>Test IdP</h1><form method="post" action="/authorize">{hidden}'
                            '<label>User <input name="username" id="idp-user"></label>'
                            '<label><input type="checkbox" name="stop" id="idp-stop"> show the way back</label>'
                            '<button type="submit" id="idp-go">Continue</button></form></body></html>')
                    return self._send(200, page, "text/html")
                self._send(404, "{}")

            def do_POST(self):
                form = self._form()
                if self.path == "/authorize":
                    user = form.get("username", "")
                    if user not in provider.users:
                        return self._send(403, "<h1>unknown user</h1>", "text/html")
                    if form.get("client_id") != CLIENT_ID or form.get("code_challenge_method") != "S256":
                        return self._send(400, "<h1>bad request</h1>", "text/html")
                    code = secrets.token_urlsafe(16)
                    provider.codes[code] = dict(form)
                    q = urllib.parse.urlencode({"code": code, "state": form.get("state", "")})
                    if form.get("stop"):
                        link = html.escape(f"{form['redirect_uri']}?{q}")
                        return self._send(200, f'<a id="callback" href="{link}">back</a>', "text/html")
                    return self._send(302, b"", "text/plain", [("location", f"{form['redirect_uri']}?{q}")])
                if self.path == "/token":
                    provider.token_requests.append(form)
                    auth = self.headers.get("authorization", "")
                    want = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
                    if auth != want:
                        return self._send(401, json.dumps({"error": "invalid_client"}))
                    grant = provider.codes.pop(form.get("code", ""), None)
                    if grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
                        return self._send(400, json.dumps({"error": "invalid_grant"}))
                    verifier = form.get("code_verifier", "").encode()
                    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
                    if challenge != grant["code_challenge"]:
                        return self._send(400, json.dumps({"error": "invalid_grant", "error_description": "PKCE"}))
                    token = provider.id_token(grant["username"], grant["nonce"])
                    return self._send(200, json.dumps({"access_token": "at", "token_type": "Bearer", "id_token": token}))
                self._send(404, "{}")

        return Handler
