"""STS (Query API, version 2011-06-15): GetCallerIdentity.

GetCallerIdentity needs no permission (an explicit Deny does not stop it either), so authorize()
asks for nothing. The root answers with the account id as UserId and the account root ARN; an IAM
user with its unique id (AIDA...) and user ARN. In moto_style (dialect.py) the elements come in
moto's order: UserId, Account, Arn.
"""

from .core import Response, query_operation, xml_escape

SERVICE = "sts"
PROTOCOL = "query"
XMLNS = "https://sts.amazonaws.com/doc/2011-06-15/"
VERSION = "2011-06-15"

# server.detect_service routes unsigned Query requests whose Action is in here to STS.
OPERATIONS = {"GetCallerIdentity"}


def new_state(store):
    return {}


def operation(req):
    return query_operation(req, OPERATIONS, VERSION)


def authorize(store, req, op):
    return []


def handle(store, req, op):
    caller = req.caller
    if caller.is_root:
        user_id, arn = store.account_id, store.root_arn()
    else:
        from . import iam
        info = iam.principal_info(store, caller.user_name)
        user_id = info["user_id"] if info else caller.key_id
        arn = info["arn"] if info else caller.arn
    fields = [f"    <Arn>{xml_escape(arn)}</Arn>\n", f"    <UserId>{user_id}</UserId>\n",
              f"    <Account>{store.account_id}</Account>\n"]
    if req.moto_style:  # moto: UserId, Account, Arn
        fields = fields[1:] + fields[:1]
    body = (f'<GetCallerIdentityResponse xmlns="{XMLNS}">\n'
            f"  <GetCallerIdentityResult>\n"
            + "".join(fields) +
            f"  </GetCallerIdentityResult>\n"
            f"  <ResponseMetadata>\n"
            f"    <RequestId>{req.request_id}</RequestId>\n"
            f"  </ResponseMetadata>\n"
            f"</GetCallerIdentityResponse>\n")
    return Response(200, body, content_type="text/xml")


def dump_state(store):
    return {}
