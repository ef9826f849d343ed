#!/bin/sh
# Fault domain of a Google Compute Engine VM, from the metadata server: region
# `gcp-<region>`, zone `gcp-<zone>`, e.g.
# {"fault_domain":{"region":{"name":"gcp-us-central1"},"zone":{"name":"gcp-us-central1-a"}}}
set -eu

URL="http://metadata.google.internal/computeMetadata/v1/instance/zone"

fail() {
    echo "gcp fault domain detect: $*" >&2
    exit 1
}

command -v curl >/dev/null 2>&1 || fail "curl is not installed"

# The answer looks like projects/123456789/zones/us-central1-a.
ANSWER="$(curl -fsS -m 3 -H "Metadata-Flavor: Google" "$URL")" ||
    fail "cannot read $URL (not on GCE?)"
ZONE="${ANSWER##*/}"
# A zone is its region plus a suffix: us-central1-a is in us-central1.
REGION="${ZONE%-*}"
[ -n "$ZONE" ] && [ "$REGION" != "$ZONE" ] || fail "unexpected zone in the metadata: $ANSWER"

printf '{"fault_domain":{"region":{"name":"gcp-%s"},"zone":{"name":"gcp-%s"}}}\n' "$REGION" "$ZONE"
