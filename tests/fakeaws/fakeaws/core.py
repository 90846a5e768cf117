"""fakeaws core types shared by the server and every service module.

The contract between the server (server.py) and a service module (iam.py, sts.py, s3.py,
secretsmanager.py) is small:

    SERVICE   = "iam"                  # the SigV4 signing name of the service
    PROTOCOL  = "query" | "rest-xml" | "json"
    def new_state(store) -> object     # the module's own state, kept as store.services[SERVICE]
    def operation(req) -> str          # the operation name ("CreateUser"); raises AwsError for an
                                       # unknown action/target (InvalidAction / UnknownOperation...)
    def authorize(store, req, op) -> list[Authz]
                                       # what the request needs in IAM terms, checked for callers
                                       # that are IAM users (root is always allowed)
    def handle(store, req, op) -> Response   # runs with store.lock held; raises AwsError
    def dump_state(store) -> dict      # JSON-able view for GET /_fakeaws/state, never a secret key

The server verifies SigV4 before `authorize`, applies faults and rate limits, evaluates IAM
policies, formats AwsError in the service's wire protocol and records every call in the log.
"""

import threading
import time
import uuid


class AwsError(Exception):
    """An AWS error response. `extra` adds protocol-specific elements (S3's BucketName, ...)."""

    def __init__(self, code, message, status=400, sender=True, extra=None, headers=None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.sender = sender  # Query API <Type>Sender</Type> vs Receiver
        self.extra = extra or {}
        self.headers = headers or {}


class Response:
    """A successful response. body is bytes (or str, encoded as UTF-8)."""

    def __init__(self, status=200, body=b"", content_type=None, headers=None):
        self.status = status
        self.body = body.encode() if isinstance(body, str) else body
        self.headers = dict(headers or {})
        if content_type:
            self.headers["Content-Type"] = content_type


class Authz:
    """One IAM permission a request needs: action ("s3:GetObject"), resource ARN and the
    request's condition context (e.g. {"s3:prefix": "data/"})."""

    def __init__(self, action, resource, context=None):
        self.action = action
        self.resource = resource
        self.context = context or {}

    def __repr__(self):
        return f"Authz({self.action}, {self.resource})"


class Principal:
    """Who signed the request. user_name is None for the account root."""

    def __init__(self, key_id, user_name, arn, account_id):
        self.key_id = key_id
        self.user_name = user_name
        self.arn = arn
        self.account_id = account_id

    @property
    def is_root(self):
        return self.user_name is None


class Request:
    """A parsed HTTP request.

    method        "GET", "PUT", ...
    raw_path      the path exactly as sent (percent-encoded), without the query string
    path          raw_path percent-decoded
    raw_query     the query string exactly as sent
    query         list of (name, value) pairs, decoded, in order
    params        dict name -> first value, from the query string and, for form-encoded POST
                  bodies (Query API), from the body too
    headers       dict lower-case name -> value (repeated headers joined with ",")
    body          bytes
    host          the Host header
    secure        True when the request came over TLS (or the server treats loopback as secure)
    request_id    the id the response carries
    moto_style    True when the response is written the way moto writes it (dialect.py); the
                  server takes it from store.config once per request
    caller        Principal (set after signature verification)
    region        the region of the credential scope
    """

    def __init__(self):
        self.method = "GET"
        self.raw_path = "/"
        self.path = "/"
        self.raw_query = ""
        self.query = []
        self.params = {}
        self.headers = {}
        self.body = b""
        self.host = ""
        self.secure = False
        self.request_id = str(uuid.uuid4())
        self.caller = None
        self.region = None
        self.service = None
        self.moto_style = False

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)


class AccessKey:
    """An access key: the root key or one made by IAM CreateAccessKey."""

    def __init__(self, key_id, secret, user_name, status="Active", created=None):
        self.id = key_id
        self.secret = secret
        self.user_name = user_name  # None for the root key
        self.status = status
        self.created = created if created is not None else time.time()
        self.last_used = None  # {"date": epoch, "service": "s3", "region": "us-east-1"}


class Store:
    """All of fakeaws's state. Every access happens with `lock` held."""

    def __init__(self, account_id, region, root_key_id, root_secret):
        self.lock = threading.RLock()
        self.account_id = account_id
        self.region = region
        self.access_keys = {root_key_id: AccessKey(root_key_id, root_secret, None, created=0)}
        self.root_key_id = root_key_id
        self.services = {}  # SERVICE -> module state from new_state()
        self.config = {
            # seconds before a new access key is accepted (IAM's eventual consistency)
            "key_propagation_delay": 0.0,
            # the value of aws:SecureTransport for plain-HTTP requests: fakeaws on loopback stands
            # in for an HTTPS endpoint, so bucket policies that deny non-TLS access still work
            "plain_http_is_secure": True,
            # the dialect settings (dialect.py): which of S3's newer behaviours apply and whether
            # responses are written the way moto writes them; --dialect sets all three
            "create_bucket_tags": True,
            "bucket_defaults": True,
            "moto_style": False,
        }
        # Buckets that exist in "another account": CreateBucket answers BucketAlreadyExists.
        self.foreign_buckets = set()
        # Managed policies known to IAM (ARN -> policy document dict): a few AWS-managed ones are
        # built in; tests add customer-managed ones through the control endpoint.
        self.managed_policies = {}

    def root_arn(self):
        return f"arn:aws:iam::{self.account_id}:root"

    def principal_for(self, key):
        if key.user_name is None:
            return Principal(key.id, None, self.root_arn(), self.account_id)
        iam = self.services.get("iam")
        arn = iam.user_arn(key.user_name) if iam else None
        return Principal(key.id, key.user_name, arn, self.account_id)

    def usable_key(self, key_id, now=None):
        """The AccessKey for key_id if it exists, is active and has propagated; else None."""
        key = self.access_keys.get(key_id)
        if key is None or key.status != "Active":
            return None
        now = time.time() if now is None else now
        if key.user_name is not None and now - key.created < self.config["key_propagation_delay"]:
            return None
        return key


def iso8601(epoch):
    """AWS's XML timestamp form: 2015-08-30T12:36:00Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def rfc1123(epoch):
    """HTTP date form, as S3 uses in Last-Modified."""
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(epoch))


def xml_escape(s):
    s = str(s)
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&apos;"))


def query_operation(req, operations, version):
    """operation() of a Query-protocol service (IAM, STS): the Action parameter, which must be
    one of operations, with Version (when given) equal to version."""
    action = req.params.get("Action")
    if not action:
        raise AwsError("MissingAction", "Missing Action")
    given = req.params.get("Version")
    if action not in operations or (given is not None and given != version):
        raise AwsError("InvalidAction", f"Could not find operation {action} for version "
                       f"{given if given is not None else version}")
    return action
