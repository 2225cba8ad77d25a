#!/usr/bin/env python3
"""Checks the documentation against the tree, so it cannot drift from the code unnoticed:

- every relative link in README.md, BENCHMARKS.md and docs/*.md names a file that exists and, with
  a #fragment, a heading of that Markdown file (GitHub's anchor rules);
- every C name (`cyb_*`, `CYB_*`) quoted in docs/c-api.md exists in the C header, and every lower-case
  identifier quoted there (a parameter, a struct field) too; elsewhere a quoted C name exists in the
  header or in the build files, scripts, examples and tests (build options, variables);
- every `Type::member` quoted anywhere names things that exist in the C++ header, the Rust source or
  the CMake package (`cyborgdb::kms_cpp`);
- every `tests/<file>.rs::<test>` names a test function of that file, and every quoted repository
  path (`tests/...`, `src/...`, `scripts/...`, ...) exists;
- README.md's C example is examples/quickstart.c, whole, its Python example
  examples/quickstart.py, whole (python/tests/test_examples.py runs it), and its C++ example is a shortening of
  examples/s3_quickstart.cpp (its lines, in order), so the front page shows code the tests run.

Exits 1 listing every problem. Usage: scripts/check-docs.py [REPO_ROOT]"""
import glob
import os
import re
import sys

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))


def markdown_files():
    files = ["README.md", "BENCHMARKS.md"]
    files += sorted(os.path.join("docs", f) for f in os.listdir(os.path.join(ROOT, "docs")) if f.endswith(".md"))
    return files


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def without_code_blocks(text):
    """The text with fenced code blocks blanked (line numbers kept)."""
    out, fence = [], False
    for line in text.split("\n"):
        if line.startswith("```"):
            fence = not fence
            out.append("")
        else:
            out.append("" if fence else line)
    return out


def anchors(path):
    """GitHub's heading anchors of a Markdown file: lower case, punctuation dropped, spaces -> '-'."""
    seen, result = {}, set()
    for line in without_code_blocks(read(path)):
        m = re.match(r"^#{1,6} +(.*?) *#*$", line)
        if not m:
            continue
        slug = re.sub(r"[^\w\- ]", "", m.group(1).replace("`", "").lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        result.add(slug if n == 0 else f"{slug}-{n}")
    return result


def check_links():
    problems = []
    for path in markdown_files():
        for number, line in enumerate(without_code_blocks(read(path)), 1):
            for target in re.findall(r"\]\(([^)\s]+)\)", line):
                if re.match(r"^[a-z]+:", target):
                    continue  # https:, mailto:
                file_part, _, fragment = target.partition("#")
                resolved = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
                if not os.path.exists(os.path.join(ROOT, resolved)):
                    problems.append(f"{path}:{number}: link to a missing file: {target}")
                elif fragment and resolved.endswith(".md") and fragment not in anchors(resolved):
                    problems.append(f"{path}:{number}: link to a missing heading: {target}")
    return problems


def words(*paths):
    """The identifiers (\\w+) in the files at `paths` (globs, relative to ROOT)."""
    found = set()
    for pattern in paths:
        for path in glob.glob(os.path.join(ROOT, pattern), recursive=True):
            if os.path.isfile(path):
                with open(path, encoding="utf-8", errors="replace") as f:
                    found |= set(re.findall(r"\w+", f.read()))
    return found


def code_spans(path):
    """(line number, text) of every inline `code` span of a Markdown file, outside code blocks."""
    for number, line in enumerate(without_code_blocks(read(path)), 1):
        for span in re.findall(r"`([^`]+)`", line):
            yield number, span


REPO_DIRS = ("tests/", "src/", "scripts/", "cpp_tests/", "examples/", "schemas/", "benches/", "fuzz/",
             "include/", "cmake/", "docs/")


def check_names():
    header = words("include/cyborgdb_core/index_kms.h")
    cpp_header = words("include/cyborgdb_core/index_kms.hpp")
    rust = words("src/**/*.rs")
    build = words("CMakeLists.txt", "cmake/*", "cpp_tests/CMakeLists.txt", "scripts/*", ".cargo/config.toml",
                  "examples/*", "tests/**/*.rs", "fuzz/**/*.rs", "build.rs")
    # Build outputs the docs name (the root .gitignore's entries), which a fresh tree lacks.
    generated = tuple(line.strip("/") for line in read(".gitignore").split("\n")
                      if line.startswith("/") and "*" not in line)
    problems = []
    for path in markdown_files():
        if path == "BENCHMARKS.md":
            continue  # quotes the internals of dependencies it measured
        strict_c = path == os.path.join("docs", "c-api.md")
        for number, span in code_spans(path):
            where = f"{path}:{number}: `{span}`"
            for name in re.findall(r"\b(?:cyb|CYB)_\w*[A-Za-z0-9]\b", span):
                if name in header or (not strict_c and name in build | cpp_header):
                    continue
                problems.append(f"{where}: {name} is not in include/cyborgdb_core/index_kms.h")
            if (strict_c and re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)+", span) and not span.startswith("cyb_")
                    and span not in header):
                problems.append(f"{where}: {span} is not in include/cyborgdb_core/index_kms.h")
            for test_file, test in re.findall(r"\b((?:tests|src)/[\w/]+\.rs)::(\w+)", span):
                full = os.path.join(ROOT, test_file)
                if not os.path.isfile(full) or not re.search(rf"\bfn {test}\b", read(test_file)):
                    problems.append(f"{where}: no test fn {test} in {test_file}")
            for chain in re.findall(r"(?<![/\w.])\w+(?:::\w+)+", span):
                parts = chain.split("::")
                if parts[0] == "std":
                    continue
                if parts[0] == "cyborgdb":
                    if parts[1] not in build:
                        problems.append(f"{where}: CMake target {chain} is not defined")
                    continue
                for name in parts:
                    if name not in ("std", "cyborg", "cyborgdb_kms") and name not in cpp_header | rust | header:
                        problems.append(f"{where}: {name} is in neither header nor src/")
            for repo_path in re.findall(r"(?<![\w./-])((?:%s)[\w./-]*\w)" % "|".join(REPO_DIRS), span):
                if "{" in span or "*" in span or repo_path.startswith(generated):
                    continue
                if not os.path.exists(os.path.join(ROOT, repo_path)):
                    problems.append(f"{where}: {repo_path} does not exist")
    return problems


def fenced_blocks(path, language):
    """The contents of the ```language blocks of a Markdown file, in order."""
    return re.findall(r"^```%s\n(.*?)^```$" % re.escape(language), read(path), flags=re.S | re.M)


def check_front_page_examples():
    problems = []
    c_blocks = fenced_blocks("README.md", "c")
    if not c_blocks or c_blocks[0] != read("examples/quickstart.c"):
        problems.append("README.md: the C example is not examples/quickstart.c verbatim")
    python_blocks = fenced_blocks("README.md", "python")
    if not python_blocks or python_blocks[0] != read("examples/quickstart.py"):
        problems.append("README.md: the Python example is not examples/quickstart.py verbatim")
    cpp_blocks = fenced_blocks("README.md", "cpp")
    if not cpp_blocks:
        problems.append("README.md: no C++ example")
    else:
        example = iter(line.strip() for line in read("examples/s3_quickstart.cpp").split("\n"))
        for line in cpp_blocks[0].split("\n"):
            if line.strip() and not any(line.strip() == other for other in example):
                problems.append(f"README.md: C++ example line not in examples/s3_quickstart.cpp (in order): {line.strip()}")
                break
    return problems


def main():
    problems = check_links() + check_names() + check_front_page_examples()
    for problem in problems:
        print(problem)
    if problems:
        return 1
    print(f"check-docs: {len(markdown_files())} Markdown files: links, names, paths and the front page's examples match the tree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
