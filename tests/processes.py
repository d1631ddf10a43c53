"""The processes a test started, looked up in Linux's /proc: who descends from whom,
who is still alive, and with which command line."""

from __future__ import annotations

import time
from pathlib import Path


def _process_table() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, start time, state) of every process, from /proc."""
    table: dict[int, tuple[int, str, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it ended meanwhile
        fields = stat.rsplit(")", 1)[1].split()
        table[int(entry.name)] = (int(fields[1]), fields[19], fields[0])
    return table


def descendants(root: int) -> dict[int, str]:
    """pid -> start time of every living descendant of `root`."""
    table = _process_table()
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, started, _state) in table.items():
            if ppid == parent and pid not in found:
                found[pid] = started
                frontier.append(pid)
    return found


def survivors(processes: dict[int, str], within: float) -> dict[int, str]:
    """The processes still alive (not zombies, same start time) after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        table = _process_table()
        alive = {
            pid: started
            for pid, started in processes.items()
            if pid in table and table[pid][1] == started and table[pid][2] != "Z"
        }
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


def command_line(pid: int) -> str:
    """The command line of process `pid`, or "?" once it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"


def wait_ended(pid: int, within: float) -> None:
    """Wait until process `pid` has ended (a zombie not yet reaped counts as ended)."""
    table = _process_table()
    if pid in table:
        survivors({pid: table[pid][1]}, within)
