#!/bin/sh
# BGP reflection benchmark: BIRD 2 feeds N VPNv4 routes (default 1,000,000 over
# 100 RDs) to our speaker as route reflector, which reflects them to C clients
# (default 10, one cheap counting process); prints time, CPU and RSS.
# Usage: bench/bgp/reflect.sh [--routes N] [--rds R] [--clients C]
set -e
cd "$(dirname "$0")/../.."
cargo build --release -q -p filament-bgp --example bgp_peer --example bgp_sink
exec python3 bench/bgp/reflect.py "$@"
