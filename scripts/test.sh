#!/usr/bin/env bash
# The one command that runs every test of the workspace:
#   lint (fmt, clippy) -> build -> Rust tests -> end-to-end suite (tests/e2e).
#
# Idempotent and runnable from any directory. Environment:
#   FILAMENT_SKIP_LINT=1   skip cargo fmt/clippy and the fuzz-target check (quick local runs)
#   FILAMENT_BIN=path      server binary for the e2e suite
#                          (default: <target dir>/debug/filament, just built)
#   PYTEST_ADDOPTS=...     extra pytest options, e.g. "-k restart -x"
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="$ROOT/.venv"
REQS="$ROOT/tests/e2e/requirements.txt"
STAMP="$VENV/.e2e-requirements.sha256"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PYTHONDONTWRITEBYTECODE=1

step() {
    printf '\n==================== %s ====================\n' "$*"
}

die() {
    printf 'scripts/test.sh: error: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------------------
step "prerequisites"
# ---------------------------------------------------------------------------
APT_UPDATED=0
apt_install() {
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        die "missing $*; install it (apt-get install $*) and re-run"
    fi
    if [ "$APT_UPDATED" = 0 ]; then
        apt-get update
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}

command -v cargo >/dev/null 2>&1 || die "cargo not found (install the Rust toolchain with rustup)"
if ! command -v cc >/dev/null 2>&1; then
    apt_install gcc libc6-dev # C compiler for crates that build C (e.g. bundled SQLite)
fi

# A python3 that can create a venv with pip (ensurepip).
PYTHON="$(command -v python3 || true)"
if [ -z "$PYTHON" ] || ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt_install python3 python3-venv python3-pip
    PYTHON=/usr/bin/python3
    "$PYTHON" -c 'import venv, ensurepip' || die "$PYTHON cannot create virtual environments"
fi
# Real peers and tools of the namespace tests (forwarder, agent, control node, demo lab).
# Installed when running as root (CI); elsewhere those tests skip and say why.
need_pkgs=()
for spec in ip:iproute2 iperf3:iperf3 tshark:tshark dhclient:isc-dhcp-client busybox:busybox \
    /usr/lib/frr/bgpd:frr gobgpd:gobgpd bird:bird2 ethtool:ethtool tcpdump:tcpdump ping:iputils-ping; do
    cmd="${spec%%:*}" pkg="${spec#*:}"
    if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "$cmd" ]; then
        need_pkgs+=("$pkg")
    fi
done
if [ "${#need_pkgs[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt_install "${need_pkgs[@]}"
    else
        echo "not installing ${need_pkgs[*]} (not root): the namespace tests that need them will skip"
    fi
fi
echo "cargo:  $(cargo --version)"
echo "python: $("$PYTHON" --version 2>&1) ($PYTHON)"

# ---------------------------------------------------------------------------
step "python venv for the e2e suite (.venv)"
# ---------------------------------------------------------------------------
if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    echo "existing .venv is broken; recreating it"
    rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
want="$(sha256sum "$REQS" | cut -d' ' -f1) $("$VENV/bin/python" -c 'import sys; print(sys.version)' | head -n1)"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [ "$want" != "$have" ]; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip setuptools wheel
    "$VENV/bin/python" -m pip install --quiet -r "$REQS"
    printf '%s\n' "$want" >"$STAMP"
    echo "installed $(basename "$REQS") into .venv"
else
    echo ".venv is up to date with $(basename "$REQS")"
fi
"$VENV/bin/python" -c 'import vnc_api.vnc_api, pytest' || die ".venv lacks vnc_api or pytest; delete .venv and re-run"

# ---------------------------------------------------------------------------
if [ "${FILAMENT_SKIP_LINT:-0}" = 1 ]; then
    step "lint skipped (FILAMENT_SKIP_LINT=1)"
else
    step "cargo fmt --check"
    cargo fmt --all -- --check
    step "cargo clippy"
    cargo clippy --workspace --all-targets -- -D warnings
    # The fuzz crate is outside the workspace: check its targets still compile against
    # the crates they drive (libfuzzer-sys builds libFuzzer, which needs a C++ compiler).
    step "fuzz targets compile (cargo check in fuzz/)"
    command -v c++ >/dev/null 2>&1 || apt_install g++
    (cd "$ROOT/fuzz" && cargo check --bins)
fi

# ---------------------------------------------------------------------------
step "cargo build"
# ---------------------------------------------------------------------------
cargo build --workspace --all-targets

# ---------------------------------------------------------------------------
if cargo nextest --version >/dev/null 2>&1; then
    step "cargo nextest run"
    cargo nextest run --workspace --no-tests=warn --no-fail-fast
    step "cargo test --doc"
    cargo test --workspace --doc
else
    step "cargo test"
    cargo test --workspace
fi

# ---------------------------------------------------------------------------
step "e2e suite (tests/e2e, real vnc_api client against filament up)"
# ---------------------------------------------------------------------------
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
export FILAMENT_BIN="${FILAMENT_BIN:-$TARGET_DIR/debug/filament}"
[ -x "$FILAMENT_BIN" ] || die "server binary $FILAMENT_BIN not found after cargo build"
echo "FILAMENT_BIN=$FILAMENT_BIN"

set +e
"$VENV/bin/python" -m pytest -q tests/e2e
rc=$?
set -e
if [ "$rc" = 5 ]; then
    die "pytest collected no tests in tests/e2e (exit 5): that is a failure"
elif [ "$rc" != 0 ]; then
    die "e2e suite failed (pytest exit $rc)"
fi

step "all tests passed"
