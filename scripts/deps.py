#!/usr/bin/env python3
"""Dependency budget, licence allowlist and third-party notices of the library.

The crates counted and checked are those the library links: everything reachable from the
cyborgdb-kms package through normal dependencies, exactly as `cargo tree -e normal --locked`
lists them for the host platform (proc macros included). Build-only crates
(cbindgen) and dev-only crates (tempfile) are not part of the shipped library.

  scripts/deps.py check [--max-crates N] [--max-duplicates N]
      Fails (exit 1, one line per problem) if more than N crates are linked (default 170), more
      than N crate names are linked in two or more versions (default 6), or a crate's licence
      expression cannot be satisfied with the allowlist below.
  scripts/deps.py check --only-licenses MIT,ISC ...
      The same with another allowlist (the CI uses a too-small one to see the check fail).
  scripts/deps.py check --package cyborgdb-kms-cli --max-crates N
      The same for another package of the workspace (the command line, which links the library
      and its own crates); `notices --package` likewise writes that package's notices.
  scripts/deps.py selftest
      Checks the licence-expression evaluator on fixed cases.
  scripts/deps.py notices [--output FILE] [--check]
      Writes THIRD_PARTY_NOTICES: every linked crate's name, version, licence expression and
      repository, and the licence texts found in its source (LICENSE*, LICENCE*, COPYING*, NOTICE*,
      COPYRIGHT* at the crate's top level in ~/.cargo/registry), identical texts printed once.
      With --check, writes nothing and fails if FILE differs from what it would write.

Runs offline when the crates are already downloaded (as after any build).
"""

import argparse
import json
import os
import re
import subprocess
import sys
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT_PACKAGE = "cyborgdb-kms"
DEFAULT_MAX_CRATES = 170
DEFAULT_MAX_DUPLICATES = 6

# Licences every linked crate may be used under (permissive; compatible with shipping the library
# under Apache-2.0, in source or binary form, with these notices). A copyleft licence (MPL, LGPL,
# GPL) is not on the list: a crate under one needs a decision, not a silent pass.
ALLOWED_LICENSES = {
    "Apache-2.0",
    "Apache-2.0 WITH LLVM-exception",
    "MIT",
    "MIT-0",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "ISC",
    "Zlib",
    "Unicode-3.0",
    "Unicode-DFS-2016",
    "CC0-1.0",
    "Unlicense",
    "BSL-1.0",
    "OpenSSL",
}

LICENSE_FILE = re.compile(r"^(LICEN[CS]E|COPYING|NOTICE|COPYRIGHT)", re.I)


def cargo(*args):
    """Runs `cargo ARGS --locked` on the project; its stdout. Exits with cargo's error if it fails."""
    command = ["cargo", *args, "--locked", "--manifest-path", os.path.join(ROOT, "Cargo.toml")]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"check-deps: {' '.join(command)} failed:\n{done.stderr}")
    return done.stdout


def host_triple():
    out = subprocess.run(["rustc", "-vV"], check=True, capture_output=True, text=True).stdout
    return re.search(r"^host: (\S+)$", out, re.M).group(1)


def linked_packages(root=ROOT_PACKAGE):
    """The packages `root` (the library unless told) links, `root` excluded, with their `cargo metadata` entries.

    The set comes from `cargo tree -e normal` (host platform, the v2 feature resolver: exactly
    what a build compiles); `cargo metadata` only adds licence, repository and source path (its
    own resolve graph unifies features with dev and build dependencies, so it over-counts).
    """
    tree = cargo("tree", "-p", root, "-e", "normal", "--prefix", "none", "--format", "{p}")
    linked = set()
    for line in tree.splitlines():
        match = re.match(r"^(\S+) v(\S+)", line)
        if match and match.group(1) != root:
            linked.add((match.group(1), match.group(2)))
    metadata = json.loads(cargo("metadata", "--format-version", "1"))
    packages = [p for p in metadata["packages"] if (p["name"], p["version"]) in linked]
    missing = linked - {(p["name"], p["version"]) for p in packages}
    if missing:
        raise SystemExit(f"check-deps: not in cargo metadata: {sorted(missing)}")
    return sorted(packages, key=lambda p: (p["name"], version_key(p)))


def version_key(package):
    return [int(x) if x.isdigit() else x for x in re.split(r"[.+-]", package["version"])]


# --- SPDX expressions: OR, AND, WITH, parentheses; the legacy "/" means OR. -------------------

def tokenize(expression):
    return re.findall(r"\(|\)|[^\s()]+", expression.replace("/", " OR "))


def satisfiable(expression, allowed=None):
    """Whether the licence expression can be met using only `allowed` (ALLOWED_LICENSES)."""
    allowed = ALLOWED_LICENSES if allowed is None else allowed
    tokens = tokenize(expression)
    position = 0

    def parse_or():
        nonlocal position
        value = parse_and()
        while position < len(tokens) and tokens[position] == "OR":
            position += 1
            value = parse_and() or value
        return value

    def parse_and():
        nonlocal position
        value = parse_atom()
        while position < len(tokens) and tokens[position] == "AND":
            position += 1
            value = parse_atom() and value
        return value

    def parse_atom():
        nonlocal position
        if position >= len(tokens):
            raise ValueError(f"unexpected end of licence expression {expression!r}")
        token = tokens[position]
        position += 1
        if token == "(":
            value = parse_or()
            if position >= len(tokens) or tokens[position] != ")":
                raise ValueError(f"unbalanced parentheses in {expression!r}")
            position += 1
            return value
        if position < len(tokens) and tokens[position] == "WITH":
            token = f"{token} WITH {tokens[position + 1]}"
            position += 2
        return token in allowed

    value = parse_or()
    if position != len(tokens):
        raise ValueError(f"trailing tokens in licence expression {expression!r}")
    return value


# --- check -------------------------------------------------------------------------------------

def check(args):
    packages = linked_packages(args.package)
    allowed = set(args.only_licenses.split(",")) if args.only_licenses else ALLOWED_LICENSES
    problems = []
    versions = defaultdict(list)
    for package in packages:
        versions[package["name"]].append(package["version"])
    duplicated = {name: v for name, v in sorted(versions.items()) if len(v) > 1}

    # The same count as `cargo tree -e normal --prefix none --format '{p}' | sort -u`: the root
    # package counts too.
    crates = len(packages) + 1
    if crates > args.max_crates:
        problems.append(f"{crates} crates linked, budget {args.max_crates}")
    if len(duplicated) > args.max_duplicates:
        listed = ", ".join(f"{n} ({' '.join(v)})" for n, v in duplicated.items())
        problems.append(f"{len(duplicated)} crates duplicated, budget {args.max_duplicates}: "
                        f"{listed}")
    for package in packages:
        expression = package.get("license")
        where = f"{package['name']} {package['version']}"
        if not expression:
            problems.append(f"{where}: no SPDX licence expression (license-file: "
                            f"{package.get('license_file')}); review it and decide")
            continue
        try:
            if not satisfiable(expression, allowed):
                problems.append(f"{where}: licence {expression!r} is not satisfiable with the "
                                "allowlist in scripts/deps.py")
        except ValueError as error:
            problems.append(f"{where}: {error}")

    for problem in problems:
        print(f"check-deps: {problem}", file=sys.stderr)
    if problems:
        return 1
    names = ", ".join(f"{n} ({' '.join(v)})" for n, v in duplicated.items()) or "none"
    print(f"check-deps: {crates} crates linked (budget {args.max_crates}); "
          f"{len(duplicated)} duplicated (budget {args.max_duplicates}): {names}; "
          "every licence on the allowlist")
    return 0


def selftest(_args):
    cases = {
        "MIT": True,
        "MIT OR Apache-2.0": True,
        "MIT/Apache-2.0": True,
        "Apache-2.0 / MIT": True,
        "(MIT OR Apache-2.0) AND Unicode-3.0": True,
        "Apache-2.0 WITH LLVM-exception OR Apache-2.0 OR MIT": True,
        "ISC AND (Apache-2.0 OR ISC) AND OpenSSL": True,
        "MIT OR GPL-3.0-only": True,
        "MIT AND GPL-3.0-only": False,
        "GPL-2.0-only WITH Classpath-exception-2.0": False,
        "MPL-2.0": False,
        "LGPL-2.1-or-later": False,
        "(MIT OR LGPL-2.1-or-later) AND MPL-2.0": False,
        "MIT OR Apache-2.0 OR LGPL-2.1-or-later": True,
    }
    wrong = [f"{e!r}: expected {want}" for e, want in cases.items() if satisfiable(e) != want]
    for case in ("MIT AND", "(MIT OR Apache-2.0", "MIT Apache-2.0"):
        try:
            satisfiable(case)
            wrong.append(f"{case!r}: accepted a malformed expression")
        except ValueError:
            pass
    for line in wrong:
        print(f"check-deps selftest: {line}", file=sys.stderr)
    if wrong:
        return 1
    print(f"check-deps selftest: {len(cases) + 3} licence expressions evaluated as expected")
    return 0


# --- notices -----------------------------------------------------------------------------------

def licence_texts(package):
    directory = os.path.dirname(package["manifest_path"])
    texts = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if LICENSE_FILE.match(name) and os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                text = "\n".join(line.rstrip() for line in f.read().replace("\r\n", "\n")
                                 .split("\n")).strip("\n")
            texts.append((name, text))
    return texts


def render_notices(packages, root=ROOT_PACKAGE):
    generator = "scripts/deps.py notices" + ("" if root == ROOT_PACKAGE else f" --package {root}")
    lines = [
        "THIRD-PARTY SOFTWARE NOTICES AND LICENCES",
        "",
        f"{root} (Apache-2.0, see LICENSE) links the following crates. Generated by",
        f"`{generator}` from Cargo.lock and the crates' sources; do not edit.",
        "Each crate is listed with its version, its licence expression (SPDX) and its repository,",
        "then the licence and notice files shipped in its source. Identical texts are printed once",
        "and referred to by number.",
        "",
    ]
    text_numbers, ordered_texts = {}, []
    entries = []
    for package in packages:
        references = []
        for name, text in licence_texts(package):
            if text not in text_numbers:
                text_numbers[text] = len(ordered_texts) + 1
                ordered_texts.append(text)
            references.append(f"{name}: text {text_numbers[text]}")
        entries.append((package, references))

    lines.append(f"{len(packages)} crates")
    lines.append("=" * 78)
    for package, references in entries:
        lines.append(f"{package['name']} {package['version']}")
        lines.append(f"  licence: {package.get('license') or 'see its licence file'}")
        if package.get("repository"):
            lines.append(f"  repository: {package['repository']}")
        if references:
            lines.extend(f"  {r}" for r in references)
        else:
            lines.append("  no licence file in the crate's source: the standard text of its "
                         "licence applies (Apache-2.0: see LICENSE)")
        lines.append("")
    for number, text in enumerate(ordered_texts, 1):
        lines.append("=" * 78)
        lines.append(f"text {number}")
        lines.append("-" * 78)
        lines.append(text)
        lines.append("")
    return "\n".join(lines)


def notices(args):
    # The licence files are read from the unpacked sources: make sure they are there (a no-op
    # after any build).
    cargo("fetch", "--target", host_triple())
    content = render_notices(linked_packages(args.package), args.package)
    output = args.output or os.path.join(ROOT, "THIRD_PARTY_NOTICES")
    if args.check:
        try:
            with open(output, encoding="utf-8") as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current != content:
            print(f"check-deps: {output} is not current: run scripts/deps.py notices and commit it",
                  file=sys.stderr)
            return 1
        print(f"check-deps: {output} is current")
        return 0
    with open(output, "w", encoding="utf-8") as f:
        f.write(content)
    print(f"wrote {output}")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check_parser = commands.add_parser("check", help="crate/duplicate budget and licences")
    check_parser.add_argument("--max-crates", type=int, default=DEFAULT_MAX_CRATES)
    check_parser.add_argument("--max-duplicates", type=int, default=DEFAULT_MAX_DUPLICATES)
    check_parser.add_argument("--only-licenses", help="comma-separated allowlist to use instead")
    check_parser.add_argument("--package", default=ROOT_PACKAGE,
                              help="the workspace package whose linked crates are checked")
    check_parser.set_defaults(run=check)
    commands.add_parser("selftest", help="licence expression cases").set_defaults(run=selftest)
    notices_parser = commands.add_parser("notices", help="write or check THIRD_PARTY_NOTICES")
    notices_parser.add_argument("--output")
    notices_parser.add_argument("--check", action="store_true")
    notices_parser.add_argument("--package", default=ROOT_PACKAGE,
                                help="the workspace package whose linked crates are listed")
    notices_parser.set_defaults(run=notices)
    args = parser.parse_args()
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
