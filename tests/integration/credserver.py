"""credserver: a loopback HTTP server that plays the two credential endpoints the chain talks to.

    srv = CredServer(expires_in=3600)       # start()/stop(), or use as a context manager
    srv.url                                  # "http://127.0.0.1:PORT"
    srv.container_url                        # srv.url + srv.container_path

EC2 instance metadata, IMDSv2 only:
    PUT /latest/api/token                    needs X-aws-ec2-metadata-token-ttl-seconds (1..21600),
                                             returns a new session token
    GET /latest/meta-data/iam/security-credentials/        the role name  } both need a valid
    GET /latest/meta-data/iam/security-credentials/<role>  credentials    } X-aws-ec2-metadata-token
                                             {"Code":"Success","AccessKeyId","SecretAccessKey",
                                              "Token","Expiration",...}
Container (ECS / EKS Pod Identity):
    GET <container_path>                     checks Authorization when container_token is set,
                                             returns {"AccessKeyId","SecretAccessKey","Token",
                                             "Expiration"}

Every credentials response issues fresh credentials (a new AccessKeyId, secret and token) that
expire `expires_in` seconds later; `issued` keeps them so a test can check what the client got
and that no secret leaked. `log` records each request: method, path, the status returned, and
whether the IMDS token / Authorization header was present and valid (never their values).
Faults: `delay` (seconds before answering), `status` (force an HTTP status on credential
requests), revoke_tokens() (every IMDS session token issued so far becomes invalid).
Python standard library only; binds 127.0.0.1 only.
"""

import datetime as _dt
import http.server
import json
import secrets
import threading
import time

ROLE_PATH = "/latest/meta-data/iam/security-credentials/"


class CredServer:
    def __init__(self, role="kb-test-role", expires_in=3600, container_path="/v2/credentials/kb",
                 container_token=None, delay=0.0, status=None):
        self.role = role
        self.expires_in = expires_in
        self.container_path = container_path
        self.container_token = container_token
        self.delay = delay
        self.status = status
        self.log = []
        self.issued = []
        self._tokens = set()
        self._all_tokens = []
        self._lock = threading.Lock()
        self._server = None
        self._thread = None

    # -- lifecycle --
    def start(self):
        handler = _make_handler(self)
        self._server = _Server(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        return self._server.server_address[1]

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def container_url(self):
        return self.url + self.container_path

    # -- state --
    def revoke_tokens(self):
        with self._lock:
            self._tokens.clear()

    def requests(self, method=None, path=None):
        with self._lock:
            return [r for r in self.log
                    if (method is None or r["method"] == method)
                    and (path is None or r["path"] == path)]

    def all_secrets(self):
        """Every secret value handed out (secret access keys, session tokens, IMDS tokens)."""
        with self._lock:
            out = [c["SecretAccessKey"] for c in self.issued] + [c["Token"] for c in self.issued]
            return out + list(self._all_tokens)

    def _issue(self):
        exp = _dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(seconds=self.expires_in)
        with self._lock:
            n = len(self.issued) + 1
            creds = {
                "AccessKeyId": "ASIACREDSRV%09d" % n,
                "SecretAccessKey": secrets.token_urlsafe(30),
                "Token": "IQoJ" + secrets.token_urlsafe(600),  # real tokens are ~1 KiB
                "Expiration": exp.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            self.issued.append(creds)
        return dict(creds)

    def _new_token(self):
        tok = "AQAEA" + secrets.token_urlsafe(40)
        with self._lock:
            self._tokens.add(tok)
            self._all_tokens.append(tok)
        return tok

    def _token_valid(self, tok):
        with self._lock:
            return tok is not None and tok in self._tokens

    def _record(self, entry):
        with self._lock:
            self.log.append(entry)


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # A client that gave up (a timeout test) closes the connection before the delayed
        # answer: expected, not worth a traceback.
        import sys
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _make_handler(srv):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # keep test output quiet
            pass

        def _reply(self, status, body, entry, ctype="text/plain", headers=()):
            entry["status"] = status
            srv._record(entry)
            data = body.encode() if isinstance(body, str) else body
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _entry(self):
            return {"method": self.command, "path": self.path, "time": time.time()}

        def do_PUT(self):
            entry = self._entry()
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            if srv.delay:
                time.sleep(srv.delay)
            if self.path != "/latest/api/token":
                return self._reply(404, "not found", entry)
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            entry["ttl"] = ttl
            if ttl is None or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return self._reply(400, "missing or invalid ttl", entry)
            tok = srv._new_token()
            return self._reply(200, tok, entry,
                               headers=[("X-aws-ec2-metadata-token-ttl-seconds", ttl)])

        def do_GET(self):
            entry = self._entry()
            if srv.delay:
                time.sleep(srv.delay)
            if self.path.startswith(ROLE_PATH):
                return self._imds_get(entry)
            if self.path == srv.container_path:
                return self._container_get(entry)
            return self._reply(404, "not found", entry)

        def _imds_get(self, entry):
            tok = self.headers.get("X-aws-ec2-metadata-token")
            entry["token_present"] = tok is not None
            entry["token_valid"] = srv._token_valid(tok)
            if not entry["token_valid"]:
                return self._reply(401, "", entry)
            role = self.path[len(ROLE_PATH):]
            if role == "":
                return self._reply(200, srv.role, entry)
            if role != srv.role:
                return self._reply(404, "not found", entry)
            if srv.status is not None:
                return self._reply(srv.status, "forced", entry)
            creds = srv._issue()
            doc = {"Code": "Success", "LastUpdated": creds["Expiration"], "Type": "AWS-HMAC"}
            doc.update(creds)
            entry["issued"] = creds["AccessKeyId"]
            return self._reply(200, json.dumps(doc), entry, "application/json")

        def _container_get(self, entry):
            auth = self.headers.get("Authorization")
            entry["auth_present"] = auth is not None
            entry["auth_valid"] = srv.container_token is None or auth == srv.container_token
            if not entry["auth_valid"]:
                return self._reply(401, '{"message":"unauthorized"}', entry, "application/json")
            if srv.status is not None:
                return self._reply(srv.status, "forced", entry)
            creds = srv._issue()
            creds["RoleArn"] = "arn:aws:iam::123456789012:role/" + srv.role
            entry["issued"] = creds["AccessKeyId"]
            return self._reply(200, json.dumps(creds), entry, "application/json")

    return Handler


if __name__ == "__main__":  # manual use: python3 credserver.py
    with CredServer() as s:
        print(s.url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
