#!/usr/bin/env bash
# tests/layout/check_readme.sh — the README says what the program does: every environment
# variable `ringway --help` lists is in the README (the Configuration table, or the prose for
# the handover ones), every variable in that table is one the program reads, and where both
# give a plain default they agree; every metric the sources render is named in the README, and
# every metric the Monitoring table names or queries is rendered; the Layout section names
# every top-level folder and every proxy/*.cc file. Run by `make test` (ctest readme_check).
# Usage: tests/layout/check_readme.sh SOURCE_DIR RINGWAY_BINARY
set -u -o pipefail

source_dir=$1
binary=$2
readme=$source_dir/README.md
failures=0
fail() {
    printf 'check_readme: %s\n' "$*" >&2
    failures=$((failures + 1))
}

help_text=$("$binary" --help) || { fail "$binary --help failed"; exit 1; }
# "  RINGWAY_NAME [default]" lines of --help: the name, then the default or nothing.
help_vars=$(sed -nE 's/^  (RINGWAY_[A-Z0-9_]+)( \[(.*)\])?$/\1 \3/p' <<<"$help_text")
[ -n "$help_vars" ] || fail "--help lists no RINGWAY_* variables"
# "| `RINGWAY_NAME` | default | ..." rows of the Configuration section's table.
table_vars=$(sed -n '/^## Configuration/,/^## /p' "$readme" |
    sed -nE 's/^\| `(RINGWAY_[A-Z0-9_]+)` \| ([^|]*) \|.*/\1 \2/p')
[ -n "$table_vars" ] || fail "the README's Configuration section has no RINGWAY_* table rows"

while read -r name default; do
    row=$(awk -v n="$name" '$1 == n' <<<"$table_vars")
    if [ -z "$row" ]; then
        grep -q "\`$name\`" "$readme" || fail "$name (in --help) is not in the README"
        continue
    fi
    readme_default=$(printf '%s\n' "$row" | cut -d' ' -f2- | sed -E 's/ +$//')
    # A plain default on both sides must be the same value; prose ("derived", "unset (4096)")
    # is not compared.
    if [ -n "$default" ] && [[ "$readme_default" =~ ^\`[^\`]*\`$ ]]; then
        readme_value=${readme_default:1:${#readme_default}-2}
        [ "$readme_value" = "$default" ] ||
            fail "$name: --help says [$default], the README's table says $readme_default"
    fi
done <<<"$help_vars"

while read -r name _; do
    awk -v n="$name" '$1 == n {found = 1} END {exit !found}' <<<"$help_vars" ||
        fail "$name is in the README's table but not in --help (the program does not read it)"
done <<<"$table_vars"

# Metric names as the sources write them ("ringway_x", "# HELP ringway_x"), against the
# README: each named somewhere in it, and each of the Monitoring table's (with {a,b} spelled
# out) rendered by a source.
source_metrics=$(grep -rhoE '"(# (HELP|TYPE) )?ringway_[a-z0-9_]+' \
    "$source_dir"/core "$source_dir"/storage "$source_dir"/proxy --include='*.cc' |
    sed -E 's/^"(# (HELP|TYPE) )?//' | grep -v '^ringway_catalog$' | sort -u)
[ -n "$source_metrics" ] || fail "no ringway_* metric names found in the sources"
# ringway_a_{x,y}_b names ringway_a_x_b and ringway_a_y_b; ringway_a{label=...} names ringway_a.
expand_names() {
    grep -oE 'ringway_[a-z0-9_{},]+' | sed -E 's/\{[^}]*$//; s/^(.*)\{([^}]*)\}(.*)$/\1 \2 \3/' |
        awk '{ if (NF == 1) print $1; else { n = split($2, p, ","); for (i = 1; i <= n; i++) print $1 p[i] $3 } }'
}
readme_metrics=$(expand_names <"$readme" | sort -u)
while read -r metric; do
    grep -qx "$metric" <<<"$readme_metrics" || fail "metric $metric is rendered but not in the README"
done <<<"$source_metrics"
monitoring_rows=$(sed -n '/^## Monitoring/,/^## /p' "$readme" | grep '^| `ringway_')
table_metrics=$(cut -d'|' -f2 <<<"$monitoring_rows" | expand_names)
[ -n "$table_metrics" ] || fail "the README's Monitoring section has no ringway_* table rows"
while read -r metric; do
    grep -qx "$metric" <<<"$source_metrics" ||
        fail "metric $metric is in the README's Monitoring table but no source renders it"
done <<<"$table_metrics"
# The example queries (the table's last column) read rendered metrics too; a histogram's
# series are its name with _bucket, _sum or _count.
query_metrics=$(awk -F'|' '{print $(NF - 1)}' <<<"$monitoring_rows" |
    grep -oE 'ringway_[a-z0-9_]+' | sort -u)
while read -r metric; do
    [ -n "$metric" ] || continue
    base=$(sed -E 's/_(bucket|sum|count)$//' <<<"$metric")
    grep -qx -e "$metric" -e "$base" <<<"$source_metrics" ||
        fail "the README's example query reads $metric, which no source renders"
done <<<"$query_metrics"

layout=$(sed -n '/^## Layout/,$p' "$readme")
for dir in "$source_dir"/*/; do
    name=$(basename "$dir")
    case $name in build* | node_modules) continue ;; esac
    grep -qE "^$name/ " <<<"$layout" || fail "folder $name/ is not in the README's Layout"
done
for file in "$source_dir"/proxy/*.cc; do
    name=$(basename "$file")
    grep -qE "^  $name " <<<"$layout" ||
        fail "proxy/$name is not in the README's Layout (request-path order)"
done

if [ "$failures" -gt 0 ]; then
    printf 'check_readme: %d problem(s)\n' "$failures" >&2
    exit 1
fi
printf 'check_readme: %d variables, %d metrics and the layout agree with the README\n' \
    "$(wc -l <<<"$help_vars")" "$(wc -l <<<"$source_metrics")"
