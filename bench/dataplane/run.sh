#!/usr/bin/env bash
# Forwarder benchmark across namespaces: 64-byte UDP pps and 1-stream TCP through
# `filament vrouter run` (each I/O mode x MPLSoUDP, VXLAN) versus Linux kernel VXLAN and Open
# vSwitch's userspace (netdev) datapath, same topology (bench/dataplane/bench.py). Root only.
# Installs openvswitch-switch (apt) when missing; starts its own ovsdb-server/ovs-vswitchd per
# namespace (nothing of a system OVS is touched). Prints one table; asserts nothing.
#   FILAMENT_BIN=...   binary to use (default: target/release/filament, built if missing)
#   BENCH_SECONDS=5    length of each iperf3 run
#   BENCH_IO="af-packet af-xdp af-packet:2 af-xdp:2"   I/O modes (`--io`, ":N" = `--cores N`; "default": no --io)
#   BENCH_ENCAPS="mpls_over_udp vxlan"
#   VROUTER_ARGS="--ring-block-kb 32"   extra `filament vrouter run` arguments
#   BENCH_FIXED="100:800"   fixed offered load (kpps of 64-byte UDP : Mbit/s of TCP) instead of max rate
#   BENCH_POLICY=1          policy on the workload vifs, Forward flows installed for iperf3's 5-tuples
#   BENCH_PEERS=0           filament rows only (no kernel VXLAN / OVS rows): A/B runs of two binaries
set -euo pipefail
cd "$(dirname "$0")/../.."
if [[ $EUID -ne 0 ]]; then echo "bench/dataplane/run.sh: needs root (network namespaces)" >&2; exit 2; fi
if ! command -v ovs-vswitchd >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  # The service is not started (and must not be): the benchmark runs its own daemons.
  apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openvswitch-switch \
    || echo "openvswitch-switch could not be installed: OVS is not measured" >&2
fi
if [[ -z "${FILAMENT_BIN:-}" ]]; then
  cargo build --release -p filament
  export FILAMENT_BIN="$PWD/target/release/filament"
fi
exec python3 bench/dataplane/bench.py
