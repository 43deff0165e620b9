#!/bin/bash
# tests/layout/check_libs.sh BINARY... — no ringway binary maps libpq at start: it is
# dlopen'd for a postgres:// RINGWAY_DB only (storage/pg_lib.h). Linked in, it brought ~20
# more libraries (gnutls, ldap, krb5 …) and ~5 MB of idle RSS to every SQLite gateway.
# ldd lists the whole closure, so a dependency that pulls libpq in again fails here too.
set -euo pipefail
status=0
for binary in "$@"; do
    libraries=$(ldd "$binary")
    [ -n "$libraries" ] || { echo "FAIL: ldd printed nothing for $binary" >&2; exit 1; }
    if grep -q 'libpq\.so' <<<"$libraries"; then
        echo "FAIL: $binary maps libpq at start:" >&2
        grep 'libpq\.so' <<<"$libraries" >&2
        status=1
    else
        echo "$binary: $(wc -l <<<"$libraries") libraries, no libpq"
    fi
done
exit $status
