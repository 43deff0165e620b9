#!/bin/sh
# packaging/secret-key.sh DIR — creates DIR/secret-key, the key that seals the channels'
# upstream keys at rest (64 hex digits, mode 0600; the unit loads it with LoadCredential=),
# unless it already exists: an existing key is never replaced (rotate with
# `ringway secrets rotate`). Used by `make install`; the Debian postinst does the same.
set -eu
dir=$1
key=$dir/secret-key
if [ -e "$key" ]; then
    echo "Keeping: $key (exists)"
    exit 0
fi
mkdir -p "$dir"
umask 077
hex=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
[ ${#hex} -eq 64 ] || { echo "secret-key.sh: could not read 32 random bytes" >&2; exit 1; }
printf '%s\n' "$hex" >"$key.tmp"
mv "$key.tmp" "$key"
echo "Created: $key (mode 0600)"
