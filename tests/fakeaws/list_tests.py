"""Prints the id of every test (module.Class.test_name) in a directory of test_*.py files (the
fakeaws tests by default, or the directory given as the only argument), one per line, so CMake
can register each as its own CTest test."""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(HERE, "tests")
sys.path[:0] = [HERE, TESTS]


def walk(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from walk(t)
        else:
            yield t.id()


suite = unittest.defaultTestLoader.discover(TESTS, pattern="test_*.py", top_level_dir=TESTS)
ids = list(walk(suite))
bad = [i for i in ids if i.startswith("unittest.loader")]
if bad:
    sys.stderr.write("fakeaws tests failed to import: %s\n" % bad)
    sys.exit(1)
print("\n".join(ids))
