#!/usr/bin/env bash
# Prints which top-level modules of src/ use which others (`crate::NAME` in code, not in
# comments), one line per module: "module -> used, used, ...". Run it on two commits to see
# what a change did to the module graph; tests/layers.rs holds the graph to the layer
# table of docs/architecture.md.
#
#   scripts/module-graph.sh [SRC_DIR]      (default: src)
set -eu
src=${1:-src}
for path in "$src"/*; do
  name=$(basename "$path" .rs)
  case $name in lib | main) continue ;; esac
  [ -d "$path" ] || [ "${path%.rs}" != "$path" ] || continue
  used=$(find "$path" -name '*.rs' -print0 2>/dev/null |
    xargs -0 sed -e 's#//.*##' |
    tr '\n' ' ' |
    grep -oE '(^|[^A-Za-z0-9_])crate::(\{[^}]*(\{[^}]*\}[^}]*)*\}|[a-z_]+)' |
    sed -E 's/^[^c]*crate:://; s/^\{//; s/\}$//' |
    sed -E 's/\{[^}]*\}//g' | tr ',' '\n' | sed -E 's/^[[:space:]]*//; s/::.*//; s/[^a-z_].*//' |
    { grep -vxE "|self|$name" || true; } | sort -u | paste -sd, - | sed 's/,/, /g')
  echo "$name -> ${used:-(nothing)}"
done | sort -u
