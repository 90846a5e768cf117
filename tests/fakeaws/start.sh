# start.sh - sourced (POSIX sh) by the scripts that need a private fakeaws: the benchmark runners
# and tests/demo.sh. It defines fakeaws_start, fakeaws_stop, fakeaws_root_env and fakeaws's fixed
# root key; the caller runs fakeaws_stop in its own cleanup.
#
#   . "$ROOT/tests/fakeaws/start.sh"
#   trap 'fakeaws_stop; rm -rf "$TMP"' EXIT
#   fakeaws_start "$ROOT" "$TMP" || exit 1     # sets FAKEAWS_PID and FAKEAWS_ENDPOINT
#
# fakeaws listens on a free port of 127.0.0.1 (port 0, written to DIR/port) and logs to
# DIR/fakeaws.log; KB_PYTHON names the interpreter (default /usr/bin/python3).

# fakeaws's root key (its defaults, see README.md "fakeaws"): the scripts' "administrator".
FAKEAWS_ROOT_KEY_ID=AKIAFAKEROOT00000000
FAKEAWS_ROOT_SECRET=fakeawsRootSecretKey/0000000000000000000

FAKEAWS_PID=

# fakeaws_start ROOT DIR: starts the fakeaws of the checkout at ROOT with its files in DIR and
# waits (at most 15 s) for its port. Returns 1, with the log on stderr, when it did not start.
fakeaws_start() {
    FAKEAWS_PID=
    FAKEAWS_ENDPOINT=
    (cd "$1/tests/fakeaws" && exec "${KB_PYTHON:-/usr/bin/python3}" -m fakeaws --port 0 \
        --port-file "$2/port") >"$2/fakeaws.log" 2>&1 &
    FAKEAWS_PID=$!
    _fakeaws_i=0
    while [ ! -s "$2/port" ]; do
        _fakeaws_i=$((_fakeaws_i + 1))
        if [ $_fakeaws_i -ge 300 ] || ! kill -0 "$FAKEAWS_PID" 2>/dev/null; then
            echo "fakeaws did not start:" >&2
            cat "$2/fakeaws.log" >&2
            return 1
        fi
        sleep 0.05
    done
    FAKEAWS_ENDPOINT="http://127.0.0.1:$(cat "$2/port")"
}

# fakeaws_root_env: the environment of an AWS client (keybrokerd, kbctl, awscli) talking to this
# fakeaws as its root: its root key, us-east-1, and nothing of the caller's environment that
# would steer the client elsewhere (proxies, profile, config files, endpoint override, retry
# settings, session token, broker socket).
fakeaws_root_env() {
    unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy AWS_PROFILE AWS_CA_BUNDLE
    unset AWS_ENDPOINT_URL AWS_MAX_ATTEMPTS AWS_RETRY_MODE AWS_SESSION_TOKEN KEYBROKER_SOCKET
    export AWS_ACCESS_KEY_ID="$FAKEAWS_ROOT_KEY_ID"
    export AWS_SECRET_ACCESS_KEY="$FAKEAWS_ROOT_SECRET"
    export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
    export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_PAGER=
}

# fakeaws_stop: stops the fakeaws fakeaws_start started, if any (safe to call more than once).
fakeaws_stop() {
    if [ -n "$FAKEAWS_PID" ]; then
        kill "$FAKEAWS_PID" 2>/dev/null || true
        wait "$FAKEAWS_PID" 2>/dev/null || true
        FAKEAWS_PID=
    fi
}
