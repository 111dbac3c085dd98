#!/usr/bin/env bash
# Static checks on the C sources (src/, tests/unit/, fuzz/, bench/: every *.c and *.h), run
# first by scripts/test.sh. Exits 1 if any fails, after running all of them.
#   scripts/lint.sh          check: banned functions, then clang-format (--dry-run --Werror)
#   scripts/lint.sh --fix    rewrite every file clang-format would change (clang-format -i), then
#                            check again
# Banned functions: each match is reported as file:line with what to use instead. A line that
# starts as a comment (/*, //, *) is not checked; a call through a member (x.f(), x->f()) or a
# longer name (hk_strcpy, gmtime_r) is not a match.
# clang-format: the tree's .clang-format; clang-format 14 (Debian 12) is the reference: another
# major version may format a few constructs differently.
set -uo pipefail
cd "$(dirname "$0")/.."

mapfile -t files < <(find src tests/unit fuzz bench -type f -name '*.[ch]' | LC_ALL=C sort)
rc=0

# name -> what to use instead
declare -A banned=(
    [strcpy]="hk_strlcpy (or snprintf)" [strncpy]="hk_strlcpy (strncpy may leave no NUL)"
    [stpcpy]="hk_strlcpy" [strcat]="hk_buf or snprintf" [strncat]="hk_buf or snprintf"
    [sprintf]="snprintf" [vsprintf]="vsnprintf" [gets]="fgets" [getpass]="(nothing: no prompts)"
    [strtok]="strtok_r or hk_json/hk_* parsers (strtok keeps hidden state)"
    [atoi]="strtol/strtoll with end and range checks" [atol]="strtol with end and range checks"
    [atoll]="strtoll with end and range checks" [atof]="strtod with end checks"
    [tmpnam]="mkstemp" [tempnam]="mkstemp" [mktemp]="mkstemp" [alloca]="malloc or a fixed array"
    [asctime]="strftime on gmtime_r" [ctime]="strftime on gmtime_r/localtime_r"
    [gmtime]="gmtime_r (gmtime returns shared static storage)" [localtime]="localtime_r"
    [rand]="hk_random_below / hk_random_bytes (crypto.h)" [srand]="(nothing: use a CSPRNG)"
)
names=$(printf '%s|' "${!banned[@]}")
names=${names%|}
pattern="(^|[^A-Za-z0-9_.>])(${names})[[:space:]]*\\("
hits=$(grep -nHE "$pattern" "${files[@]}" | grep -vE '^[^:]+:[0-9]+:[[:space:]]*(/\*|//|\*)' || true)
if [ -n "$hits" ]; then
    while IFS= read -r hit; do
        where=$(cut -d: -f1,2 <<<"$hit")
        for name in $(grep -oE "$pattern" <<<"$(cut -d: -f3- <<<"$hit")" |
                      sed -E 's/^[^A-Za-z_]?//; s/[[:space:](]+$//'); do
            echo "$where: banned function $name(): use ${banned[$name]}"
        done
    done <<<"$hits"
    echo "lint: banned functions used (see above; the list is in scripts/lint.sh)"
    rc=1
else
    echo "lint: no banned function in ${#files[@]} files"
fi

if ! command -v clang-format >/dev/null 2>&1; then
    echo "lint: clang-format is not installed (scripts/setup.sh installs it)"
    exit 1
fi
if [ "${1:-}" = "--fix" ]; then
    clang-format -i "${files[@]}"
fi
unformatted=()
for f in "${files[@]}"; do
    clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || unformatted+=("$f")
done
if [ ${#unformatted[@]} -gt 0 ]; then
    for f in "${unformatted[@]}"; do
        n=$(clang-format "$f" | diff "$f" - | grep -c '^[<>]')
        echo "$f: not clang-format clean ($n lines differ; clang-format --dry-run $f shows where)"
    done
    echo "lint: ${#unformatted[@]} of ${#files[@]} files are not clang-format clean:" \
         "run scripts/lint.sh --fix (or clang-format -i FILE)"
    rc=1
else
    echo "lint: all ${#files[@]} files clang-format clean"
fi
exit $rc
