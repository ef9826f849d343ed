#!/bin/sh
# Fault domain of an Azure VM, from the instance metadata service: region `azure-<location>`,
# zone `azure-<location>-<availability zone>` for VMs in an availability zone, otherwise
# `azure-<location>-fd<platform fault domain>` (fault domains are numbered per region, so
# the location is kept in the zone name to keep zone names unique), e.g.
# {"fault_domain":{"region":{"name":"azure-westeurope"},"zone":{"name":"azure-westeurope-2"}}}
set -eu

IMDS="http://169.254.169.254/metadata/instance/compute"
API="api-version=2021-02-01&format=text"

fail() {
    echo "azure fault domain detect: $*" >&2
    exit 1
}

command -v curl >/dev/null 2>&1 || fail "curl is not installed"

metadata() {
    curl -fsS -m 3 -H "Metadata: true" "$IMDS/$1?$API"
}

REGION="$(metadata location)" || fail "cannot read $IMDS/location (not on Azure?)"
AZ="$(metadata zone 2>/dev/null || true)"
if [ -n "$AZ" ]; then
    ZONE="$REGION-$AZ"
else
    FD="$(metadata platformFaultDomain)" || fail "cannot read $IMDS/platformFaultDomain"
    ZONE="$REGION-fd$FD"
fi
[ -n "$REGION" ] || fail "empty location in the instance metadata"

printf '{"fault_domain":{"region":{"name":"azure-%s"},"zone":{"name":"azure-%s"}}}\n' "$REGION" "$ZONE"
