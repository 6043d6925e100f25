# Runs one TAP test program (GLib's installed tests) and writes one JSON line per test case, as pyrun.py does.
"""usage: python3 taprun.py OUT.jsonl PROGRAM [TEST_PATH ...]

Runs PROGRAM --tap (with -p TEST_PATH for each given path) as a child of this
process in a fresh working directory, reads the child's Seccomp field from
/proc/PID/status while it runs, and turns each TAP result line into
{"id", "status": pass|fail|skip|xfail, "detail"}.  A program that dies before
reporting every planned case leaves the cases it never reported missing, and its
last case (if unfinished) becomes an error with the output seen since the
previous result.  Bytes are kept as surrogate escapes.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

SEED = "R02S0123456789abcdef0123456789abcdef"
RESULT = re.compile(r"^(not ok|ok)\s+\d+\s*(.*?)(?:\s+#\s*(SKIP|TODO)\b\s*(.*))?$", re.IGNORECASE)


def main():
    out_path, prog, paths = os.path.abspath(sys.argv[1]), sys.argv[2], sys.argv[3:]
    work = tempfile.mkdtemp(prefix="diff_tap_")
    env = dict(os.environ, G_TEST_SRCDIR=os.path.dirname(prog), G_TEST_BUILDDIR=os.path.dirname(prog))
    argv = [prog, "--tap", "--seed", SEED]
    for p in paths:
        argv += ["-p", p]
    out = open(out_path, "w", encoding="utf-8")
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             cwd=work, env=env)
    seccomp = "?"
    try:
        with open(f"/proc/{child.pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Seccomp:"):
                    seccomp = line.split(b":", 1)[1].strip().decode()
    except OSError:
        pass
    out.write(json.dumps({"header": True, "pid": child.pid, "seccomp": seccomp, "program": prog}) + "\n")
    out.flush()
    pending, planned, seen = [], None, 0
    for raw in child.stdout:
        line = raw.decode("utf-8", "surrogateescape").rstrip("\n")
        sys.stdout.write(line + "\n")
        m = RESULT.match(line)
        if m:
            seen += 1
            ok, name, directive, reason = m.group(1).lower() == "ok", m.group(2), (m.group(3) or "").upper(), m.group(4) or ""
            if directive == "SKIP":
                status, detail = "skip", reason
            elif directive == "TODO":
                status, detail = ("xpass" if ok else "xfail"), reason
            else:
                status, detail = ("pass", "") if ok else ("fail", "\n".join(pending[-40:]))
            out.write(json.dumps({"id": name or f"#{seen}", "status": status, "detail": detail[-4000:]}) + "\n")
            out.flush()
            pending = []
            continue
        mp = re.match(r"^1\.\.(\d+)", line)
        if mp:
            planned = int(mp.group(1))
        pending.append(line)
    rc = child.wait()
    if rc != 0 and pending and (planned is None or seen < planned):
        out.write(json.dumps({"id": f"{os.path.basename(prog)}.<after #{seen}>", "status": "error",
                              "detail": f"exit status {rc}\n" + "\n".join(pending[-40:])}) + "\n")
    out.write(json.dumps({"footer": True, "run": seen, "planned": planned, "rc": rc}) + "\n")
    out.close()
    subprocess.run(["rm", "-rf", work])
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
