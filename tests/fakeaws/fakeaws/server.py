"""The fakeaws HTTP server: one threaded process on loopback that routes each request to a
service module, after verifying its SigV4 signature, applying injected faults and rate limits
and evaluating IAM policies; every call goes into the call log.

Order of checks for an AWS request (the order AWS's front ends use, as far as it matters here):
    route to a service -> operation name -> signature -> faults / rate limit -> IAM policy
    -> the operation itself

With the moto_style setting (dialect.py) the request is marked req.moto_style, the service
modules write their bodies as moto does, and errors and headers go through dialect.py.
"""

import hashlib
import http.server
import json
import os
import random
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
import traceback
import uuid
from urllib.parse import parse_qsl, unquote, urlsplit

from . import control, dialect, faults, policy, sigv4
from .core import AwsError, Request, Response, Store, xml_escape

SERVICE_MODULES = {}


def _load_services():
    from . import iam, s3, secretsmanager, sts
    for mod in (iam, sts, s3, secretsmanager):
        SERVICE_MODULES[mod.SERVICE] = mod


# Server-side failure codes per protocol family: (HTTP 500, HTTP 503, throttling).
FAULT_ERRORS = {
    "iam": {"500": (500, "ServiceFailure", "Service failure"),
            "503": (503, "ServiceUnavailable", "Service is unavailable"),
            "throttle": (400, "Throttling", "Rate exceeded")},
    "sts": {"500": (500, "InternalFailure", "Internal failure"),
            "503": (503, "ServiceUnavailable", "Service is unavailable"),
            "throttle": (400, "Throttling", "Rate exceeded")},
    "s3": {"500": (500, "InternalError",
                   "We encountered an internal error. Please try again."),
           "503": (503, "ServiceUnavailable", "Please reduce your request rate."),
           "throttle": (503, "SlowDown", "Please reduce your request rate.")},
    "secretsmanager": {"500": (500, "InternalServiceError", "Internal service error"),
                       "503": (503, "ServiceUnavailable", "Service is unavailable"),
                       "throttle": (400, "ThrottlingException", "Rate exceeded")},
}


class FakeAWS:
    """The server's state beyond the AWS resources: faults, rate limits, the call log."""

    def __init__(self, store):
        self.store = store
        self.faults = faults.FaultTable()
        self.calls = []
        self.calls_lock = threading.Lock()
        self.seq = 0

    def log_call(self, entry):
        with self.calls_lock:
            self.seq += 1
            entry["seq"] = self.seq
            self.calls.append(entry)


def detect_service(req):
    """Which service a request is for: the credential scope says so when the request is signed;
    otherwise the shape of the request does."""
    authz = req.header("authorization", "")
    cred = None
    if "Credential=" in authz:
        cred = authz.split("Credential=", 1)[1].split(",", 1)[0].strip()
    else:
        for k, v in req.query:
            if k == "X-Amz-Credential":
                cred = v
    if cred:
        parts = cred.split("/")
        if len(parts) == 5 and parts[3] in SERVICE_MODULES:
            return parts[3]
    if req.header("x-amz-target", "").startswith("secretsmanager."):
        return "secretsmanager"
    action = req.params.get("Action")
    if action is not None:
        return "sts" if action in SERVICE_MODULES["sts"].OPERATIONS else "iam"
    if req.header("x-amz-target") is not None:
        return "secretsmanager"
    return "s3"


def format_error(service, err, req):
    """An AwsError in the wire format of `service`. Returns (status, headers, body)."""
    mod = SERVICE_MODULES[service]
    if req.moto_style:
        return dialect.format_error(mod.PROTOCOL, getattr(mod, "XMLNS", None), err, req)
    headers = dict(err.headers)
    if mod.PROTOCOL == "query":
        body = (f'<ErrorResponse xmlns="{mod.XMLNS}">\n'
                f'  <Error>\n'
                f'    <Type>{"Sender" if err.sender else "Receiver"}</Type>\n'
                f'    <Code>{xml_escape(err.code)}</Code>\n'
                f'    <Message>{xml_escape(err.message)}</Message>\n'
                f'  </Error>\n'
                f'  <RequestId>{req.request_id}</RequestId>\n'
                f'</ErrorResponse>\n')
        headers.update({"Content-Type": "text/xml", "x-amzn-RequestId": req.request_id})
    elif mod.PROTOCOL == "rest-xml":
        extra = "".join(f"<{k}>{xml_escape(v)}</{k}>" for k, v in err.extra.items())
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{xml_escape(err.code)}</Code>"
                f"<Message>{xml_escape(err.message)}</Message>{extra}"
                f"<RequestId>{req.request_id}</RequestId>"
                f"<HostId>{_host_id(req)}</HostId></Error>")
        headers.update({"Content-Type": "application/xml", "x-amz-request-id": req.request_id,
                        "x-amz-id-2": _host_id(req)})
        if req.method == "HEAD":
            body = ""
    else:
        doc = {"__type": err.code, "Message": err.message}
        doc.update(err.extra)
        body = json.dumps(doc)
        headers.update({"Content-Type": "application/x-amz-json-1.1",
                        "x-amzn-RequestId": req.request_id})
    return err.status, headers, body.encode()


def _host_id(req):
    return hashlib.sha256(req.request_id.encode()).hexdigest()[:32]


def success_headers(service, req, resp):
    mod = SERVICE_MODULES[service]
    headers = dict(resp.headers)
    if req.moto_style:
        return headers
    if mod.PROTOCOL == "rest-xml":
        headers.setdefault("x-amz-request-id", req.request_id)
        headers.setdefault("x-amz-id-2", _host_id(req))
    else:
        headers.setdefault("x-amzn-RequestId", req.request_id)
        headers.setdefault("Content-Type", "text/xml" if mod.PROTOCOL == "query"
                           else "application/x-amz-json-1.1")
    return headers


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY the body waits for the
    # client's delayed ACK (~40 ms per call on a reused connection), which AWS does not do.
    disable_nagle_algorithm = True
    server_version = "fakeaws"
    sys_version = ""

    # -- plumbing -----------------------------------------------------------------------------

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("fakeaws: " + (fmt % args) + "\n")

    def do_GET(self):
        self._dispatch()

    do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_GET

    def _read_request(self):
        req = Request()
        req.method = self.command
        split = urlsplit(self.path)
        req.raw_path = split.path or "/"
        req.path = unquote(req.raw_path)
        req.raw_query = split.query
        req.query = parse_qsl(split.query, keep_blank_values=True)
        headers = {}
        for name in self.headers.keys():
            lname = name.lower()
            if lname not in headers:
                headers[lname] = ",".join(v.strip() for v in self.headers.get_all(name))
        req.headers = headers
        req.host = headers.get("host", "")
        length = headers.get("content-length")
        if length:
            try:
                n = int(length)
            except ValueError:
                n = -1
            if n < 0 or n > 64 * 1024 * 1024:
                raise AwsError("InvalidArgument", "Bad Content-Length", status=400)
            req.body = self.rfile.read(n)
        req.secure = self.server.tls or self.server.fake.store.config["plain_http_is_secure"]
        req.params = {}
        for k, v in req.query:
            req.params.setdefault(k, v)
        ctype = headers.get("content-type", "")
        if req.method == "POST" and ctype.startswith("application/x-www-form-urlencoded"):
            for k, v in parse_qsl(req.body.decode("utf-8", "replace"), keep_blank_values=True):
                req.params.setdefault(k, v)
        return req

    def _header_values(self, name):
        if name == "host":
            v = self.headers.get("host")
            return [v] if v is not None else []
        return self.headers.get_all(name) or []

    def _send(self, status, headers, body):
        self.send_response(status)
        has_len = False
        for k, v in headers.items():
            if k.lower() == "content-length":
                has_len = True
            self.send_header(k, v)
        if not has_len:
            self.send_header("Content-Length", str(len(body)))
        self.send_header("Date", self.date_time_string())
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _reset(self, status, headers, body):
        """Send the headers and half the body, then abort the connection with a TCP RST."""
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(max(len(body), 64)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    # -- dispatch -----------------------------------------------------------------------------

    def _dispatch(self):
        fake = self.server.fake
        try:
            req = self._read_request()
        except AwsError as err:
            self._send(err.status, {"Content-Type": "text/plain"}, err.message.encode())
            self.close_connection = True
            return
        if req.path.startswith("/_fakeaws/"):
            status, body = control.handle(fake, self.server, req)
            self._send(status, {"Content-Type": "application/json"},
                       json.dumps(body, indent=1, sort_keys=True).encode())
            return
        try:
            self._aws(fake, req)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _aws(self, fake, req):
        service = detect_service(req)
        mod = SERVICE_MODULES[service]
        req.service = service
        req.moto_style = fake.store.config["moto_style"] is True
        entry = {"time": time.time(), "service": service, "operation": None, "key_id": None,
                 "caller": None, "status": None, "error": None, "request_id": req.request_id,
                 "fault": None, "resource": None}
        reset = False
        try:
            op = mod.operation(req)
            entry["operation"] = op
            resource_name = getattr(mod, "resource_name", None)
            if resource_name is not None:
                try:
                    entry["resource"] = resource_name(req, op)
                except Exception:  # the log is best-effort; the operation reports bad input
                    entry["resource"] = None
            with fake.store.lock:
                key = sigv4.verify(fake.store, req, service, mod.PROTOCOL, self._header_values)
            entry["key_id"] = key.id
            entry["caller"] = req.caller.arn
            reset = self._apply_faults(fake, service, op, entry)
            with fake.store.lock:
                if not req.caller.is_root:
                    policy.check(fake.store, req, mod.authorize(fake.store, req, op))
                resp = mod.handle(fake.store, req, op)
            status, headers, body = resp.status, success_headers(service, req, resp), resp.body
            if req.moto_style:
                headers, body = dialect.success(mod.PROTOCOL, op, req, headers, body)
        except AwsError as err:
            entry["error"] = err.code
            status, headers, body = format_error(service, err, req)
        except Exception:
            # A bug in fakeaws must still look like AWS on the wire: an internal error, logged.
            traceback.print_exc(file=sys.stderr)
            entry["error"] = "InternalError"
            status, headers, body = format_error(service, AwsError(
                FAULT_ERRORS[service]["500"][1], "fakeaws internal error", status=500,
                sender=False), req)
        entry["status"] = status
        fake.log_call(entry)
        if reset:
            self._reset(status, headers, body)
        else:
            self._send(status, headers, body)

    def _apply_faults(self, fake, service, op, entry):
        """Raises the injected error, sleeps for an injected delay, or returns True when the
        response must be cut off by a connection reset."""
        for rule in fake.faults.fire(service, op):
            entry["fault"] = rule.kind
            if rule.kind == "delay":
                time.sleep(rule.delay_ms / 1000.0)
                continue
            if rule.kind == "reset":
                return True
            if rule.kind in ("500", "503", "throttle"):
                status, code, msg = FAULT_ERRORS[service][rule.kind]
                raise AwsError(rule.code or code, rule.message or msg,
                               status=rule.status or status, sender=(rule.kind == "throttle"))
            raise AwsError(rule.code or "InternalError", rule.message or "injected fault",
                           status=rule.status or 400)
        if not fake.faults.take_token(service):
            entry["fault"] = "ratelimit"
            status, code, msg = FAULT_ERRORS[service]["throttle"]
            raise AwsError(code, msg, status=status)
        return False


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, addr, fake, tls_context=None, verbose=False):
        super().__init__(addr, Handler)
        self.fake = fake
        self.verbose = verbose
        self.tls = tls_context is not None
        if tls_context is not None:
            self.socket = tls_context.wrap_socket(self.socket, server_side=True,
                                                  do_handshake_on_connect=False)

    def get_request(self):
        sock, addr = super().get_request()
        if self.tls:
            # Handshake in the handler's thread, not in the accept loop.
            sock.settimeout(10)
        return sock, addr

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, TimeoutError, OSError)):
            return
        super().handle_error(request, client_address)


def make_server(args):
    _load_services()
    store = Store(args.account_id, args.region, args.root_key_id, args.root_secret)
    for name, mod in SERVICE_MODULES.items():
        store.services[name] = mod.new_state(store)
    store.config["key_propagation_delay"] = args.key_delay
    store.config.update(dialect.DIALECTS[getattr(args, "dialect", "aws")])
    for b in args.foreign_bucket or []:
        store.foreign_buckets.add(b)
    fake = FakeAWS(store)
    for spec in args.fault or []:
        fake.faults.add(json.loads(spec))
    for spec in args.rate_limit or []:
        svc, _, rate = spec.partition("=")
        tps, _, burst = rate.partition(":")
        fake.faults.set_rate_limit(svc, float(tps), float(burst) if burst else None)
    ctx = None
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
    return Server((args.host, args.port), fake, ctx, args.verbose)
