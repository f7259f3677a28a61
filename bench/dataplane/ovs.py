"""Open vSwitch's userspace ("netdev") datapath in the benchmark lab (issue 5, "Benchmarks").

Each host namespace gets its OWN ovsdb-server and ovs-vswitchd (database, sockets, pid and log
files under the lab's work directory; nothing of a system-wide Open vSwitch is touched) and the
classic userspace-tunnelling layout of the OVS documentation ("Userspace tunneling"):

::

    br-int (netdev): tap<i>, vx0 (vxlan, remote_ip = peer fabric IP, key 5001)
    br-phy (netdev): f<i>; the fabric IP moves from f<i> to br-phy's internal (tap) port

``ovs-appctl ovs/route/add`` points the peer at br-phy and ``tnl/arp/set`` gives the tunnel its
neighbour. No kernel module: the netdev datapath polls the veths through AF_PACKET sockets in
ovs-vswitchd's main thread. :meth:`Ovs.close` stops the daemons and gives f<i> its IP back.
"""

import os
import time

from dataplane_lab import FABRIC_NET, VNI, nsrun, run

SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"


class Ovs:
    """Two per-namespace Open vSwitch instances bridging the lab's workloads over VXLAN."""

    def __init__(self, lab):
        self.lab = lab
        self.procs = []
        self.dirs = {}

    def _vsctl(self, i, *args):
        return run("ovs-vsctl", f"--db=unix:{self.dirs[i]}/db.sock", "--timeout=20", *args)

    def _appctl(self, i, *args):
        return run("ovs-appctl", "-t", f"{self.dirs[i]}/vswitchd.ctl", *args)

    def _wait_file(self, path, proc, what):
        deadline = time.monotonic() + 20
        while not os.path.exists(path):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start (see {self.lab.work})")
            time.sleep(0.05)

    def up(self):
        lab = self.lab
        for i in (1, 2):
            d = lab.work / f"ovs-h{i}"
            d.mkdir(exist_ok=True)
            self.dirs[i] = d
            run("ovsdb-tool", "create", str(d / "conf.db"), SCHEMA)
            env_args = ["env", f"OVS_RUNDIR={d}", f"OVS_LOGDIR={d}", f"OVS_DBDIR={d}"]
            p, _ = lab.spawn(lab.h[i], [*env_args, "ovsdb-server", str(d / "conf.db"),
                                        f"--remote=punix:{d}/db.sock",
                                        f"--unixctl={d}/ovsdb.ctl",
                                        f"--pidfile={d}/ovsdb.pid"], f"ovsdb-h{i}")
            self.procs.append(p)
            self._wait_file(d / "db.sock", p, f"ovsdb-server h{i}")
            self._vsctl(i, "--no-wait", "init")
            p, _ = lab.spawn(lab.h[i], [*env_args, "ovs-vswitchd", f"unix:{d}/db.sock",
                                        f"--unixctl={d}/vswitchd.ctl",
                                        f"--pidfile={d}/vswitchd.pid"], f"ovs-vswitchd-h{i}")
            self.procs.append(p)
            self._wait_file(d / "vswitchd.ctl", p, f"ovs-vswitchd h{i}")
        for i, j in ((1, 2), (2, 1)):
            ns = lab.h[i]
            local, remote = f"{FABRIC_NET}.{i}", f"{FABRIC_NET}.{j}"
            self._vsctl(i, "add-br", "br-phy", "--", "set", "bridge", "br-phy",
                        "datapath_type=netdev", f"other_config:hwaddr={lab.fabric_mac(i)}",
                        "--", "add-port", "br-phy", f"f{i}")
            self._vsctl(i, "add-br", "br-int", "--", "set", "bridge", "br-int",
                        "datapath_type=netdev",
                        "--", "add-port", "br-int", f"tap{i}",
                        "--", "add-port", "br-int", "vx0", "--", "set", "interface", "vx0",
                        "type=vxlan", f"options:remote_ip={remote}",
                        f"options:local_ip={local}", f"options:key={VNI}")
            run("ip", "-n", ns, "addr", "del", f"{local}/24", "dev", f"f{i}")
            run("ip", "-n", ns, "addr", "add", f"{local}/24", "dev", "br-phy")
            run("ip", "-n", ns, "link", "set", "br-phy", "up")
            run("ip", "-n", ns, "link", "set", "br-int", "up")
            nsrun(ns, "ethtool", "-K", "br-phy", "tx", "off", "tso", "off", "gso", "off",
                  check=False)
            self._appctl(i, "ovs/route/add", f"{remote}/32", "br-phy")
        for i, j in ((1, 2), (2, 1)):
            self._appctl(i, "tnl/arp/set", "br-phy", f"{FABRIC_NET}.{j}", self.lab.fabric_mac(j))
        # Warm up: fabric reachability through br-phy and the learning of workload MACs.
        nsrun(lab.h[1], "ping", "-c", "1", "-W", "2", f"{FABRIC_NET}.2", check=False)

    def close(self):
        for i in self.dirs:
            ns = self.lab.h[i]
            run("ip", "-n", ns, "addr", "add", f"{FABRIC_NET}.{i}/24", "dev", f"f{i}",
                check=False)
        for p in reversed(self.procs):
            self.lab._stop(p)
        self.procs = []
