#!/bin/sh
# BGP ingest benchmark: BIRD 2 feeds N VPNv4 routes (default 1,000,000 over 100 RDs)
# into our speaker, then into BIRD, FRR and GoBGP as DUTs; prints time and RSS.
# Usage: bench/bgp/ingest.sh [--routes N] [--rds R] [--duts ours,bird,frr,gobgp]
set -e
cd "$(dirname "$0")/../.."
cargo build --release -q -p filament-bgp --example bgp_peer
exec python3 bench/bgp/ingest.py "$@"
