"""A fork server for Debian's awscli 2, started by harness.py under the interpreter /usr/bin/aws
names (its shebang).

Starting /usr/bin/aws costs most of a second, nearly all of it importing awscli and loading the
service models; the test suites run thousands of aws commands. This process does that work once
(imports awscli, builds the CLI driver's command table, loads the models and endpoint data of the
four services), then runs every command the harness sends in a child forked from that state. The
child runs the same entry point /usr/bin/aws runs, with the request's argv, environment and stdio,
so each command is still a fresh, isolated awscli process: nothing a command does (credentials it
resolves, clients it makes) reaches the next one, which forks from this process again.

Protocol: argv[1] is the fd of a SOCK_SEQPACKET socket to the harness. This process sends b"ready"
once warm; each request is one message, JSON {"argv": [...], "env": {...}}, carrying four fds: a
reply socket, then stdin, stdout and stderr for the command. The child writes {"pid": N} and then
{"rc": N} to the reply socket, one JSON line each. End of file on the socket ends this process.
"""

import json
import os
import signal
import socket
import sys

SERVICES = ("iam", "s3", "secretsmanager", "sts")
# The driver made here read these settings at start; a request with other values gets a driver of
# its own (made in its child) instead of the warm one.
DRIVER_ENV = ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_PROFILE",
              "AWS_DEFAULT_PROFILE", "AWS_CLI_AUTO_PROMPT")


def warm_driver(clidriver):
    driver = clidriver.create_clidriver()
    try:
        driver._get_command_table()
        for name in SERVICES:
            driver.session.get_service_model(name)
            # loads the endpoint rules and partitions; explicit values: nothing is resolved from
            # the environment, nothing is cached in the session
            driver.session.create_client(name, region_name="us-east-1",
                                         endpoint_url="http://127.0.0.1:9",
                                         aws_access_key_id="AKIAWARMUP0000000000",
                                         aws_secret_access_key="warm-up-only")
    except Exception:
        pass  # warming is only a speed-up; the driver itself is complete
    return driver


def run(ctl, msg, fds, clidriver, driver, base_env):
    status = 70
    try:
        ctl.close()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        req = json.loads(msg)
        reply = socket.socket(fileno=fds[0])
        for target, fd in enumerate(fds[1:]):
            os.dup2(fd, target)
            os.close(fd)
        env = dict(req["env"])
        if "AWS_DATA_PATH" in base_env and "AWS_DATA_PATH" not in env:
            env["AWS_DATA_PATH"] = base_env["AWS_DATA_PATH"]  # awscli's import set it
        if env.get("LC_CTYPE", "") == "UTF-8":  # as /usr/bin/aws does
            env["LC_CTYPE"] = "en_US.UTF-8"
        os.environ.clear()
        os.environ.update(env)
        sys.argv = ["aws"] + list(req["argv"])  # argparse names the program "aws"
        reply.sendall(json.dumps({"pid": os.getpid()}).encode() + b"\n")
        same = all(env.get(k) == base_env.get(k) for k in DRIVER_ENV)
        rc = clidriver.AWSCLIEntryPoint(driver if same else None).main(req["argv"])
        sys.stdout.flush()
        sys.stderr.flush()
        reply.sendall(json.dumps({"rc": rc}).encode() + b"\n")
        status = 0
    finally:
        os._exit(status)


def main():
    ctl = socket.socket(fileno=int(sys.argv[1]))
    import awscli.clidriver as clidriver

    base_env = dict(os.environ)
    driver = warm_driver(clidriver)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    sys.stdout.flush()
    sys.stderr.flush()
    ctl.send(b"ready")
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(ctl, 1 << 20, 4)
        except InterruptedError:
            continue
        if not msg:
            return 0  # the harness is gone
        if len(fds) != 4:
            for fd in fds:
                os.close(fd)
            continue
        if os.fork() == 0:
            run(ctl, msg, fds, clidriver, driver, base_env)
        for fd in fds:
            os.close(fd)


if __name__ == "__main__":
    sys.exit(main())
