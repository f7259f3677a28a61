"""Would a real Tungsten Fabric vRouter agent work against our control node?

We cannot run contrail-vrouter-agent here, so a raw-socket agent writes the bytes the real
one writes (read from TF's source: controller_peer.cc, xmpp_proto.cc, xml_pugi.cc, the
generated XSD encoders) and checks what we answer the way the real one reads it
(xmpp_proto.cc DecodeInternal, controller_peer.cc ReceiveV4V6Update). The table of what is
and is not verified is docs/tf-agent-compat.md. Reuses test_control's server and agent.
"""

import re
import time

import pytest
import requests

from test_control import Agent, make_vn, post, running_control, wait_for

CONTROL_JID = "network-control@contrailsystems.com"
KEEPALIVE = b"\xc8\x80"
STREAMS_NS = "http://etherx.jabber.org/streams"


def tf_accepts_open(header: bytes) -> bool:
    """TF's checks on a received stream open: framed by `…/streams["'] *>` at its end
    (xmpp_session.cc Match, rXMPP_STREAM_END), and, newlines removed, starting with
    `<?xml version="1.0"?><stream:stream` or `<stream:stream` (xmpp_proto.cc
    DecodeInternal); otherwise the agent clears the connection."""
    text = header.decode()
    if not re.search(STREAMS_NS.replace(".", r"\.") + r"[\"'][\s]*>$", text):
        return False
    flat = text.replace("\n", "")
    return flat.startswith('<?xml version="1.0"?><stream:stream') or flat.startswith("<stream:stream")


class TfAgent(Agent):
    """An agent writing TF's own bytes: the stream open as pugixml prints it (no
    declaration, double quotes), stanzas with `format_default` (an XML declaration before
    each one, one element per line), route items with every XSD member (unset strings as
    empty elements)."""

    def __init__(self, port, name):  # pylint: disable=super-init-not-called
        import socket
        self.name = name
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""
        self.seq = 0
        self.send(f'<stream:stream from="{name}" to="{CONTROL_JID}" version="1.0" xml:lang="en" '
                  f'xmlns="jabber:client" xmlns:stream="{STREAMS_NS}" >')
        self.wait(STREAMS_NS.encode())
        self.wait(b">")
        end = self.buf.index(b">", self.buf.index(STREAMS_NS.encode())) + 1
        self.header = self.buf[:end]

    def stanza(self, body, to="bgp-peer", iq_id=None):
        id_attr = f' id="{iq_id}"' if iq_id else ""
        return (f'<?xml version="1.0"?>\n<iq type="set" from="{self.name}" to="{CONTROL_JID}/{to}"{id_attr}>\n'
                f'<pubsub xmlns="http://jabber.org/protocol/pubsub">\n{body}</pubsub>\n</iq>\n')

    def subscribe(self, vrf, instance_id):
        self.send(self.stanza(f'<subscribe node="{vrf}">\n<options>\n<instance-id>{instance_id}'
                              '</instance-id>\n</options>\n</subscribe>\n', iq_id=f"subscribe{instance_id}"))

    def subscribe_config(self, node):
        # ControllerSendCfgSubscribe: no id attribute
        self.send(self.stanza(f'<subscribe node="{node}" />\n', to="config"))

    def publish_raw(self, node, collection, entry, op="associate"):
        self.seq += 1
        self.send(self.stanza(f'<publish node="{node}">\n<item>\n{entry}</item>\n</publish>\n',
                              iq_id=f"pubsub{self.seq}")
                  + self.stanza(f'<collection node="{collection}">\n<{op} node="{node}" />\n</collection>\n',
                                iq_id=f"collection{self.seq}"))

    def publish_inet(self, vrf, vn, ip, nh, label, op="associate"):
        entry = (f"<entry>\n<nlri>\n<af>1</af>\n<safi>1</safi>\n<address>{ip}/32</address>\n</nlri>\n"
                 f"<next-hops>\n<next-hop>\n<af>1</af>\n<address>{nh}</address>\n<mac>52:54:00:00:00:01</mac>\n"
                 f"<label>{label}</label>\n<vni>0</vni>\n<tunnel-encapsulation-list>\n"
                 "<tunnel-encapsulation>gre</tunnel-encapsulation>\n<tunnel-encapsulation>udp</tunnel-encapsulation>\n"
                 f"</tunnel-encapsulation-list>\n<virtual-network>{vn}</virtual-network>\n<tag-list />\n"
                 "</next-hop>\n</next-hops>\n<version>1</version>\n<virtual-network></virtual-network>\n"
                 '<mobility seqno="0" sticky="false" />\n<sequence-number>0</sequence-number>\n'
                 "<security-group-list />\n<community-tag-list />\n<local-preference>200</local-preference>\n"
                 "<med>0</med>\n<load-balance>\n<load-balance-fields />\n"
                 "<load-balance-decision>field-hash</load-balance-decision>\n</load-balance>\n"
                 "<sub-protocol>interface</sub-protocol>\n</entry>\n")
        self.publish_raw(f"1/1/{vrf}/{ip}/32", vrf, entry, op)

    def publish_bum(self, vrf, nh):
        # BuildEvpnMulticastMessage: the broadcast route, an address where the MAC would be
        entry = ("<entry>\n<nlri>\n<af>25</af>\n<safi>242</safi>\n<ethernet-tag>0</ethernet-tag>\n"
                 "<mac>ff:ff:ff:ff:ff:ff</mac>\n<address>0.0.0.0/32</address>\n<group></group>\n"
                 "<source></source>\n<flags>0</flags>\n</nlri>\n<next-hops>\n<next-hop>\n<af>1</af>\n"
                 f"<address>{nh}</address>\n<mac></mac>\n<label>4</label>\n<l3-label>0</l3-label>\n"
                 "<tunnel-encapsulation-list>\n<tunnel-encapsulation>gre</tunnel-encapsulation>\n"
                 "</tunnel-encapsulation-list>\n<tag-list />\n</next-hop>\n</next-hops>\n<olist />\n"
                 "<leaf-olist />\n<local-preference>100</local-preference>\n<med>0</med>\n"
                 "<replicator-address></replicator-address>\n<etree-leaf>false</etree-leaf>\n</entry>\n")
        self.publish_raw("25/242/255.255.255.255,0.0.0.0/32,255.255.255.255,0.0.0.0", vrf, entry)
        # ControllerSendMcastRouteCommon: SAFI 241 with the agent's multicast label block
        mcast = ("<entry>\n<nlri>\n<af>1</af>\n<safi>241</safi>\n<group>255.255.255.255</group>\n"
                 "<source>0.0.0.0</source>\n<source-label>0</source-label>\n<source-address></source-address>\n"
                 f"</nlri>\n<next-hops>\n<next-hop>\n<af>1</af>\n<address>{nh}</address>\n"
                 "<label>1048000-1048575</label>\n<tunnel-encapsulation-list>\n"
                 "<tunnel-encapsulation>gre</tunnel-encapsulation>\n<tunnel-encapsulation>udp</tunnel-encapsulation>\n"
                 "</tunnel-encapsulation-list>\n</next-hop>\n</next-hops>\n<olist />\n</entry>\n")
        self.publish_raw(f"1/241/{vrf}/255.255.255.255", vrf, mcast)


def messages(buf: bytes):
    """The `<message>` stanzas in what the control node sent."""
    return re.findall(rb"<message[ >].*?</message>", buf, re.S)


@pytest.fixture(scope="module")
def ctl(tmp_path_factory):
    yield from running_control(tmp_path_factory, "filament-tf-compat")


def counters(srv):
    return requests.get(srv.control_url + "/status", timeout=5).json()["counters"]


def test_tf_agent_handshake_routes_and_bum(ctl):
    post(ctl, "projects", "project", {"fq_name": ["default-domain", "ptf"], "parent_type": "domain"})
    vrf = make_vn(ctl, "ptf", "red", "10.31.1.0")
    vn = "default-domain:ptf:red"
    before = counters(ctl)
    a, b = TfAgent(ctl.xmpp_port, "tf-a"), TfAgent(ctl.xmpp_port, "tf-b")
    try:
        # the stream open we answer with passes the real agent's check
        assert tf_accepts_open(a.header), a.header
        assert b'id="++123"' in a.header and a.header.startswith(b"<stream:stream "), a.header
        a.subscribe(vrf, 2)
        b.subscribe(vrf, 3)
        a.publish_inet(vrf, vn, "10.31.1.3", "192.168.60.1", 21)
        a.publish_bum(vrf, "192.168.60.1")
        b.wait(b'<item id="10.31.1.3/32">', keepalive=True)
        # the origin VN came from the next hop, not the empty entry-level element
        item = b.buf[b.buf.index(b'<item id="10.31.1.3/32">'):]
        item = item[:item.index(b"</item>")]
        assert item.count(f"<virtual-network>{vn}</virtual-network>".encode()) == 2, item
        # the multicast (SAFI 241) route is ignored and counted; nobody was disconnected
        wait_for(lambda: counters(ctl)["unsupported_items"] - before.get("unsupported_items", 0) >= 1,
                 what="multicast route counted")
        after = counters(ctl)
        assert after["malformed"] == before["malformed"], after
        for x in (a, b):
            x.send(KEEPALIVE)
            assert x.pump(), f"{x.name} was disconnected"
            assert b"</stream:stream>" not in x.buf, x.buf[-500:]
        # the broadcast routes: once b has one too, each gets the other as its
        # ingress-replication list (an item with an <olist>, what the agent's
        # AddMulticastEvpnRoute reads)
        assert b"ff:ff:ff:ff:ff:ff" not in b.buf
        b.publish_bum(vrf, "192.168.60.2")
        for x, other in ((a, b"192.168.60.2"), (b, b"192.168.60.1")):
            x.wait(b'<item id="ff:ff:ff:ff:ff:ff,0.0.0.0/32">', keepalive=True)
            item = x.buf[x.buf.rindex(b'<item id="ff:ff:ff:ff:ff:ff,0.0.0.0/32">'):]
            item = item[:item.index(b"</item>")]
            assert b"<olist><next-hop><af>1</af><address>" + other + b"</address><label>4</label>" in item, item
        # End-of-RIB reaches both, in the form the agent parses as a <message>
        for x in (a, b):
            x.wait(b'<items node="0/0/EndOfRib"></items>', keepalive=True)
        # withdraw and re-add in one burst: no message mixes items and retracts (a real
        # agent keeps only the retracts of such a message)
        a.publish_inet(vrf, vn, "10.31.1.3", "192.168.60.1", 21, op="dissociate")
        a.publish_inet(vrf, vn, "10.31.1.4", "192.168.60.1", 22)
        b.wait(b'<item id="10.31.1.4/32">', keepalive=True)
        b.wait(b'<retract id="10.31.1.3/32"', keepalive=True)
        for m in messages(b.buf):
            assert not (b"<retract " in m and b"<item " in m), m
    finally:
        for x in (a, b):
            x.close()


def test_tf_agent_config_subscribe_and_link_attr_nodes(ctl):
    """ControllerSendCfgSubscribe / ControllerSendVmCfgSubscribe send no `id`; the
    virtual-router node is `virtual-router:default-global-system-config:<agent>`. A
    reference with an attribute arrives as TF's link-attr node (`attr(<a>,<b>)` with
    `<value>`, IFMapServerTable::LinkAttrKey), the only place a TF agent reads it from."""
    post(ctl, "projects", "project", {"fq_name": ["default-domain", "ptfc"], "parent_type": "domain"})
    make_vn(ctl, "ptfc", "blue", "10.32.1.0")
    vm = post(ctl, "virtual-machines", "virtual-machine", {"fq_name": ["vm-tf-1"]})
    post(ctl, "virtual-machine-interfaces", "virtual-machine-interface", {
        "fq_name": ["default-domain", "ptfc", "vm-tf-1-eth0"], "parent_type": "project",
        "virtual_network_refs": [{"to": ["default-domain", "ptfc", "blue"]}],
        "virtual_machine_refs": [{"to": ["vm-tf-1"]}]})
    post(ctl, "virtual-routers", "virtual-router", {
        "fq_name": ["default-global-system-config", "tf-cfg"], "parent_type": "global-system-config",
        "virtual_router_ip_address": "192.168.60.9", "virtual_machine_refs": [{"uuid": vm, "to": []}]})
    a = TfAgent(ctl.xmpp_port, "tf-cfg")
    try:
        a.subscribe_config("virtual-router:default-global-system-config:tf-cfg")
        a.wait(b'<node type="virtual-router"><name>default-global-system-config:tf-cfg</name>', keepalive=True)
        ipam = "default-domain:default-project:default-network-ipam"
        vn = "default-domain:ptfc:blue"
        attr = f'<node type="virtual-network-network-ipam"><name>attr({ipam},{vn})</name><value>'.encode()
        a.wait(attr, keepalive=True)
        node = a.buf[a.buf.index(attr):]
        node = node[:node.index(b"</node>")]
        assert b"<ipam-subnets>" in node and b"<ip-prefix>10.32.1.0</ip-prefix>" in node, node
        # the VMI's routing instance: also a link-attr node
        a.wait(b'<node type="virtual-machine-interface-routing-instance"><name>attr(', keepalive=True)
        # no link carries metadata content (TF's agent reads only the type)
        assert not re.search(rb'<metadata type="[^"]+">', a.buf), a.buf[-2000:]
        # the agent's IFMap parser (ifmap_agent_parser.cc) wants <name> as a node's first child
        # and the two <node>s first in a <link>
        for m in re.findall(rb"<link>.*?</link>", a.buf, re.S):
            assert re.match(rb"<link><node type=\"[^\"]+\"><name>[^<]*</name></node><node type=\"[^\"]+\"><name>", m), m
        for m in re.findall(rb"<node type=\"[^\"]+\">(<[^>]+>)", a.buf):
            assert m == b"<name>", m
        a.send(KEEPALIVE)
        assert a.pump() and b"</stream:stream>" not in a.buf
    finally:
        a.close()
        time.sleep(0.1)
