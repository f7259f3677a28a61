#!/bin/sh
# BGP ingest benchmark: BIRD 2 (live, and its recorded feed replayed as fast as the DUT reads) feeds N VPNv4 routes (default 1,000,000 over 100 RDs)
# into our speaker, the filament control node, then BIRD, FRR and GoBGP as DUTs;
# prints time, CPU seconds and RSS.
# Usage: bench/bgp/ingest.sh [--routes N] [--rds R] [--duts ours,filament,bird,frr,gobgp,sink] [--feed replay,bird]
set -e
cd "$(dirname "$0")/../.."
cargo build --release -q -p filament-bgp --example bgp_peer --example bgp_sink
# The filament DUT (in the default list): FILAMENT_BIN=path runs another build.
case "$*" in *--duts*filament*|*--duts*) want=$(echo "$*" | grep -c filament || true) ;; *) want=1 ;; esac
if [ "$want" -gt 0 ] && [ -z "$FILAMENT_BIN" ]; then cargo build --release -q -p filament; fi
exec python3 bench/bgp/ingest.py "$@"
