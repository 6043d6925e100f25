# Compares the per-case results of scripts/differential's native and colocated runs and writes its Markdown report.
"""Reads WORK/times.tsv and WORK/MODULE.{native,colo}[.rerunN].jsonl (one JSON object per
case: id, status, detail; a header line with the process's Seccomp field).

--list-differing   prints "MODULE<TAB>ID ID ..." for the cases to re-run
otherwise          writes the report; exit status 1 if a difference was reproduced by
                   every re-run (or could not be re-run), 0 otherwise.
Text is handled as str with surrogate escapes and written back the same way, so
undecodable bytes in test output reach the report unchanged.
"""
import argparse
import json
import os
import re
import sys

RANK = {"pass": 0, "skip": 1, "xfail": 2, "xpass": 3, "fail": 4, "error": 5}
STATUSES = ["pass", "fail", "error", "skip", "xfail", "xpass"]


def load(path):
    """(header, {id: (status, detail)}, footer) of one jsonl file; None if absent."""
    if not os.path.exists(path):
        return None
    header, footer, cases = None, None, {}
    with open(path, "rb") as f:
        for raw in f:
            try:
                rec = json.loads(raw.decode("utf-8", "surrogateescape"))
            except ValueError:
                continue  # a line cut by a crash
            if rec.get("header"):
                header = rec
            elif rec.get("footer"):
                footer = rec
            elif "id" in rec:
                old = cases.get(rec["id"])
                if old is None or RANK.get(rec["status"], 9) >= RANK.get(old[0], 9):
                    cases[rec["id"]] = (rec["status"], rec.get("detail", ""))
    return header, cases, footer


def rerun_id(suite, tid):
    """The name a differing case is re-run by, or None."""
    if suite == "cpython":
        m = re.match(r"^(setUpClass|tearDownClass|setUpModule|tearDownModule) \((.+)\)$", tid)
        if m:
            return m.group(2)
        if tid.endswith(".<load>") or " " in tid:
            return None
        return tid
    return None if "<" in tid else tid


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--suite", required=True)
    ap.add_argument("--modules", required=True)
    ap.add_argument("--list-differing", action="store_true")
    ap.add_argument("--reruns", type=int, default=0)
    ap.add_argument("--machine")
    ap.add_argument("--explained")
    ap.add_argument("--excluded")
    ap.add_argument("--notes")
    ap.add_argument("--report")
    a = ap.parse_args()
    modules = a.modules.split()
    W = a.work

    times = {}
    with open(os.path.join(W, "times.tsv")) as f:
        for line in f:
            m, side, rc, sec = line.rstrip("\n").split("\t")
            times[(m, side)] = (int(rc), float(sec))

    results, diffs, problems = {}, [], []
    for m in modules:
        for side in ("native", "colo"):
            results[(m, side)] = load(os.path.join(W, f"{m}.{side}.jsonl")) or (None, {}, None)
        hn, cn, fn = results[(m, "native")]
        hc, cc, fc = results[(m, "colo")]
        if hn is None or hn.get("seccomp") != "0":
            problems.append(f"{m}: the native side is not native (Seccomp: {hn and hn.get('seccomp')})")
        if hc is None or hc.get("seccomp") == "0":
            problems.append(f"{m}: the colocated side ran without colo's filter (Seccomp: {hc and hc.get('seccomp')})")
        for tid in sorted(set(cn) | set(cc)):
            sn = cn.get(tid, ("missing", ""))
            sc = cc.get(tid, ("missing", ""))
            if sn[0] != sc[0]:
                diffs.append((m, tid, sn, sc))

    if a.list_differing:
        per = {}
        for m, tid, _, _ in diffs:
            r = rerun_id(a.suite, tid)
            if r and r not in per.setdefault(m, []):
                per[m].append(r)
        for m, ids in per.items():
            if ids:
                print(m + "\t" + " ".join(ids))
        return 0

    explained = []
    if a.explained and os.path.exists(a.explained):
        with open(a.explained, encoding="utf-8") as f:
            for line in f:
                if line.strip() and not line.startswith("#"):
                    pat, text = line.rstrip("\n").split("\t", 1)
                    explained.append((re.compile(pat), text))

    # re-runs: does each difference come back on every round?
    verdicts = []
    for m, tid, sn, sc in diffs:
        rid = rerun_id(a.suite, tid)
        rounds = []
        for r in range(1, a.reruns + 1):
            rn = load(os.path.join(W, f"{m}.native.rerun{r}.jsonl"))
            rc = load(os.path.join(W, f"{m}.colo.rerun{r}.jsonl"))
            if rid is None or rn is None or rc is None:
                continue
            pick = lambda cases: cases.get(tid, ("missing", ""))[0]
            rounds.append((pick(rn[1]), pick(rc[1])))
        if rid is None or not rounds:
            verdict = "not re-runnable alone"
        elif all(n == sn[0] and c == sc[0] for n, c in rounds):
            verdict = "reproduced"
        elif all(n == c for n, c in rounds):
            verdict = "not reproduced (same result on both sides when re-run)"
        else:
            verdict = "varies"
        why = next((t for p, t in explained if p.search(tid)), None)
        verdicts.append((m, tid, sn, sc, rounds, verdict, why))

    firm = [v for v in verdicts if v[5] in ("reproduced", "not re-runnable alone", "varies")]
    out = []
    w = out.append
    title = {"cpython": "CPython's regression tests", "glib": "GLib's installed tests"}.get(a.suite, a.suite)
    w(f"# Differential run: {title}, native and colocated\n")
    w("Produced by `scripts/differential" + ("" if a.suite == "cpython" else f" --suite {a.suite}") +
      "`: each module runs once natively (a plain process: `Seccomp: 0` in its /proc status) and once "
      "under `colo` (`Seccomp: 2`), the two alternating module by module; the results are compared case "
      "by case (pass, fail, error, skip, expected failure, unexpected success, or missing when the process "
      "died or timed out). Every differing case is then re-run alone on both sides "
      f"{a.reruns} times.\n")
    if a.machine:
        with open(a.machine, encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                w("- " + line.rstrip("\n"))
        w("")
    tot = {s: {k: 0 for k in STATUSES + ["missing"]} for s in ("native", "colo")}
    wall = {"native": 0.0, "colo": 0.0}
    rows = []
    for m in modules:
        row = [f"`{m}`"]
        for side in ("native", "colo"):
            _, cases, footer = results[(m, side)]
            counts = {k: 0 for k in STATUSES}
            for st, _ in cases.values():
                counts[st] = counts.get(st, 0) + 1
            for k in STATUSES:
                tot[side][k] += counts.get(k, 0)
            rc, sec = times.get((m, side), (-1, 0.0))
            wall[side] += sec
            flag = "" if footer else f" (no end: rc {rc})"
            row.append(f"{len(cases)}: {counts['pass']}/{counts['fail']}/{counts['error']}/{counts['skip']}"
                       f"/{counts['xfail'] + counts['xpass']}{flag}")
        rn, rc_ = times.get((m, "native"), (0, 0.0))[1], times.get((m, "colo"), (0, 0.0))[1]
        nd = sum(1 for d in diffs if d[0] == m)
        row += [f"{rn:.1f}", f"{rc_:.1f}", f"{rc_ / rn:.2f}" if rn > 0 else "-", str(nd)]
        rows.append(row)
    ncases = {s: sum(tot[s].values()) for s in tot}
    allids = sum(len(set(results[(m, "native")][1]) | set(results[(m, "colo")][1])) for m in modules)
    w("## Summary\n")
    w(f"- modules: {len(modules)}; cases: {ncases['native']} natively, {ncases['colo']} colocated "
      f"({allids} distinct case ids)")
    for side, name in (("native", "natively"), ("colo", "colocated")):
        t = tot[side]
        w(f"- {name}: {t['pass']} passed, {t['fail']} failed, {t['error']} errors, {t['skip']} skipped, "
          f"{t['xfail']} expected failures, {t['xpass']} unexpected successes")
    w(f"- cases whose result differs: **{len(diffs)}** ({sum(1 for v in verdicts if v[5] == 'reproduced')} "
      f"reproduced on every re-run, {sum(1 for v in verdicts if v[5].startswith('not reproduced'))} not "
      f"reproduced, {sum(1 for v in verdicts if v[5] == 'varies')} varying, "
      f"{sum(1 for v in verdicts if v[5] == 'not re-runnable alone')} not re-runnable alone)")
    ratio = wall["colo"] / wall["native"] if wall["native"] else 0
    w(f"- wall time: {wall['native']:.1f} s natively, {wall['colo']:.1f} s colocated: **ratio {ratio:.2f}**")
    if problems:
        w("- **harness problems**: " + "; ".join(problems))
    else:
        w("- every native run had `Seccomp: 0`, every colocated run `Seccomp: 2`")
    w("")
    w("## Modules\n")
    w("Cases per side: total: pass/fail/error/skip/xfail+xpass.\n")
    w("| module | native | colocated | native s | colocated s | ratio | differing |")
    w("|---|---|---|---|---|---|---|")
    for r in rows:
        w("| " + " | ".join(r) + " |")
    w("")
    w("## Differing cases\n")
    if not verdicts:
        w("None.\n")
    else:
        whys = []
        for v in verdicts:
            if v[6] and v[6] not in whys:
                whys.append(v[6])
        w("| case | native | colocated | re-runs (native/colocated) | verdict | why |")
        w("|---|---|---|---|---|---|")
        for m, tid, sn, sc, rounds, verdict, why in verdicts:
            rr = ", ".join(f"{n}/{c}" for n, c in rounds) or "-"
            ref = f"[{whys.index(why) + 1}](#why-{whys.index(why) + 1})" if why else "**not explained yet**"
            w(f"| `{tid}` | {sn[0]} | {sc[0]} | {rr} | {verdict} | {ref} |")
        w("")
        if whys:
            w("### Why\n")
            for i, text in enumerate(whys, 1):
                w(f'<a id="why-{i}"></a>{i}. {text}\n')
        shown = [v for v in verdicts if any(x[1] and x[0] != "pass" for x in (v[2], v[3]))]
        if shown:
            w("### Output of the cases that did not pass\n")
        for m, tid, sn, sc, rounds, verdict, why in shown:
            for side, st in (("native", sn), ("colocated", sc)):
                if st[1] and st[0] != "pass":
                    text = st[1].rstrip("\n").splitlines()
                    if len(text) > 30:
                        text = text[:8] + ["[...]"] + text[-20:]
                    w(f"`{tid}`, {side} ({st[0]}):\n")
                    w("```")
                    for line in text:
                        w(line.replace("```", "`\u200b``"))
                    w("```\n")
    both = []
    for m in modules:
        cn, cc = results[(m, "native")][1], results[(m, "colo")][1]
        for tid in sorted(set(cn) & set(cc)):
            if cn[tid][0] in ("fail", "error") and cn[tid][0] == cc[tid][0]:
                last = [l for l in cn[tid][1].strip().splitlines() if l.strip()]
                both.append((tid, cn[tid][0], last[-1].strip()[:160] if last else ""))
    if both:
        w("## Failing alike on both sides\n")
        w("Not differences: the same result natively and colocated (this machine or the runner).\n")
        for tid, st, last in both:
            w(f"- `{tid}`: {st}" + (f" (`{last.replace('`', chr(39))}`)" if last else ""))
        w("")
    if a.excluded and os.path.exists(a.excluded):
        with open(a.excluded, encoding="utf-8") as f:
            ex = [l.rstrip("\n").split("\t", 1) for l in f if l.strip() and not l.startswith("#")]
        if ex:
            w("## Left out on both sides\n")
            for tid, why in ex:
                w(f"- `{tid}`: {why}")
            w("")
    skipdiff = []
    for m in modules:
        cn, cc = results[(m, "native")][1], results[(m, "colo")][1]
        for tid in sorted(set(cn) & set(cc)):
            if cn[tid][0] == "skip" == cc[tid][0] and cn[tid][1] != cc[tid][1]:
                skipdiff.append((tid, cn[tid][1], cc[tid][1]))
    if skipdiff:
        w("## Skipped on both sides, for different reasons\n")
        for tid, a1, a2 in skipdiff:
            w(f"- `{tid}`: native `{a1.strip()[:200]}`, colocated `{a2.strip()[:200]}`")
        w("")
    if a.notes and os.path.exists(a.notes):
        with open(a.notes, encoding="utf-8", errors="surrogateescape") as f:
            w(f.read().rstrip("\n") + "\n")
    text = "\n".join(out) + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(a.report)), exist_ok=True)
    with open(a.report, "w", encoding="utf-8", errors="surrogateescape") as f:
        f.write(text)
    print(f"{len(modules)} modules, {ncases['native']} cases natively, {ncases['colo']} colocated, "
          f"{len(diffs)} differing ({len(firm)} firm), wall {wall['native']:.1f} s / {wall['colo']:.1f} s = {ratio:.2f}")
    for v in verdicts:
        print(f"DIFF {v[1]}: native {v[2][0]}, colocated {v[3][0]}, {v[5]}")
    for p in problems:
        print("PROBLEM " + p)
    return 1 if firm or problems else 0


if __name__ == "__main__":
    sys.exit(main())
