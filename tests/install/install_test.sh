#!/bin/bash
# tests/install/install_test.sh BUILD_DIR — `make install` into a temporary DESTDIR (file
# list, modes, ExecStart/ExecReload of the unit, an existing ringway.env left alone), then
# `make deb`'s package checked with dpkg-deb (contents, control data, conffiles, maintainer
# scripts that enable but never start the unit). Without dpkg-deb or cpack the package
# part is skipped (exit 77) after the install part passed.
set -euo pipefail
build=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
mode() { stat -c '%a' "$1"; }

dest=$work/root
DESTDIR=$dest cmake --install "$build" --prefix /opt/rw >"$work/install.log"
expected=$(printf '%s\n' etc/ringway/ringway.env opt/rw/bin/ringway \
    opt/rw/lib/systemd/system/ringway.service opt/rw/share/doc/ringway/ringway.env.example)
actual=$(cd "$dest" && find . -type f | sed 's|^\./||' | sort)
[ "$actual" = "$expected" ] || fail "installed files:"$'\n'"$actual"$'\n'"expected:"$'\n'"$expected"
[ "$(mode "$dest/opt/rw/bin/ringway")" = 755 ] || fail "binary mode $(mode "$dest/opt/rw/bin/ringway")"
[ "$(mode "$dest/opt/rw/lib/systemd/system/ringway.service")" = 644 ] || fail "unit mode"
[ "$(mode "$dest/etc/ringway/ringway.env")" = 600 ] || fail "env mode $(mode "$dest/etc/ringway/ringway.env")"
[ "$(mode "$dest/etc/ringway")" = 750 ] || fail "env dir mode $(mode "$dest/etc/ringway")"
grep -qx 'ExecStart=/opt/rw/bin/ringway' "$dest/opt/rw/lib/systemd/system/ringway.service" \
    || fail "ExecStart does not name the installed binary"
grep -qx 'ExecReload=/bin/kill -HUP $MAINPID' "$dest/opt/rw/lib/systemd/system/ringway.service" \
    || fail "no ExecReload"
# The reload re-reads the env file through the copy that ExecReload refreshes.
grep -qx 'Environment=RINGWAY_ENV_FILE=/run/ringway/ringway.env' \
    "$dest/opt/rw/lib/systemd/system/ringway.service" || fail "no RINGWAY_ENV_FILE"
grep -q '^ExecReload=+/bin/sh -c .*/run/ringway/ringway.env' \
    "$dest/opt/rw/lib/systemd/system/ringway.service" || fail "ExecReload does not copy the env file"
"$dest/opt/rw/bin/ringway" --version | grep -q '^ringway ' || fail "installed binary does not run"

# An operator's ringway.env survives a second install.
echo 'RINGWAY_LISTEN=0.0.0.0:9000' >"$dest/etc/ringway/ringway.env"
DESTDIR=$dest cmake --install "$build" --prefix /opt/rw >"$work/install2.log"
[ "$(cat "$dest/etc/ringway/ringway.env")" = 'RINGWAY_LISTEN=0.0.0.0:9000' ] \
    || fail "an existing /etc/ringway/ringway.env was overwritten"
grep -q 'Keeping: .*ringway.env' "$work/install2.log" || fail "no 'Keeping' line"
# The secret key `make install` creates (packaging/secret-key.sh): 64 hex digits, 0600, kept.
keyscript=$(cd "$(dirname "$0")/../.." && pwd)/packaging/secret-key.sh
sh "$keyscript" "$dest/etc/ringway" >/dev/null
key=$dest/etc/ringway/secret-key
[ "$(mode "$key")" = 600 ] || fail "secret-key mode $(mode "$key")"
grep -qxE '[0-9a-f]{64}' "$key" || fail "secret-key is not 64 hex digits"
before=$(cat "$key")
sh "$keyscript" "$dest/etc/ringway" | grep -q '^Keeping: ' || fail "no 'Keeping' for the key"
[ "$(cat "$key")" = "$before" ] || fail "an existing secret-key was replaced"
rm "$key"
echo "install: ok"

if ! command -v dpkg-deb >/dev/null || ! command -v cpack >/dev/null; then
    echo "dpkg-deb or cpack not installed: package check skipped"
    exit 77
fi
(cd "$work" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/pkg" >"$work/cpack.log") \
    || { cat "$work/cpack.log" >&2; fail "cpack"; }
deb=$(ls "$work"/pkg/ringway_*.deb)
contents=$(dpkg-deb -c "$deb")
for path in ./usr/bin/ringway ./usr/lib/systemd/system/ringway.service \
    ./etc/ringway/ringway.env ./usr/share/doc/ringway/ringway.env.example; do
    grep -q " $path\$" <<<"$contents" || fail "$path missing from the package:"$'\n'"$contents"
done
grep -q '^-rwxr-xr-x root/root .* ./usr/bin/ringway$' <<<"$contents" || fail "binary mode in deb"
grep -q '^-rw------- root/root .* ./etc/ringway/ringway.env$' <<<"$contents" || fail "env mode in deb"
[ "$(dpkg-deb -f "$deb" Package)" = ringway ] || fail "Package field"
dpkg-deb -f "$deb" Depends | grep -q libsqlite3 || fail "Depends lacks libsqlite3"
# libpq is loaded only for a postgres:// RINGWAY_DB (storage/pg_lib.h): recommended, not needed.
! dpkg-deb -f "$deb" Depends | grep -q libpq || fail "Depends names libpq"
[ "$(dpkg-deb -f "$deb" Recommends)" = libpq5 ] || fail "Recommends is not libpq5"
control=$work/control
dpkg-deb -e "$deb" "$control"
grep -qx '/etc/ringway/ringway.env' "$control/conffiles" || fail "ringway.env is not a conffile"
grep -q 'systemctl enable ringway.service' "$control/postinst" || fail "postinst does not enable"
grep -q '/etc/ringway/secret-key' "$control/postinst" || fail "postinst does not create the key"
! grep -v '^#' "$control/postinst" | grep -q 'systemctl start' || fail "postinst starts the unit"
deb_unit=$work/unit
dpkg-deb -x "$deb" "$deb_unit"
grep -qx 'ExecStart=/usr/bin/ringway' "$deb_unit/usr/lib/systemd/system/ringway.service" \
    || fail "the packaged unit's ExecStart"
grep -qx 'ExecReload=/bin/kill -HUP $MAINPID' "$deb_unit/usr/lib/systemd/system/ringway.service" \
    || fail "the packaged unit's ExecReload"
echo "deb: ok ($(basename "$deb"))"
