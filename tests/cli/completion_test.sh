#!/usr/bin/env bash
# tests/cli/completion_test.sh — the bash completion script completes commands, verbs,
# options and option values as the README says. Runs the completion function the way bash
# does for a Tab (COMP_WORDS / COMP_CWORD) and checks COMPREPLY. Exit 0 pass, 1 fail.
set -u
script="$1"
# shellcheck source=/dev/null
source "$script" || { echo "cannot source $script"; exit 1; }
unset RINGWAY_ADMIN_TOKEN
failures=0

# expect "<words...>" "<expected word in the completions>"
expect() {
    local line="$1" want="$2"
    read -r -a COMP_WORDS <<< "$line"
    case "$line" in *" ") COMP_WORDS+=("") ;; esac
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    _ringway
    local got=" ${COMPREPLY[*]:-} "
    if [[ "$got" != *" $want "* ]]; then
        echo "FAIL: '$line<TAB>' should offer '$want', got:$got"
        failures=$((failures + 1))
    fi
}
expect_not() {
    local line="$1" unwanted="$2"
    read -r -a COMP_WORDS <<< "$line"
    case "$line" in *" ") COMP_WORDS+=("") ;; esac
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    _ringway
    local got=" ${COMPREPLY[*]:-} "
    if [[ "$got" == *" $unwanted "* ]]; then
        echo "FAIL: '$line<TAB>' should not offer '$unwanted', got:$got"
        failures=$((failures + 1))
    fi
}

expect "ringway " "channel"
expect "ringway ch" "channel"
expect "ringway channel " "test"
expect "ringway al" "alias"
expect "ringway alias " "add"
expect "ringway alias " "rm"
expect "ringway alias add fast --" "--models"
expect "ringway alias update 3 --" "--name"
expect "ringway channel a" "add"
expect "ringway channel add --" "--model-map"
expect "ringway channel add --kind " "anthropic"
expect "ringway channel update 3 --" "--enabled"
expect "ringway channel add --" "--probe-model"
expect "ringway key create --" "--quota"
expect "ringway key update 1 --" "--budget-usd"
expect "ringway key create --period " "weekly"
expect "ringway key create --" "--strict"
expect "ringway key update 1 --" "--strict=false"
expect "ringway key " "topup"
expect "ringway logs --" "--request"
expect "ringway logs --" "--status"
expect "ringway logs --key 1 --" "--end-reason"
expect "ringway logs --end-reason " "client_gone"
expect "ringway " "latency"
expect "ringway latency --" "--since"
expect "ringway usage --since " "7d"
expect_not "ringway key create --" "--model-map"
expect_not "ringway channel " "revoke"
PATH_VARIABLE_FOR_TEST=1 expect "ringway channel add --api-key-env PATH" "PATH"

[ "$failures" -eq 0 ] && echo "completion: all passed"
[ "$failures" -eq 0 ]
