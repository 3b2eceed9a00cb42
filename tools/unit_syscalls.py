#!/usr/bin/env python3
"""Prints the system calls a systemd unit's SystemCallFilter= lines allow, one per line.

Usage: unit_syscalls.py UNIT_FILE
Groups (@system-service, …) are expanded with `systemd-analyze syscall-filter` of this host.
Lines are applied in order, as systemd does: the first line sets the allow list, a line starting
with ~ removes names, any other line adds them. Used by scripts/package with
tools/unit_sandbox_emu.cc.
"""
import subprocess
import sys


def groups() -> dict[str, list[str]]:
    out = subprocess.run(["systemd-analyze", "syscall-filter"], check=True, capture_output=True,
                         text=True).stdout
    table: dict[str, list[str]] = {}
    current = None
    for line in out.splitlines():
        if line.startswith("@"):
            current = line.strip()
            table[current] = []
        elif current and line.strip() and not line.strip().startswith("#"):
            table[current].append(line.strip())
    return table


def expand(names: list[str], table: dict[str, list[str]]) -> set[str]:
    result: set[str] = set()
    for name in names:
        if name.startswith("@"):
            result |= expand(table.get(name, []), table)
        else:
            result.add(name)
    return result


def main() -> int:
    table = groups()
    allowed: set[str] | None = None
    with open(sys.argv[1], encoding="utf-8") as unit:
        for line in unit:
            line = line.strip()
            if not line.startswith("SystemCallFilter="):
                continue
            value = line.split("=", 1)[1].strip()
            deny = value.startswith("~")
            names = expand(value.lstrip("~").split(), table)
            if allowed is None:
                if deny:
                    print("unit_syscalls: a deny-list first line is not supported", file=sys.stderr)
                    return 2
                allowed = set()
            allowed = allowed - names if deny else allowed | names
    if allowed is None:
        print("unit_syscalls: no SystemCallFilter= in the unit", file=sys.stderr)
        return 2
    print("\n".join(sorted(allowed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
