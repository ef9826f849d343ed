#!/bin/sh
# Fault domain of an EC2 instance, from the instance metadata service (IMDSv2, with a
# fallback to IMDSv1): region `aws-<region>`, zone `aws-<availability zone>`, e.g.
# {"fault_domain":{"region":{"name":"aws-us-east-1"},"zone":{"name":"aws-us-east-1a"}}}
set -eu

IMDS="http://169.254.169.254/latest"

fail() {
    echo "aws fault domain detect: $*" >&2
    exit 1
}

command -v curl >/dev/null 2>&1 || fail "curl is not installed"

# IMDSv2 wants a session token; instances that still allow IMDSv1 answer without one.
TOKEN="$(curl -fsS -m 3 -X PUT "$IMDS/api/token" \
    -H "X-aws-ec2-metadata-token-ttl-seconds: 60" 2>/dev/null || true)"

metadata() {
    if [ -n "$TOKEN" ]; then
        curl -fsS -m 3 -H "X-aws-ec2-metadata-token: $TOKEN" "$IMDS/meta-data/$1"
    else
        curl -fsS -m 3 "$IMDS/meta-data/$1"
    fi
}

ZONE="$(metadata placement/availability-zone)" ||
    fail "cannot read $IMDS/meta-data/placement/availability-zone (not on EC2, or metadata disabled?)"
REGION="$(metadata placement/region 2>/dev/null || true)"
# Older metadata versions lack placement/region: the region is the zone without its letter.
[ -n "$REGION" ] || REGION="$(echo "$ZONE" | sed 's/[a-z]$//')"
[ -n "$ZONE" ] && [ -n "$REGION" ] || fail "empty region or zone in the instance metadata"

printf '{"fault_domain":{"region":{"name":"aws-%s"},"zone":{"name":"aws-%s"}}}\n' "$REGION" "$ZONE"
