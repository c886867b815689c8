#!/usr/bin/env python3
"""The table of benches/all.sh: every `result` line a benchmark printed
(tab-separated: measure, this tool, baseline(s), ratio, goal, met|missed),
in the order printed, as one Markdown table.

    benches/results_table.py LOG > TABLE.md
"""
import sys


def main() -> int:
    rows = []
    for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
        if not line.startswith("result\t"):
            continue
        fields = line.rstrip("\n").split("\t")[1:]
        fields += ["-"] * (6 - len(fields))
        rows.append([f.replace("|", "\\|") or "-" for f in fields[:6]])
    print("| measure | this tool | baseline(s) | ratio | goal | |")
    print("| --- | ---: | --- | ---: | --- | --- |")
    for measure, tool, base, ratio, goal, verdict in rows:
        mark = {"met": "met", "missed": "**missed**"}.get(verdict, verdict)
        print(f"| {measure} | {tool} | {base} | {ratio} | {goal} | {mark} |")
    missed = sum(1 for r in rows if r[5] == "missed")
    print(f"\n{len(rows)} goals measured, {len(rows) - missed} met, {missed} missed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
