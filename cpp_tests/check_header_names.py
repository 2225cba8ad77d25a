#!/usr/bin/env python3
"""Checks the names of the generated C header (CTest test c_header_names).

Usage: check_header_names.py HEADER USES_EVERY_NAME_C

1. Every name the header defines at file scope (macro, typedef, struct/enum tag, enumerator,
   function) starts with cyb_ / CYB_, and so does every other identifier it mentions outside
   comments, string literals and #include lines (a macro's expansion, a type it uses), unless it
   is a C keyword or a standard / compiler name on the allowlist below: the header takes no other
   name from the includer's namespace. Exempt: names of struct members and function parameters,
   which are scoped to their struct or prototype.
2. Every macro, type, tag and enumerator the header defines appears in USES_EVERY_NAME_C (the C
   file that uses every name), so a new name cannot skip that test.
3. No Rust-only doc syntax ([`Foo`], [Foo](...), [Foo][bar]) in the header's comments.

Exits 0 when all hold; otherwise prints one line per problem and exits 1.
"""

import re
import sys

# C keywords, names from <stdbool.h> / <stddef.h> / <stdint.h>, and predefined or compiler names
# the header may use.
ALLOWED = {
    # keywords and preprocessor words
    "bool", "char", "const", "define", "defined", "elif", "else", "endif", "enum", "error",
    "extern", "if", "ifdef", "ifndef", "include", "int", "long", "short", "signed", "sizeof",
    "struct", "typedef", "union", "unsigned", "void", "true", "false",
    # <stddef.h> / <stdint.h>
    "size_t", "int8_t", "int16_t", "int32_t", "int64_t", "uint8_t", "uint16_t", "uint32_t",
    "uint64_t", "uintptr_t", "intptr_t",
    # predefined macros and compiler extensions
    "__cplusplus", "__STDC_VERSION__", "_WIN32", "__declspec", "dllimport", "__attribute__",
    "visibility",
}

IDENTIFIER = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")
# A number's suffix (202311L, 10000u) is not an identifier.
NUMBER = re.compile(r"\b[0-9][0-9A-Za-z_]*\b")
RUST_LINK = re.compile(r"\[`[^`\]]*`\]|\]\([^)]*\)|\]\[[^\]]*\]")


def split_comments(text):
    """Returns (code without comments and strings, list of comment texts)."""
    code, comments = [], []
    token = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)
    last = 0
    for match in token.finditer(text):
        code.append(text[last:match.start()])
        piece = match.group(0)
        if piece.startswith("/"):
            comments.append(piece)
            code.append(" ")
        else:
            code.append(' "" ')
        last = match.end()
    code.append(text[last:])
    return "".join(code), comments


def defined_names(code):
    """Macros, typedef names, struct/enum tags and enumerators the header defines."""
    names = set(re.findall(r"^\s*#\s*define\s+([A-Za-z_]\w*)", code, re.M))
    names |= set(re.findall(r"\btypedef\b[^;{]*?\b([A-Za-z_]\w*)\s*;", code))
    names |= set(re.findall(r"\btypedef\b[^;{]*\{[^}]*\}\s*([A-Za-z_]\w*)\s*;", code))
    names |= set(re.findall(r"\b(?:struct|enum|union)\s+([A-Za-z_]\w*)", code))
    for body in re.findall(r"\benum\b[^{;]*\{([^}]*)\}", code):
        names |= set(re.findall(r"^\s*([A-Za-z_]\w*)\s*(?:=|,|$)", body, re.M))
    return names


def main():
    header_path, uses_path = sys.argv[1], sys.argv[2]
    with open(header_path, encoding="utf-8") as f:
        header = f.read()
    with open(uses_path, encoding="utf-8") as f:
        uses_code, _ = split_comments(f.read())
    code, comments = split_comments(header)
    code = re.sub(r"^\s*#\s*include\s*<[^>]*>", " ", code, flags=re.M)
    code = NUMBER.sub(" ", code)

    problems = []
    defined = defined_names(code)
    # Declarators: the name after a type (or `*`) and before `;` `,` `)` `[` — struct members,
    # parameters, and typedef names (those are checked as defined names).
    declarators = set(re.findall(r"(?:\w\s+|\*\s*)([A-Za-z_]\w*)\s*(?=[;,)\[])", code))
    foreign = {
        name for name in IDENTIFIER.findall(code)
        if not name.startswith(("cyb_", "CYB_")) and name not in ALLOWED
        and (name in defined or name not in declarators)}
    for name in sorted(foreign):
        problems.append(f"{header_path}: '{name}' is not a cyb_/CYB_ name (nor a standard one)")

    used = set(IDENTIFIER.findall(uses_code))
    for name in sorted(n for n in defined if n.startswith(("cyb_", "CYB_"))):
        if name == "CYB_INDEX_KMS_H":
            continue  # the include guard
        if name not in used:
            problems.append(f"{uses_path}: does not use '{name}', which {header_path} defines")

    for comment in comments:
        for link in RUST_LINK.findall(comment):
            problems.append(f"{header_path}: Rust doc link syntax in a comment: {link}")

    for problem in problems:
        print(problem)
    if problems:
        return 1
    print(f"{header_path}: every name is cyb_/CYB_; all {len(defined)} defined names "
          f"are used by {uses_path}; no Rust doc links")
    return 0


if __name__ == "__main__":
    sys.exit(main())
