#!/bin/sh
# Prints a fixed fault domain: for a single site, a lab, or a machine whose place you know.
# Edit the two names (or set DROVER_REGION / DROVER_ZONE) and point
# `drover agent --fault-domain-detect` or `drover master --fault-domain-detect` at this file.
set -eu

REGION="${DROVER_REGION:-local}"
ZONE="${DROVER_ZONE:-local-a}"

printf '{"fault_domain":{"region":{"name":"%s"},"zone":{"name":"%s"}}}\n' "$REGION" "$ZONE"
