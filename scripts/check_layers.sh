#!/usr/bin/env bash
# Checks that every include in src/ points down (or sideways) in the layer order; run first by
# scripts/test.sh, before scripts/lint.sh. The order is written once, in docs/ARCHITECTURE.md, on
# the line that starts with "Layer order (lowest first):" (the folders of src/ in backquotes,
# joined by " < "; "main" is src/main.c). Every .c and .h file in src/<layer>/ may include
# headers of its own layer and of the layers below it, never one above: a .c counts as much as
# a header, since an upward call is the same dependency as an upward declaration.
# Fails, naming file:line, on an upward include, on a folder of src/ missing from the order,
# and on an include of a folder that is not a layer.
#   scripts/check_layers.sh      check (exit 1 on any finding)
set -uo pipefail
cd "$(dirname "$0")/.."

doc=docs/ARCHITECTURE.md
order_line=$(grep -m1 '^Layer order (lowest first):' "$doc" || true)
order=$(sed -nE 's/^Layer order \(lowest first\): `([^`]*)`.*/\1/p' <<<"$order_line")
if [ -z "$order" ]; then
    echo "layers: no line \"Layer order (lowest first): \`a < b < ...\`\" in $doc"
    exit 1
fi
read -r -a layers <<<"$(sed 's/[[:space:]]*<[[:space:]]*/ /g' <<<"$order")"

declare -A rank=()
for i in "${!layers[@]}"; do rank[${layers[$i]}]=$i; done

rc=0
# every folder of src/ must have its place in the order
for dir in src/*/; do
    name=$(basename "$dir")
    if [ -z "${rank[$name]+x}" ]; then
        echo "$dir: folder not in the layer order of $doc"
        rc=1
    fi
done

mapfile -t files < <(find src -type f -name '*.[ch]' | LC_ALL=C sort)
checked=0
for f in "${files[@]}"; do
    rel=${f#src/}
    if [[ $rel == */* ]]; then own=${rel%%/*}; else own=main; fi
    [ -n "${rank[$own]+x}" ] || continue # reported above
    while IFS=: read -r line target; do
        checked=$((checked + 1))
        [[ $target == */* ]] || continue # same folder, no prefix
        to=${target%%/*}
        if [ -z "${rank[$to]+x}" ]; then
            echo "$f:$line: includes \"$target\": $to is not a layer of $doc"
            rc=1
        elif [ "${rank[$to]}" -gt "${rank[$own]}" ]; then
            echo "$f:$line: includes \"$target\": $own may not include the higher layer $to ($order)"
            rc=1
        fi
    done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" |
             sed -E 's/^([0-9]+):[^"]*"([^"]+)".*/\1:\2/')
done

if [ "$rc" -ne 0 ]; then
    echo "layers: includes that point up (see above; the order is in $doc)"
    exit 1
fi
echo "layers: $checked includes in ${#files[@]} files point down ($order)"
