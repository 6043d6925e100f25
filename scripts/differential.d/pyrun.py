# One CPython regression-test module run with per-case results: writes one JSON line per test case to OUT.
"""usage: python3 pyrun.py OUT.jsonl MODULE [TEST_ID ...]

Loads MODULE (test.test_os, ...) as regrtest does (TestLoader.loadTestsFromModule,
which honours load_tests), or only the given test ids, and runs it with the
resources the differential harness enables.  The first line of OUT describes
the process (pid, its Seccomp line, python); then one line per case as soon as
it finishes: {"id", "status": pass|fail|error|skip|xfail|xpass, "detail"}.
Strings keep undecodable bytes as surrogate escapes (json escapes them), so
the report can write the original bytes back.
"""
import faulthandler
import importlib
import json
import os
import sys
import tempfile
import time
import unittest

from test import support

# "network" is what the suite asks of tests that use sockets at all (most only on localhost;
# those that need the Internet skip or fail alike on both sides); not enabled: urlfetch,
# largefile, extralargefile, cpu (slow), gui, audio, curses (need hardware or a terminal)
RESOURCES = ["subprocess", "decimal", "walltime", "tzdata", "network"]


def seccomp_line():
    with open("/proc/self/status", "rb") as f:
        for line in f:
            if line.startswith(b"Seccomp:"):
                return line.split(b":", 1)[1].strip().decode()
    return "?"


class Recorder(unittest.TextTestResult):
    """Writes each case's outcome as it is known; subtest failures fail the case."""

    def __init__(self, out, *args, **kw):
        super().__init__(*args, **kw)
        self.out = out
        self.failed_subtests = {}

    def emit(self, test, status, detail=""):
        tid = test.id() if hasattr(test, "id") else str(test)
        rec = {"id": tid, "status": status, "detail": detail[-4000:]}
        self.out.write(json.dumps(rec) + "\n")
        self.out.flush()

    def startTest(self, test):
        super().startTest(test)
        self.failed_subtests.pop(test.id(), None)

    def addSuccess(self, test):
        super().addSuccess(test)
        sub = self.failed_subtests.pop(test.id(), None)
        if sub:
            self.emit(test, sub[0], sub[1])
        else:
            self.emit(test, "pass")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.emit(test, "fail", self._exc_info_to_string(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        # errors of setUpClass/setUpModule come as _ErrorHolder "tests"
        self.emit(test, "error", self._exc_info_to_string(err, test))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self.emit(test, "skip", str(reason))

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self.emit(test, "xfail")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self.emit(test, "xpass")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            kind = "fail" if issubclass(err[0], test.failureException) else "error"
            prev = self.failed_subtests.get(test.id())
            text = str(subtest) + "\n" + self._exc_info_to_string(err, test)
            if prev:
                kind = prev[0] if prev[0] == "error" else kind
                text = prev[1] + "\n" + text
            self.failed_subtests[test.id()] = (kind, text)

    def stopTest(self, test):
        # a test whose only failures were subtests gets no addFailure/addSuccess
        sub = self.failed_subtests.pop(test.id(), None)
        if sub:
            self.emit(test, sub[0], sub[1])
        super().stopTest(test)


def excluded_ids():
    """Case ids (or prefixes: a class) to leave out on both sides: DIFF_EXCLUDE names a file of ID<TAB>REASON lines."""
    path = os.environ.get("DIFF_EXCLUDE")
    if not path or not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [l.split("\t", 1)[0].strip() for l in f if l.strip() and not l.startswith("#")]


def drop(suite, prefixes):
    """The suite without the tests whose id is, or lies under, one of prefixes."""
    if not prefixes:
        return suite
    kept = unittest.TestSuite()
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            kept.addTest(drop(t, prefixes))
        elif not any(t.id() == p or t.id().startswith(p + ".") for p in prefixes):
            kept.addTest(t)
    return kept


def main():
    out_path, module, ids = sys.argv[1], sys.argv[2], sys.argv[3:]
    out_path = os.path.abspath(out_path)
    faulthandler.enable(all_threads=True)
    sys.path[:] = [os.path.abspath(p) if p else p for p in sys.path]
    support.verbose = 0
    support.use_resources = RESOURCES
    support.record_original_stdout(sys.stdout)
    out = open(out_path, "w", encoding="utf-8")
    out.write(json.dumps({"header": True, "pid": os.getpid(), "seccomp": seccomp_line(),
                          "python": sys.version.split()[0], "executable": sys.executable,
                          "module": module}) + "\n")
    out.flush()
    # a private working directory, as regrtest gives each run
    work = tempfile.mkdtemp(prefix="diff_" + module.replace(".", "_") + "_")
    os.chdir(work)
    loader = unittest.TestLoader()
    name = "test." + module
    try:
        if ids:
            suite = loader.loadTestsFromNames(ids)
        else:
            mod = importlib.import_module(name)
            suite = loader.loadTestsFromModule(mod)
    except unittest.SkipTest as e:  # the module skips itself (no /dev/tty, ...)
        out.write(json.dumps({"id": name + ".<load>", "status": "skip", "detail": str(e)}) + "\n")
        out.close()
        return 0
    except BaseException as e:  # a module that cannot even load is one failed case
        out.write(json.dumps({"id": name + ".<load>", "status": "error", "detail": repr(e)}) + "\n")
        out.close()
        return 2
    suite = drop(suite, excluded_ids())
    for err in loader.errors:
        out.write(json.dumps({"id": name + ".<load>", "status": "error", "detail": err[-4000:]}) + "\n")
    runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=2,
                                     resultclass=lambda *a, **k: Recorder(out, *a, **k))
    t0 = time.monotonic()
    result = runner.run(suite)
    out.write(json.dumps({"footer": True, "seconds": time.monotonic() - t0,
                          "run": result.testsRun}) + "\n")
    out.close()
    os.chdir("/")
    from test.support import os_helper
    os_helper.rmtree(work)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
