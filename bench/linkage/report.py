"""Collects one run of bench/linkage/run into bench/results/linkage.{json,md}.

linkage.json keeps every size run so far (keyed by persons); a size run again replaces its
entry. The Markdown file is regenerated from the JSON.
"""

import argparse
import csv
import datetime
import io
import json
import os
import platform
import re
import subprocess


def read(path):
    return open(path, encoding="utf-8").read() if os.path.exists(path) else None


def time_v(path):
    """Peak RSS (MiB) and CPU seconds from /usr/bin/time -v."""
    text = read(path) or ""
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    user = re.search(r"User time \(seconds\): ([\d.]+)", text)
    system = re.search(r"System time \(seconds\): ([\d.]+)", text)
    return {
        "peak_rss_mib": round(int(rss.group(1)) / 1024, 1) if rss else None,
        "cpu_seconds": round(float(user.group(1)) + float(system.group(1)), 1) if user and system else None,
    }


def log_times(path):
    """(event, seconds since the epoch) from Kura's -v log (RFC 3339 timestamps)."""
    out = []
    for line in (read(path) or "").splitlines():
        line = re.sub(r"\x1b\[[0-9;]*m", "", line)
        m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z\s+\w+\s+(.*)$", line)
        if not m:
            continue
        ts = datetime.datetime.fromisoformat(m.group(1)[:26]).replace(tzinfo=datetime.timezone.utc).timestamp()
        out.append((m.group(2), ts))
    return out


def loadavg(path):
    """1-minute load averages before and after a system's run (other work on the machine)."""
    text = read(path)
    return [float(line.split()[0]) for line in text.splitlines() if line.strip()] if text else None


def kura_result(run, threads):
    wall = read(os.path.join(run, "kura.wall"))
    if not wall:
        return None
    start, end = map(float, wall.split()[:2])
    items = {}
    for row in csv.reader(io.StringIO(read(os.path.join(run, "kura.csv")) or "")):
        if len(row) >= 2:
            items[row[0]] = row[1]
    report_csv = list(csv.reader(io.StringIO(read(os.path.join(run, "kura-report.csv")) or "")))
    report = json.loads(report_csv[1][0]) if len(report_csv) > 1 else {}
    linkage = report.get("linkage", {})
    quality = report.get("quality") or {}
    # Phases from the log: sources read until the first linkage stage, then training (u, EM),
    # scoring, clustering, and the rest (stable IDs, ground truth, writing the tables).
    events = log_times(os.path.join(run, "kura.log"))
    marks = [("start", start)]
    for text, ts in events:
        for key, name in [
            ("linkage: training", "read sources, block, u"),
            ("linkage: scoring", "train (EM)"),
            ("linkage: clustering", "score"),
            ("linkage done", "cluster, IDs, measure, write"),
        ]:
            if key in text and name not in [m[0] for m in marks]:
                marks.append((name, ts))
    marks.append(("exit", end))
    phases = {}
    for (_, a), (name, b) in zip(marks, marks[1:]):
        phases[name if name != "exit" else "exit"] = round(b - a, 3)
    phases.pop("exit", None)
    if len(marks) >= 2:
        phases["process exit"] = round(end - marks[-2][1], 3)
    compared = sum(n for _, n in linkage.get("pairs_compared", []))
    seconds = end - start
    tv = time_v(os.path.join(run, "kura.time"))
    return {
        "system": "kura",
        "command": "kura link --data <copy> --ground-truth \"SELECT source, source_key, person_id FROM truth.person_map\" --csv",
        "threads": linkage.get("threads", threads),
        "completed": True,
        "wall_seconds": round(seconds, 3),
        "linkage_seconds": linkage.get("seconds"),
        "phases": phases,
        "rows": linkage.get("rows"),
        "keys": linkage.get("entries"),
        "records_compared": linkage.get("records"),
        "persons": linkage.get("persons"),
        "comparisons": compared,
        "comparisons_per_rule": dict(linkage.get("pairs_compared", [])),
        "blocks_skipped": linkage.get("blocks_skipped"),
        "own_comparisons_per_second": linkage.get("comparisons_per_second"),
        "quality": {
            "unit": "source keys",
            "precision": quality.get("precision"),
            "recall": quality.get("recall"),
            "f1": quality.get("f1"),
            "true_positives": quality.get("true_positives"),
            "predicted_pairs": quality.get("predicted_pairs"),
            "true_pairs": quality.get("true_pairs"),
        },
        "load_average_before_after": loadavg(os.path.join(run, "kura.loadavg")),
        **tv,
    }


def splink_result(run, timeout_min):
    wall = read(os.path.join(run, "splink.wall"))
    if not wall:
        return None
    start, end, status = wall.split()
    res = json.loads(read(os.path.join(run, "splink.json")) or "{}")
    res["exit_status"] = int(status)
    res["process_seconds"] = round(float(end) - float(start), 3)
    if int(status) == 124 or int(status) == 137:
        res["outcome"] = f"stopped after the {timeout_min}-minute limit, in phase '{res.get('phase_reached')}'"
    elif not res.get("completed"):
        lines = (read(os.path.join(run, "splink.log")) or "").strip().splitlines()
        errors = [l.strip() for l in lines if "Error" in l] or lines[-1:]
        res["outcome"] = f"failed (exit {status}) in phase '{res.get('phase_reached')}': " + (errors[-1][:300] if errors else "")
    else:
        res["outcome"] = "completed"
    res["wall_seconds"] = res.get("seconds")
    prep = read(os.path.join(run, "prepare.json"))
    res["input_preparation"] = json.loads(prep) if prep else None
    res.update(time_v(os.path.join(run, "splink.time")))
    res["load_average_before_after"] = loadavg(os.path.join(run, "splink.loadavg"))
    return res


def rates(r, cores):
    if r and r.get("completed") and r.get("comparisons") and r.get("wall_seconds"):
        r["comparisons_per_second"] = round(r["comparisons"] / r["wall_seconds"])
        r["comparisons_per_second_per_core"] = round(r["comparisons"] / r["wall_seconds"] / cores)


def machine():
    mem = read("/proc/meminfo") or ""
    m = re.search(r"MemTotal:\s+(\d+) kB", mem)
    cpu = re.search(r"model name\s*:\s*(.*)", read("/proc/cpuinfo") or "")
    return {
        "nproc": os.cpu_count(),
        "ram_gib": round(int(m.group(1)) / 1024 / 1024, 1) if m else None,
        "cpu": cpu.group(1).strip() if cpu else None,
        "os": platform.platform(),
    }


def fmt(v, digits=None):
    if v is None:
        return "—"
    if isinstance(v, float) and digits is not None:
        return f"{v:.{digits}f}"
    if isinstance(v, (int, float)):
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.1f}"
    return str(v)


def markdown(doc):
    lines = [
        "# Linkage benchmark: Kura against Splink",
        "",
        "Generated by `bench/linkage/run` (see bench/README.md, *Linkage against Splink*). "
        "Times are wall seconds of each system's whole linkage on "
        f"{doc['machine']['nproc']} cores ({doc['machine']['cpu']}), {doc['machine']['ram_gib']} GiB; "
        "comparisons are the record pairs each system scored with its model (its blocking rules' "
        "distinct pairs); precision, recall and F1 are pairwise over source keys against the "
        "generator's ground truth (truth.person_map).",
        "",
    ]
    for persons, entry in sorted(doc["runs"].items(), key=lambda kv: int(kv[0])):
        k, s = entry.get("kura"), entry.get("splink")
        lines += [f"## {int(persons):,} persons ({entry['date']}, {entry['threads']} threads)", ""]
        lines += [
            "| system | version | threads | wall s | comparisons | comparisons/s | comparisons/s/core | precision | recall | F1 | peak RSS MiB |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in (k, s):
            if not r:
                continue
            q = r.get("quality") or {}
            version = r.get("version") or ""
            if r["system"] == "splink":
                version = f"{r.get('version')} (DuckDB {r.get('duckdb')})"
            if not r.get("completed"):
                lines.append(
                    f"| {r['system']} | {version} | {r.get('threads')} | did not finish: {r.get('outcome')} "
                    f"| {fmt(r.get('comparisons'))} | — | — | — | — | — | {fmt(r.get('peak_rss_mib'))} |"
                )
                continue
            lines.append(
                f"| {r['system']} | {version} | {r.get('threads')} | {fmt(r.get('wall_seconds'), 1)} | {fmt(r.get('comparisons'))} "
                f"| {fmt(r.get('comparisons_per_second'))} | {fmt(r.get('comparisons_per_second_per_core'))} "
                f"| {fmt(q.get('precision'), 4)} | {fmt(q.get('recall'), 4)} | {fmt(q.get('f1'), 4)} | {fmt(r.get('peak_rss_mib'))} |"
            )
        for a in entry.get("splink_earlier_attempts", []):
            lines += ["", f"Earlier Splink attempt at this size ({a.get('date')}, predict chunks {a.get('predict_chunks') or 1}): {a.get('outcome')}; "
                      f"phases reached: " + ", ".join(f"{n} {v:.1f}" for n, v in (a.get("phases") or {}).items())
                      + f"; {fmt(a.get('process_seconds'), 1)} s in all."]
        if entry.get("ratio_splink_over_kura_seconds"):
            lines += [
                "",
                f"Splink's wall time over Kura's: **{entry['ratio_splink_over_kura_seconds']:.2f}×** "
                f"(Kura/Splink time ratio {1 / entry['ratio_splink_over_kura_seconds']:.3f}); "
                f"F1 difference Kura − Splink: {entry['f1_kura_minus_splink']:+.4f}.",
            ]
        lines += ["", "Phases (seconds):", ""]
        for r in (k, s):
            if r and r.get("phases"):
                lines.append(f"- {r['system']}: " + ", ".join(f"{n} {v:.1f}" for n, v in r["phases"].items()))
        if k:
            lines += [
                "",
                f"Kura: {fmt(k.get('rows'))} rows, {fmt(k.get('keys'))} source keys, {fmt(k.get('records_compared'))} "
                f"distinct identity profiles compared, {fmt(k.get('persons'))} persons; its own report counts "
                f"{fmt(k.get('own_comparisons_per_second'))} comparisons/s (training and scoring comparisons over the "
                f"linkage proper, {fmt(k.get('linkage_seconds'), 1)} s, without reading the sources and writing the results).",
            ]
        if s:
            prep = s.get("input_preparation") or {}
            q = s.get("quality_records") or {}
            lines += [
                "",
                f"Splink: {fmt(s.get('records'))} records (one per source row, {fmt(prep.get('keys'))} source keys), "
                f"{fmt(s.get('persons'))} clusters; input exported and normalised by Kura in "
                f"{fmt(prep.get('seconds'), 1)} s (not in Splink's time); scored pairs counted by Splink's "
                f"count_comparisons_from_blocking_rules in {fmt(s.get('count_seconds'), 1)} s (not in its time)."
                + (f" Predict ran in {s['predict_chunks']} chunks (Splink's num_chunks_left)." if (s.get("predict_chunks") or 1) > 1 else "")
                + (f" Note: {s['note']}." if s.get("note") else "")
                + (
                    f" Over records instead of keys: precision {q['precision']:.4f}, recall {q['recall']:.4f}, F1 {q['f1']:.4f}."
                    if q
                    else ""
                ),
            ]
        if entry.get("load_note"):
            lines += ["", f"Machine load: {entry['load_note']}"]
        lines.append("")
    lines += [
        "## Caveats",
        "",
        "- Kura compares identity *profiles* (the rows of one source with identical identity values, "
        "collapsed); Splink compares every exported row. Both are scored over source keys.",
        "- Splink blocks on the same five rules as Kura's prediction blocking, but without Kura's "
        "cap on block size (blocks over 20,000 profiles are skipped by Kura) and on rows, not profiles, "
        "so the two comparison counts differ.",
        "- Kura clusters under constraints (unique-key conflicts, impossible histories, no chaining "
        "through one weak link) and links rows of one source key unconditionally; Splink takes "
        "connected components at probability 0.9, plus the same-key links given to it as edges.",
        "- DuckDB's Jaro-Winkler adds the prefix bonus only above Jaro 0.7; Kura always adds it.",
        "- Splink does not compare the kanji name (it blocks on it): compared as a field independent of the kana "
        "names, it counted one name twice and matched namesakes (precision 0.74 at 20,000 persons). Kura puts the "
        "three names in one group and gives each blocking rule its own prior, which Splink cannot express.",
        "- The machine was not idle: another engineer's compiler ran on the same two cores during some runs "
        "(load averages before and after each system are in linkage.json). Single figures may be off by 10-30%.",
        "",
    ]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--persons", required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--run", required=True)
    ap.add_argument("--splink-timeout", required=True)
    ap.add_argument("--kura", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    path = os.path.join(args.out, "linkage.json")
    doc = json.loads(read(path)) if os.path.exists(path) else {"runs": {}}
    previous = doc["runs"].get(str(args.persons), {})
    kura_version = subprocess.run([args.kura, "--version"], capture_output=True, text=True).stdout.strip()
    # The last commit that changed Kura itself (the benchmark's own files aside).
    commit = subprocess.run(
        ["git", "log", "-1", "--format=%h", "--", ".", ":(exclude)bench"], capture_output=True, text=True
    ).stdout.strip()
    k = kura_result(args.run, args.threads) or previous.get("kura")
    if k and not k.get("version"):
        k["version"] = f"{kura_version.split()[-1]} ({commit})"
    s = splink_result(args.run, args.splink_timeout) or previous.get("splink")
    # A failed or stopped Splink attempt stays on record when the size is run again.
    attempts = previous.get("splink_earlier_attempts", [])
    old = previous.get("splink")
    if s is not old and old and not old.get("completed"):
        attempts.append({key: old.get(key) for key in ("outcome", "phase_reached", "phases", "process_seconds", "predict_chunks", "peak_rss_mib", "date")} | {"date": previous.get("date")})
    rates(k, args.threads)
    rates(s, args.threads)
    entry = {
        "date": datetime.date.today().isoformat(),
        "persons": int(args.persons),
        "threads": args.threads,
        "kura": k,
        "splink": s,
    }
    if attempts:
        entry["splink_earlier_attempts"] = attempts
    if k and s and s.get("completed") and k.get("completed"):
        entry["ratio_splink_over_kura_seconds"] = round(s["wall_seconds"] / k["wall_seconds"], 3)
        entry["f1_kura_minus_splink"] = round(k["quality"]["f1"] - s["quality"]["f1"], 5)
    doc["runs"][str(args.persons)] = entry
    doc["machine"] = machine()
    doc["generated"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    with open(path, "w") as f:
        json.dump(doc, f, indent=2, ensure_ascii=False)
        f.write("\n")
    with open(os.path.join(args.out, "linkage.md"), "w") as f:
        f.write(markdown(doc))
    print(markdown(doc))


if __name__ == "__main__":
    main()
