"""Helpers for the BGP interop tests (test_bgp.py).

A private network namespace holds every speaker: its loopback carries one
address per speaker (10.77.0.1 = ours, .2 = FRR, .3 = GoBGP), so each peer is
known by its own address while all traffic stays inside the namespace.

Our side is the `bgp_peer` example of crates/bgp (built by the fixture): it
announces a JSON list of paths, takes more commands on stdin and prints every
event as a JSON line.
"""

import contextlib
import ctypes
import json
import os
import queue
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
OURS, FRR, GOBGP = "10.77.0.1", "10.77.0.2", "10.77.0.3"


def missing_tools():
    """Names of the tools these tests need that are not installed."""
    need = ["/usr/lib/frr/bgpd", "vtysh", "gobgpd", "gobgp", "ip"]
    return [t for t in need if not (os.path.exists(t) or shutil.which(t))]


def bgp_peer_bin() -> Path:
    """Build (if needed) and return the example speaker."""
    subprocess.run(
        ["cargo", "build", "-q", "-p", "filament-bgp", "--example", "bgp_peer"],
        cwd=REPO_ROOT,
        check=True,
    )
    return REPO_ROOT / "target" / "debug" / "examples" / "bgp_peer"


class Netns:
    """A throw-away namespace with the speakers' addresses on lo."""

    def __init__(self):
        self.name = "fbgp-" + uuid.uuid4().hex[:8]
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.run("ip", "link", "set", "lo", "up")
        for addr in (OURS, FRR, GOBGP):
            self.run("ip", "addr", "add", f"{addr}/32", "dev", "lo")

    def cmd(self, *args):
        return ["ip", "netns", "exec", self.name, *args]

    def run(self, *args, check=True):
        return subprocess.run(self.cmd(*args), check=check, capture_output=True, text=True)

    def delete(self):
        subprocess.run(["ip", "netns", "del", self.name], check=False)


@contextlib.contextmanager
def in_netns(name: str):
    """Run the body with this thread in netns `name` (setns(2)); sockets created inside stay
    in that namespace after it returns (an in-test XMPP agent reaching a control node there)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    clone_newnet = 0x40000000
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(target, clone_newnet) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {name}")
        try:
            yield
        finally:
            if libc.setns(own, clone_newnet) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(own)
        os.close(target)


class Proc:
    """A child process that is stopped by its pid, never by name."""

    def __init__(self, argv, log_path: Path, stdin=None, stdout=None):
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(
            argv,
            stdin=stdin,
            stdout=stdout if stdout is not None else self.log,
            stderr=self.log,
            text=True,
        )

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class OurSpeaker(Proc):
    """The bgp_peer example; events are collected from its stdout."""

    def __init__(self, ns: Netns, binary: Path, work: Path, peers, routes, extra=()):
        routes_file = work / "routes.json"
        routes_file.write_text(json.dumps(routes))
        argv = ns.cmd(
            str(binary), "--asn", "64512", "--router-id", OURS,
            "--listen", f"{OURS}:179", "--connect-retry", "1", "--rtc-wait", "2",
            "--routes", str(routes_file), *extra,
        )
        for p in peers:
            argv += ["--peer", p]
        super().__init__(argv, work / "ours.log", stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.events = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                pass

    def command(self, obj):
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()

    def wait_for(self, pred, timeout=30.0, what="event"):
        """Return the first event (seen before or arriving) matching pred."""
        for e in self.seen:
            if pred(e):
                return e
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                e = self.events.get(timeout=0.2)
            except queue.Empty:
                continue
            self.seen.append(e)
            if pred(e):
                return e
        raise AssertionError(f"no {what} within {timeout}s; events: {self.seen[-20:]}")

    def learned(self, peer, **fields):
        def pred(e):
            if e.get("event") != "learned" or e.get("peer") != peer:
                return False
            return all(e["path"].get(k) == v for k, v in fields.items())
        return self.wait_for(pred, what=f"learned {fields} from {peer}")["path"]


def frr_vpn_conf(asn: int, evpn: bool) -> str:
    """FRR's configuration: AS `asn` (eBGP unless 64512, ours) to our side, announcing
    VPNv4 10.200.1.0/24 (RD asn:7, label 1007) and with `evpn` an EVPN type-5 route
    10.201.0.0/24 (RD asn:8, label 2001), both with target 64512:8000001. `{work}` stays
    in the text, for the caller to replace with the work directory."""
    ebgp = " no bgp ebgp-requires-policy\n" if asn != 64512 else ""
    conf = f"""frr defaults traditional
hostname frr
log file {{work}}/frr-debug.log
route-map SETRT permit 10
 set extcommunity rt 64512:8000001
exit
router bgp {asn}
 bgp router-id {FRR}
{ebgp} no bgp default ipv4-unicast
 neighbor {OURS} remote-as 64512
 neighbor {OURS} update-source {FRR}
 neighbor {OURS} timers connect 1
 address-family ipv4 vpn
  neighbor {OURS} activate
  network 10.200.1.0/24 rd {asn}:7 label 1007 route-map SETRT
 exit-address-family
"""
    if evpn:
        conf += f""" address-family l2vpn evpn
  neighbor {OURS} activate
  network 10.201.0.0/24 rd {asn}:8 ethtag 0 label 2001 esi 00:00:00:00:00:00:00:00:00:00 gwip 0.0.0.0 routermac 02:00:00:00:00:aa route-map SETRT
 exit-address-family
"""
    return conf + "exit\n"


def gobgp_toml(router_id: str, neighbor: str, families: list[str]) -> str:
    """GoBGP's configuration: iBGP (AS 64512) from `router_id` to `neighbor` (our
    side) with the AFI-SAFIs `families` (GoBGP's names, e.g. "l3vpn-ipv4-unicast", "rtc")."""
    toml = f"""[global.config]
  as = 64512
  router-id = "{router_id}"
  port = 179
  local-address-list = ["{router_id}"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "{neighbor}"
    peer-as = 64512
  [neighbors.transport.config]
    local-address = "{router_id}"
"""
    for fam in families:
        toml += f"""  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "{fam}"
"""
    return toml


def frr_config(work: Path, body: str) -> Path:
    conf = work / "frr.conf"
    conf.write_text(body)
    shutil.chown(work, "frr", "frr")
    shutil.chown(conf, "frr", "frr")
    return conf


class Frr(Proc):
    """bgpd without zebra (or with the `Zebra` started in `work`, for EVPN routes of its
    VNIs), its vty socket in the work dir."""

    def __init__(self, ns: Netns, work: Path, conf: Path, zebra: bool = False):
        self.ns = ns
        self.work = work
        zserv = ["-z", str(work / "zserv.api")] if zebra else ["-Z"]
        argv = ns.cmd(
            "/usr/lib/frr/bgpd", "-f", str(conf), "-i", str(work / "bgpd.pid"),
            "--vty_socket", str(work), *zserv, "-n", "-l", FRR, "-p", "179",
        )
        super().__init__(argv, work / "frr.log")

    def show(self, cmd: str):
        out = self.ns.run("vtysh", "--vty_socket", str(self.work), "-c", cmd, check=False)
        try:
            return json.loads(out.stdout)
        except ValueError:
            return {}


class Zebra(Proc):
    """FRR's zebra in `ns` (no config), for a bgpd started with `Frr(..., zebra=True)`: it
    reads the namespace's VXLAN devices and bridge FDB, so bgpd originates EVPN type-2/3."""

    def __init__(self, ns: Netns, work: Path):
        argv = ns.cmd("/usr/lib/frr/zebra", "-z", str(work / "zserv.api"), "-i", str(work / "zebra.pid"),
                      "--vty_socket", str(work), "-f", "/dev/null")
        super().__init__(argv, work / "zebra.log")


class GoBgp(Proc):
    """gobgpd with its gRPC API on 127.0.0.1:`api_port` (another port for a second one)."""

    def __init__(self, ns: Netns, work: Path, toml: str, api_port: int = 50051):
        name = "gobgpd" if api_port == 50051 else f"gobgpd-{api_port}"
        conf = work / f"{name}.toml"
        conf.write_text(toml)
        argv = ns.cmd("gobgpd", "-f", str(conf), "-t", "toml", "--api-hosts", f"127.0.0.1:{api_port}")
        super().__init__(argv, work / f"{name}.log")
        self.ns = ns
        self.api_port = api_port

    def cli(self, *args, check=True):
        return self.ns.run("gobgp", "-p", str(self.api_port), *args, check=check)

    def cli_json(self, *args):
        out = self.cli(*args, "-j", check=False)
        try:
            return json.loads(out.stdout or "null")
        except ValueError:
            return None


def ns_http(ns, method, url, body=None):
    """HTTP inside the namespace `ns` (the API and introspect listen on its loopback): the
    JSON answer, or None."""
    args = ["curl", "-s", "-X", method, url, "-H", "Content-Type: application/json"]
    if body is not None:
        args += ["-d", json.dumps(body)]
    out = ns.run(*args, check=False).stdout
    try:
        return json.loads(out or "null")
    except ValueError:
        return None


def wait_until(fn, timeout=30.0, what="condition"):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = fn()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")
