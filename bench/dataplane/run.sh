#!/usr/bin/env bash
# Forwarder benchmark across namespaces: 64-byte UDP pps and 1-stream TCP through
# `filament vrouter run` (MPLSoUDP, VXLAN) versus Linux kernel VXLAN, same topology
# (bench/dataplane/bench.py). Root only. Prints figures; asserts nothing.
#   FILAMENT_BIN=...   binary to use (default: target/release/filament, built if missing)
#   BENCH_SECONDS=5    length of each iperf3 run
#   VROUTER_ARGS="--ring-block-kb 32"   extra `filament vrouter run` arguments
set -euo pipefail
cd "$(dirname "$0")/../.."
if [[ $EUID -ne 0 ]]; then echo "bench/dataplane/run.sh: needs root (network namespaces)" >&2; exit 2; fi
if [[ -z "${FILAMENT_BIN:-}" ]]; then
  cargo build --release -p filament
  export FILAMENT_BIN="$PWD/target/release/filament"
fi
exec python3 bench/dataplane/bench.py
