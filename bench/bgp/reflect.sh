#!/bin/sh
# BGP reflection benchmark: BIRD 2 feeds N VPNv4 routes (default 1,000,000 over
# 100 RDs) to a route reflector, which reflects them to C clients (default 10,
# one cheap counting process); prints time, CPU and RSS. The reflector is our
# speaker alone (--dut ours, the default) and/or the product (--dut filament:
# `filament up --no-control` + `filament control`, configured over REST).
# Usage: bench/bgp/reflect.sh [--routes N] [--rds R] [--clients C] [--dut ours|filament|ours,filament]
set -e
cd "$(dirname "$0")/../.."
cargo build --release -q -p filament-bgp --example bgp_peer --example bgp_sink
# The filament DUT: FILAMENT_BIN=path runs another build.
case "$*" in *filament*) [ -n "$FILAMENT_BIN" ] || cargo build --release -q -p filament ;; esac
exec python3 bench/bgp/reflect.py "$@"
