#!/usr/bin/env python3
"""Enforces the dependency rules of DESIGN.md and STYLE.md §2 on #include lines.

Each src/<component>/ file may include only headers of the components its row of DESIGN.md's
"may use" column names (plus its own). Inside engine/, the sub-areas have their own rules.
Exits non-zero and lists every violation.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = ROOT / "src"

# component -> components it may include (DESIGN.md "Components" table).
ALLOWED = {
    "core": set(),
    "gguf": {"core"},
    "engine": {"core", "gguf"},
    "sandbox": {"core"},
    "worker": {"core", "engine", "sandbox"},
    "identity": {"core"},
    "policy": {"core"},
    "guard": {"core"},
    "provenance": {"core", "gguf"},
    "audit": {"core"},
    "server": {"core", "sandbox", "worker", "identity", "policy", "guard", "provenance", "audit"},
    "cli": {"core", "gguf", "engine", "sandbox", "worker", "identity", "policy", "guard",
            "provenance", "audit", "server"},
}

# engine sub-area -> engine sub-areas it may include (STYLE.md §2 rule 3). Files directly in
# engine/ (model, session, thread_pool) may use every sub-area.
ENGINE_AREAS = {
    "quant": {"quant"},
    "kernels": {"quant", "kernels", "<top>"},
    "kv": {"kv", "quant"},
    "arch": {"arch", "kernels", "kv", "quant", "<top>"},
    "tokenizer": {"tokenizer"},
    "sampler": {"sampler"},
    "chat": {"chat"},
}
# Sub-areas that may use only core and gguf from outside the engine.
ENGINE_LEAF_OUTSIDE = {"tokenizer": {"core", "gguf"}, "sampler": {"core"}, "chat": {"core"}}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def check_file(path: pathlib.Path) -> list[str]:
    rel = path.relative_to(SRC)
    parts = rel.parts
    if len(parts) < 2:
        return []  # src/main.cc
    comp = parts[0]
    errors = []
    for inc in INCLUDE.findall(path.read_text(errors="replace")):
        inc_parts = pathlib.PurePosixPath(inc).parts
        if len(inc_parts) < 2:
            continue
        target = inc_parts[0]
        if target not in ALLOWED:
            continue  # not one of ours
        where = f"{rel}: includes {inc}"
        if target != comp and target not in ALLOWED.get(comp, set()):
            errors.append(f"{where}: {comp}/ may not use {target}/")
            continue
        if "internal" in inc_parts[1:-1] and target != comp:
            errors.append(f"{where}: another component's internal/ header")
        if comp == "server" and target == "worker" and inc_parts[1] != "protocol":
            errors.append(f"{where}: server/ may use only worker/protocol/")
        if comp == "worker" and len(parts) > 2 and parts[1] == "protocol" and target != "core" \
                and not (target == "worker" and inc_parts[1] == "protocol"):
            errors.append(f"{where}: worker/protocol/ may use only core/")
        if comp == "engine" and len(parts) > 2:
            area = parts[1]
            if target == "engine":
                inc_area = inc_parts[1] if len(inc_parts) > 2 else "<top>"
                allowed = ENGINE_AREAS.get(area)
                if allowed is not None and inc_area not in allowed:
                    errors.append(f"{where}: engine/{area}/ may not use engine/{inc_area}")
            elif area in ENGINE_LEAF_OUTSIDE and target not in ENGINE_LEAF_OUTSIDE[area]:
                errors.append(f"{where}: engine/{area}/ may use only "
                              f"{sorted(ENGINE_LEAF_OUTSIDE[area])}")
    return errors


def main() -> int:
    errors = []
    n_files = 0
    for path in sorted(SRC.rglob("*")):
        if path.suffix in (".h", ".cc") and path.is_file():
            n_files += 1
            errors.extend(check_file(path))
    for e in errors:
        print(e)
    print(f"check_deps: {n_files} files, {len(errors)} violations")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
