"""The example plugin (plugins/examples/hello) as a plugin author meets it, and `kbctl plugin check`.

The build tree is installed into a temporary prefix (`cmake --install $KB_BUILD_DIR --prefix`),
the installed example source is copied elsewhere and built with its own Makefile, pkg-config
seeing only the installed keybroker-plugin.pc: the compiler must have read the installed
<keybroker/plugin.h> (gcc -H names every header it opens), never the source tree's. Then
`kbctl plugin check` loads it in its throw-away helper and replays the sample events twice; the
plugin's "out" file holds each hook it subscribes to once per round.

Also the loader's refusals as `kbctl plugin check` reports them (a group-writable file, a plugin
of ABI 2.x) and a plugin that crashes mid-sequence (tests/plugins' kbtp.so with behavior segv).

When the tests run as root (CI), the helper drops to "nobody": every directory here is made with
mkdtemp under /tmp and chmod 0755 (the loader refuses a group- or world-writable chain, except a
sticky /tmp), and the out file is handed to nobody.
"""

import collections
import glob
import json
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import unittest

BUILD = os.environ.get("KB_BUILD_DIR", "")
KBCTL = os.path.join(BUILD, "proto", "kbctl")
TEST_PLUGINS = os.path.join(BUILD, "tests", "plugins")
# Under ASan the helper (kbctl itself) catches the plugin's SIGSEGV and exits 1 instead.
SANITIZED = os.environ.get("KB_SANITIZED") == "1" or "sanitize" in BUILD or "asan" in BUILD
SOURCE = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
HOOKS = ["pre_finish", "post_rotate", "rotation_failed", "key_deleted"]  # hello's
# The order kbctl plugin check sends them in (its help), restricted to hello's hooks.
ORDER = ["pre_finish", "post_rotate", "key_deleted", "rotation_failed"]


def private_dir(prefix):
    """A directory the helper (maybe "nobody") can read and nobody else can write."""
    d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.chmod(d, 0o755)
    return d


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=120, **kw)


def kbctl_check(path, *args):
    return run([KBCTL, "plugin", "check", path] + list(args))


class PluginExampleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(KBCTL):
            raise unittest.SkipTest(f"{KBCTL} is not built (KB_BUILD_DIR={BUILD!r})")
        cls.cmake = shutil.which("cmake")
        cls.make = shutil.which("make")
        cls.pkg_config = shutil.which("pkg-config")
        if cls.cmake is None or cls.make is None or cls.pkg_config is None:
            raise AssertionError("cmake, make and pkg-config are needed to build the example")
        # Whatever umask CI has, the files made here must not be group- or world-writable.
        cls.old_umask = os.umask(0o022)
        cls.tmp = private_dir("kb-plugin-example-")
        cls.prefix = os.path.join(cls.tmp, "prefix")
        r = run([cls.cmake, "--install", BUILD, "--prefix", cls.prefix])
        if r.returncode != 0:
            raise AssertionError(f"cmake --install failed:\n{r.stdout}\n{r.stderr}")
        pcs = glob.glob(os.path.join(cls.prefix, "**", "pkgconfig", "keybroker-plugin.pc"),
                        recursive=True)
        if len(pcs) != 1:
            raise AssertionError(f"keybroker-plugin.pc installed {len(pcs)} times: {pcs}")
        cls.pcdir = os.path.dirname(pcs[0])
        headers = glob.glob(os.path.join(cls.prefix, "**", "keybroker", "plugin.h"),
                            recursive=True)
        if len(headers) != 1:
            raise AssertionError(f"keybroker/plugin.h installed {len(headers)} times: {headers}")
        cls.header = os.path.realpath(headers[0])
        examples = glob.glob(os.path.join(cls.prefix, "**", "examples", "plugins", "hello"),
                             recursive=True)
        if len(examples) != 1:
            raise AssertionError(f"the example is installed {len(examples)} times: {examples}")
        # Out of tree: a copy of the installed example, away from the source and the prefix.
        cls.src = os.path.join(cls.tmp, "hello")
        shutil.copytree(examples[0], cls.src)
        os.chmod(cls.src, 0o755)
        env = dict(os.environ, PKG_CONFIG_PATH=cls.pcdir, PKG_CONFIG_LIBDIR=cls.pcdir)
        # -H: gcc and clang print each header they open, so the test sees which plugin.h it was.
        cls.built = run([cls.make, "-C", cls.src, "CFLAGS=-O2 -g -H"], env=env)
        cls.so = os.path.join(cls.src, "hello.so")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)
        os.umask(cls.old_umask)

    def setUp(self):
        self.assertEqual(self.built.returncode, 0,
                         f"make failed:\n{self.built.stdout}\n{self.built.stderr}")

    def out_file(self):
        """An empty file the helper may append to (it runs as nobody when we are root)."""
        d = private_dir("kb-plugin-out-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "events")
        open(path, "w").close()
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
        return path

    def copy_to_private_dir(self, path, mode=0o755):
        d = private_dir("kb-plugin-copy-")
        self.addCleanup(shutil.rmtree, d, True)
        dst = os.path.join(d, os.path.basename(path))
        shutil.copyfile(path, dst)
        os.chmod(dst, mode)
        return dst

    def test_pkg_config_gives_the_installed_include_dir_only(self):
        env = dict(os.environ, PKG_CONFIG_PATH=self.pcdir, PKG_CONFIG_LIBDIR=self.pcdir)
        r = run([self.pkg_config, "--cflags", "keybroker-plugin"], env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        flags = r.stdout.split()
        self.assertEqual(len(flags), 1, flags)
        self.assertEqual(os.path.realpath(flags[0][2:]), os.path.dirname(os.path.dirname(
            self.header)))
        r = run([self.pkg_config, "--libs", "keybroker-plugin"], env=env)
        self.assertEqual(r.stdout.strip(), "", "a plugin links nothing of keybroker")

    def test_example_built_against_the_installed_header(self):
        out = self.built.stdout + self.built.stderr
        cc = [line for line in self.built.stdout.splitlines() if "hello.c" in line]
        self.assertEqual(len(cc), 1, out)
        includes = [os.path.realpath(f[2:]) for f in cc[0].split() if f.startswith("-I")]
        self.assertIn(os.path.dirname(os.path.dirname(self.header)), includes, cc[0])
        for inc in includes:
            self.assertFalse(inc == SOURCE or inc.startswith(SOURCE + os.sep),
                             f"{inc} is in the source tree: {cc[0]}")
        # -H's lines: ". /path/keybroker/plugin.h" - exactly one plugin.h, the installed one.
        opened = [os.path.realpath(m.group(1)) for m in
                  re.finditer(r"^\.+ (\S*keybroker/plugin\.h)$", self.built.stderr, re.M)]
        self.assertEqual(opened, [self.header], out)
        with open(self.header, "rb") as a, \
                open(os.path.join(SOURCE, "plugins", "include", "keybroker", "plugin.h"),
                     "rb") as b:
            self.assertEqual(a.read(), b.read(), "the installed header is the source's")

    def test_example_passes_check(self):
        out = self.out_file()
        r = kbctl_check(self.so, "--config", json.dumps({"out": out}))
        self.assertEqual(r.returncode, 0, f"{r.stdout}\n{r.stderr}")
        self.assertRegex(r.stdout, r"(?m)^name +hello$")
        self.assertRegex(r.stdout, r"(?m)^abi +1\.1$")
        self.assertRegex(r.stdout, r"(?m)^hooks +pre_finish post_rotate rotation_failed "
                                   r"key_deleted$")
        events = re.findall(r"(?m)^round (\d) +(\w+) +(\S+)", r.stdout)
        self.assertEqual(events, [(str(n), h, "ok") for n in (1, 2) for h in ORDER], r.stdout)
        self.assertRegex(r.stdout, r"(?m)^verdict +ok")
        with open(out) as f:
            lines = f.read().splitlines()
        self.assertEqual(collections.Counter(line.split()[0] for line in lines),
                         {h: 2 for h in HOOKS}, lines)
        for line in lines:
            hook, tenant, version = line.split()
            self.assertEqual(tenant, "example")
            self.assertRegex(version, r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                                      r"[0-9a-f]{12}$")
        # The plugin's host->log lines come out on stderr, as the helper's JSON log lines.
        logs = [json.loads(line) for line in r.stderr.splitlines() if line.startswith("{")]
        self.assertTrue(any("hello: post_rotate of tenant example" in str(o.get("message"))
                            for o in logs), r.stderr)

    def test_example_passes_check_json(self):
        r = kbctl_check(self.so, "--json", "--deadline", "5")
        self.assertEqual(r.returncode, 0, f"{r.stdout}\n{r.stderr}")
        doc = json.loads(r.stdout)
        self.assertTrue(doc["ok"], doc)
        self.assertTrue(doc["loaded"])
        self.assertEqual(doc["plugin"]["name"], "hello")
        self.assertEqual(doc["plugin"]["hooks"], HOOKS)
        self.assertEqual([(e["round"], e["hook"], e["result"]) for e in doc["events"]],
                         [(n, h, "ok") for n in (1, 2) for h in ORDER])
        self.assertEqual(doc["shutdown"]["result"], "exited")
        self.assertEqual(doc["shutdown"]["status"], 0)

    def test_group_writable_copy_refused(self):
        so = self.copy_to_private_dir(self.so, 0o775)
        r = kbctl_check(so)
        self.assertEqual(r.returncode, 1, f"{r.stdout}\n{r.stderr}")
        self.assertIn("group-writable", r.stdout + r.stderr)
        self.assertNotRegex(r.stdout, r"(?m)^round ")

    def test_usage_errors(self):
        for args in (["--config", "[1]"], ["--config", "{"], ["--deadline", "0"],
                     ["--deadline", "601"], ["--bogus"]):
            r = kbctl_check(self.so, *args)
            self.assertEqual(r.returncode, 2, f"{args}: {r.stdout}\n{r.stderr}")
        r = run([KBCTL, "plugin", "check"])
        self.assertEqual(r.returncode, 2)
        r = run([KBCTL, "plugin", "frobnicate", self.so])
        self.assertEqual(r.returncode, 2)
        r = run([KBCTL, "--help"])
        self.assertIn("plugin check FILE.so", r.stdout)
        r = run([KBCTL, "plugin", "--help"])
        self.assertEqual(r.returncode, 0)
        self.assertIn("--deadline SECS", r.stdout)

    def test_plugin_host_by_hand(self):
        """Without its socket on fd 3, the hidden helper mode says it is internal."""
        r = run([KBCTL, "--plugin-host"], stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("internal", r.stderr)


class PluginCheckTestPluginsTest(unittest.TestCase):
    """tests/plugins' kbtp*.so: one source whose behaviour comes from its config."""

    def plugin(self, name):
        path = os.path.join(TEST_PLUGINS, name)
        if not os.path.exists(path):
            self.skipTest(f"{path} does not exist: the test plugins (tests/plugins) are not "
                          f"built in this build tree")
        d = private_dir("kb-plugin-tp-")
        self.addCleanup(shutil.rmtree, d, True)
        dst = os.path.join(d, name)
        shutil.copyfile(path, dst)
        os.chmod(dst, 0o755)
        return dst

    def test_major2_refused_naming_the_abi(self):
        r = kbctl_check(self.plugin("kbtp_major2.so"))
        self.assertEqual(r.returncode, 1, f"{r.stdout}\n{r.stderr}")
        self.assertRegex(r.stdout, r"(?m)^refused .*ABI 2")
        self.assertRegex(r.stdout, r"(?m)^verdict +FAIL: refused")
        r = kbctl_check(self.plugin("kbtp_major2.so"), "--json")
        doc = json.loads(r.stdout)
        self.assertFalse(doc["loaded"])
        self.assertIn("ABI 2", doc["load"]["error"])

    def test_crash_reported(self):
        r = kbctl_check(self.plugin("kbtp.so"), "--config",
                        json.dumps({"behavior": "segv", "on": "post_rotate"}))
        self.assertEqual(r.returncode, 1, f"{r.stdout}\n{r.stderr}")
        events = re.findall(r"(?m)^round (\d) +(\w+) +(.*)$", r.stdout)
        self.assertEqual([(n, h) for n, h, _ in events],
                         [("1", "provisioned"), ("1", "pre_finish"), ("1", "post_rotate")],
                         r.stdout)
        death = "(crashed|exited)" if SANITIZED else "crashed"
        self.assertRegex(events[-1][2], r"^crashed: signal 11\b" if not SANITIZED else
                         r"^(crashed: signal 11\b|exited: status)")
        self.assertRegex(r.stdout, r"(?m)^verdict +FAIL: post_rotate " + death + r" in round 1; "
                                   r"the helper died and was not restarted$")

    def test_failure_and_timeout_reported(self):
        r = kbctl_check(self.plugin("kbtp.so"), "--json", "--config",
                        json.dumps({"behavior": "fail", "on": "key_deleted"}))
        self.assertEqual(r.returncode, 1, f"{r.stdout}\n{r.stderr}")
        doc = json.loads(r.stdout)
        failed = [e for e in doc["events"] if e["result"] != "ok"]
        self.assertEqual([(e["round"], e["hook"], e["result"]) for e in failed],
                         [(1, "key_deleted", "failed"), (2, "key_deleted", "failed")])
        self.assertEqual(len(doc["events"]), 16)  # a failure is not a death: both rounds ran
        r = kbctl_check(self.plugin("kbtp.so"), "--json", "--deadline", "1", "--config",
                        json.dumps({"behavior": "loop", "on": "revoked"}))
        self.assertEqual(r.returncode, 1, f"{r.stdout}\n{r.stderr}")
        doc = json.loads(r.stdout)
        self.assertEqual(doc["events"][-1]["hook"], "revoked")
        self.assertEqual(doc["events"][-1]["result"], "timed_out")
        self.assertTrue(doc["helper_died"])


if __name__ == "__main__":
    unittest.main()
