#!/usr/bin/env bash
# tests/layout/check_layout.sh — the house rules a reader of the tree relies on, checked on
# every `make test` (CTest: layout_check). Fails with one line per breach:
#   1. layers import downward only: arena → core → storage → proxy (proxy/main.cc and
#      proxy/services.* are the program's composition root). The base headers
#      core/assert.h and core/limits.h include nothing of ringway's and may be included
#      from any layer;
#   2. the data plane (proxy/*) does not include the control plane (proxy/admin/*), and
#      only core/ sees the client connection's insides (core/conn.h);
#   3. no source file in arena/ core/ storage/ proxy/ is longer than 900 lines;
#   4. no function defined at namespace level in a .cc file is longer than 80 lines,
#      counted from its first line to its closing brace (clang-format puts both at
#      column 0; lambdas count toward their enclosing function).
# Usage: check_layout.sh [SOURCE_DIR]
set -u
cd "${1:-$(dirname "$0")/../..}" || exit 2
file_lines_max=900
function_lines_max=80
status=0
fail() { echo "layout: $*"; status=1; }

rank() {
    case "$1" in
        arena) echo 0 ;; core) echo 1 ;; storage) echo 2 ;; proxy) echo 3 ;; *) echo 9 ;;
    esac
}

files=$(find arena core storage proxy -name '*.h' -o -name '*.cc' | sort)
[ -n "$files" ] || { echo "layout: no sources found under $(pwd)"; exit 2; }
for file in $files; do
    room=${file%%/*}
    own=$(rank "$room")
    while IFS= read -r include; do
        target=${include#\#include \"}
        target=${target%\"*}
        target_room=${target%%/*}
        case "$target" in
            core/assert.h|core/limits.h) continue ;;  # Base headers: any layer.
        esac
        [ "$(rank "$target_room")" = 9 ] && continue  # Not ringway's (e.g. llhttp.h).
        if [ "$(rank "$target_room")" -gt "$own" ]; then
            fail "$file includes $target: $room/ may not include $target_room/ (layers import downward only)"
        fi
        case "$file" in
            proxy/main.cc|proxy/services.*|proxy/admin/*) ;;
            proxy/*)
                case "$target" in
                    proxy/admin/*) fail "$file includes $target: the data plane does not use the control plane" ;;
                esac ;;
        esac
        if [ "$room" != core ] && [ "$target" = core/conn.h ]; then
            fail "$file includes core/conn.h: only core/ sees a client connection's insides (use core/client.h)"
        fi
    done < <(grep -E '^#include "' "$file")
done
for base in core/assert.h core/limits.h; do
    if grep -qE '^#include "' "$base"; then
        fail "$base includes a ringway header: base headers must be leaves"
    fi
done

for file in $files; do
    lines=$(wc -l < "$file")
    [ "$lines" -le "$file_lines_max" ] || fail "$file has $lines lines (at most $file_lines_max: split it along its concerns)"
done

for file in $(printf '%s\n' $files | grep '\.cc$'); do
    awk -v file="$file" -v max="$function_lines_max" '
        # A definition starts at column 0 with an identifier or type and reaches "{" at the
        # end of its line (possibly after a wrapped parameter list); it ends at "}" in column 0.
        start == 0 && /^[A-Za-z_\[].*\(/ && !/;[ \t]*$/ && !/^(namespace|struct|class|enum|union|extern|using|typedef|static_assert|template)/ {
            start = NR; name = $0; sub(/\(.*/, "", name); n = split(name, parts, /[ \t*&]+/); name = parts[n]
        }
        start > 0 && in_body == 0 && /\{[ \t]*$/ { in_body = 1 }
        start > 0 && in_body == 0 && /;[ \t]*$/ { start = 0 }
        in_body == 1 && /^\}/ {
            length_lines = NR - start + 1
            if (length_lines > max) { printf "layout: %s:%d %s is %d lines (at most %d)\n", file, start, name, length_lines, max; bad = 1 }
            start = 0; in_body = 0
        }
        END { exit bad }
    ' "$file" || status=1
done
exit $status
