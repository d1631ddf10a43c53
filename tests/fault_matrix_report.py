"""The fault-sequence matrix as a markdown table (for RELIABILITY.md), from results or a run.

    python -m tests.fault_matrix_report results.jsonl > table.md
    python -m tests.fault_matrix_report --run sample --out results.jsonl > table.md
    python -m tests.fault_matrix_report --run full --depth 2 > table.md
    python -m tests.fault_matrix_report results.jsonl --into RELIABILITY.md

A results file holds one JSON `tests.faultseq.Result` per line, as
``AIODYNKV_MATRIX_RESULTS=<file> pytest tests/integration/test_fault_matrix.py`` writes
them. ``--run`` starts moto itself and runs the sample (`sampled_cases`) or the whole
matrix (every sequence of 1 to ``--depth`` events). The table is followed by the
violating (operation, transport, outcome) groups with their sequences.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from tests.faultseq import (
    EVENTS,
    Case,
    Result,
    all_cases,
    by_pair,
    matrix_table,
    no_retry_waits,
    run_cases,
    sampled_cases,
    violation_groups,
)


def load(path: Path) -> list[Result]:
    results = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            fields = json.loads(line)
            fields["sequence"] = tuple(fields["sequence"])
            fields["log"] = [tuple(step) for step in fields["log"]]
            results.append(Result(**fields))
    return results


def report(results: Sequence[Result], title: str) -> str:
    """The table, then one line per violating group (with up to 5 of its sequences)."""
    lines = [f"Fault-sequence matrix: {title}.", "", matrix_table(results)]
    rerun = [r for r in results if r.reruns]
    if rerun:
        lines.append(
            f"{len(rerun)} cases ran again after a disturbed run ({sum(r.reruns for r in rerun)} "
            "runs in all); the table counts their last run.\n"
        )
    groups = violation_groups(results)
    if groups:
        lines.append("Violations by operation, transport and kind:\n")
        for (op, transport, outcome), found in sorted(groups.items()):
            shown = "; ".join("+".join(r.sequence) for r in found[:5])
            more = f" (and {len(found) - 5} more)" if len(found) > 5 else ""
            lines.append(
                f"- `{op}` [{transport}] **{outcome}** x{len(found)}: {shown}{more}. "
                f"E.g. {found[0].detail}"
            )
    return "\n".join(lines) + "\n"


async def run(cases: Sequence[Case], out: Path | None) -> list[Result]:
    from aiodynkv.testing import LocalDynamoDB

    results: list[Result] = []
    with LocalDynamoDB("moto") as server, no_retry_waits():
        for group in by_pair(cases).values():
            found = await run_cases(group, server.endpoint)
            results.extend(found)
            if out is not None:
                with out.open("a", encoding="utf-8") as file:
                    file.writelines(result.as_json() + "\n" for result in found)
            sys.stderr.write(f"{len(results)}/{len(cases)} cases\n")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fault_matrix_report")
    parser.add_argument("results", nargs="?", type=Path, help="a JSON-lines results file")
    parser.add_argument("--run", choices=("sample", "full"), help="run the matrix on moto")
    parser.add_argument("--depth", type=int, default=3, help="longest sequence (--run full)")
    parser.add_argument("--out", type=Path, help="append each result to this file")
    parser.add_argument(
        "--without", action="append", default=[], choices=EVENTS, help="leave out sequences with it"
    )
    parser.add_argument("--into", type=Path, help="write the section into this markdown file")
    args = parser.parse_args(argv)
    if args.run is None:
        if args.results is None:
            parser.error("give a results file or --run")
        results = load(args.results)
        title = f"{len(results)} cases from {args.results.name}"
    else:
        cases = sampled_cases() if args.run == "sample" else all_cases(args.depth)
        cases = [case for case in cases if not set(case.sequence) & set(args.without)]
        results = asyncio.run(run(cases, args.out))
        title = (
            f"{args.run} run, {len(results)} cases, sequences of 1 to "
            f"{3 if args.run == 'sample' else args.depth} of {len(EVENTS)} events"
            + (f", without {', '.join(args.without)}" if args.without else "")
        )
    text = report(results, title)
    if args.into is not None:
        into(args.into, text)
    else:
        sys.stdout.write(text)
    return 1 if any(result.violation for result in results) else 0


START, END = "<!-- matrix:start -->", "<!-- matrix:end -->"
SECTION = """## The fault-sequence matrix

`tests/integration/test_fault_matrix.py` plays scripted faults, one per HTTP request, in
a proxy between the store and moto (`tests/faultseq.py`): applied then reply lost, reset
before forwarding, held past the read timeout, 500, 503, throttling, a reply trickled
byte by byte, a cut 200, an HTML 200, a wrong or non-numeric `x-amz-crc32`. Every public
write (and `get`, `get_many`) runs under every sequence of these events on both
transports, and the state is read back through a clean store and judged against a
model: the exact result, or `WriteInDoubtError` (a truthful `BatchIncompleteError` for
batches) with the write applied at most once, or a typed error with nothing applied.
Anything else is a violation: doubled, lost, a false outcome, corrupt data returned, a
wrong error class, a call outliving its deadline. Cases run concurrently, each with its
own proxy, store and keys; a case that the load kept from running as scripted (the proxy
or moto late, so that a reply could have become a timeout) is not counted and runs
again, alone at last; one that never runs as scripted is a failure ("disturbed").
`nox -s tests` runs a fixed sample of 152 cases (sequences of up to three events);
`nox -s full` (CI) runs the whole matrix: every sequence of one to three events, a
trickle included, for 19 operations on both transports (55,594 cases). This section is
generated: `python -m tests.fault_matrix_report results.jsonl --into RELIABILITY.md`.

"""


def into(path: Path, text: str) -> None:
    """Put the matrix section into `path` between its markers (appended the first time)."""
    old = path.read_text(encoding="utf-8")
    block = f"{START}\n{SECTION}{text}{END}\n"
    if START in old and END in old:
        head, rest = old.split(START, 1)
        new = head + block + rest.split(END, 1)[1].lstrip("\n")
    else:
        new = old.rstrip("\n") + "\n\n" + block
    path.write_text(new, encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
