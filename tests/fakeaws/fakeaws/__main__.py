"""Command line: python3 -m fakeaws [options]. Prints nothing secret; writes the bound port to
--port-file once it accepts connections."""

import argparse
import os
import signal
import sys
import threading

from .server import make_server

DEFAULT_ROOT_KEY_ID = "AKIAFAKEROOT00000000"
DEFAULT_ROOT_SECRET = "fakeawsRootSecretKey/0000000000000000000"


def parse_args(argv):
    p = argparse.ArgumentParser(prog="fakeaws", description="Local AWS endpoint for tests: IAM, "
                                "STS, S3 and Secrets Manager with SigV4 verification.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (loopback only)")
    p.add_argument("--port", type=int, default=0, help="port (0 picks a free one)")
    p.add_argument("--port-file", help="write the bound port to this file once listening")
    p.add_argument("--account-id", default="123456789012")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--root-key-id", default=os.environ.get("FAKEAWS_ROOT_KEY_ID",
                                                           DEFAULT_ROOT_KEY_ID))
    p.add_argument("--root-secret", default=os.environ.get("FAKEAWS_ROOT_SECRET",
                                                           DEFAULT_ROOT_SECRET),
                   help="root secret (or FAKEAWS_ROOT_SECRET)")
    p.add_argument("--key-delay", type=float, default=0.0,
                   help="seconds before a new access key is accepted (eventual consistency)")
    p.add_argument("--tls-cert", help="PEM certificate: serve HTTPS")
    p.add_argument("--tls-key", help="PEM private key for --tls-cert")
    p.add_argument("--fault", action="append", help="a fault rule as JSON (repeatable)")
    p.add_argument("--rate-limit", action="append", metavar="SERVICE=TPS[:BURST]",
                   help="token-bucket rate limit per service (repeatable)")
    p.add_argument("--foreign-bucket", action="append", metavar="NAME",
                   help="a bucket owned by another account (repeatable)")
    p.add_argument("--dialect", choices=("aws", "moto"), default="aws",
                   help="answer as current AWS does (default) or as moto 5.2.1 does: sets the "
                   "create_bucket_tags, bucket_defaults and moto_style settings (dialect.py)")
    p.add_argument("--verbose", action="store_true", help="log every HTTP request to stderr")
    args = p.parse_args(argv)
    if not args.host.startswith("127."):
        p.error("fakeaws binds to loopback only (127.0.0.0/8)")
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    server = make_server(args)
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    sys.stderr.write(f"fakeaws: listening on {'https' if server.tls else 'http'}://"
                     f"{args.host}:{port}\n")
    sys.stderr.flush()

    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
