#!/usr/bin/env python3
"""Checks the documentation against the tree: every relative link in README.md, BENCHMARKS.md and
docs/*.md names a file that exists and, with a #fragment, a heading of that Markdown file (GitHub's
anchor rules). Exits 1 listing every problem. Usage: scripts/check-docs.py [REPO_ROOT]"""
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


def main():
    problems = check_links()
    for problem in problems:
        print(problem)
    if problems:
        return 1
    print(f"check-docs: {len(markdown_files())} Markdown files, every link resolves")
    return 0


if __name__ == "__main__":
    sys.exit(main())
