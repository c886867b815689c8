#!/usr/bin/env python3
"""The table of benches/all.sh: every `result` line a benchmark printed
(tab-separated: measure, this tool, baseline(s), ratio, goal, verdict),
in the order printed, as one Markdown table. The verdict is `met` or
`missed` against a goal; `-` for a figure without a goal (issue 22's
PostgreSQL rows, beside SQLite); `SKIPPED` when it could not run here (no
PostgreSQL); `FAILED` when the run failed.

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
        mark = {"met": "met", "missed": "**missed**", "FAILED": "**FAILED**"}.get(
            verdict, verdict
        )
        print(f"| {measure} | {tool} | {base} | {ratio} | {goal} | {mark} |")
    def count(verdict: str) -> int:
        return sum(1 for r in rows if r[5] == verdict)

    met, missed = count("met"), count("missed")
    summary = f"\n{met + missed} goals measured, {met} met, {missed} missed"
    others = [
        (count("-"), "figures without a goal"),
        (count("SKIPPED"), "SKIPPED"),
        (count("FAILED"), "FAILED"),
    ]
    for n, what in others:
        if n:
            summary += f"; {n} {what}"
    print(summary + ".")
    return 0


if __name__ == "__main__":
    sys.exit(main())
