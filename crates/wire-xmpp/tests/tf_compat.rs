//! Compatibility with the bytes a real Tungsten Fabric vRouter agent writes and reads
//! (tf-facts §2; docs/tf-agent-compat.md).
//!
//! The agent-side messages below are written out by hand in the shape TF's code produces
//! (nothing is copied from TF; the iq envelope and the encapsulation list, the same in
//! every message, are written once): stanzas are pugixml documents printed with
//! `pugi::format_default` (`controller_peer.cc`: `pugi->doc().print(*xml_writer, "",
//! pugi::format_default, …)`), so each one starts with `<?xml version="1.0"?>` and has one
//! element per line; route items are encoded by the generated `Encode` of the XSD types,
//! which writes every member, set or not (contrail-generateDS `type_parser.py`), so unset
//! strings arrive as empty elements and unset numbers as `0`.

#![allow(clippy::unwrap_used)]

use filament_wire_xmpp::stream::{KEEPALIVE_BYTES, NS_STREAM};
use filament_wire_xmpp::*;

/// The agent's stream open: `XmppProto::EncodeOpen` prints the `sXMPP_STREAM_OPEN` template
/// with pugixml `PrintDoc` (`format_raw | format_no_declaration`, `xml_pugi.cc`) and
/// replaces the last `/` by a space.
const AGENT_OPEN: &str = "<stream:stream from=\"compute-1\" to=\"network-control@contrailsystems.com\" \
    version=\"1.0\" xml:lang=\"en\" xmlns=\"jabber:client\" xmlns:stream=\"http://etherx.jabber.org/streams\" >";

/// An iq from the agent as pugixml `format_default` prints it (declaration, one element
/// a line), around `body`, the lines inside `<pubsub>`.
fn agent_iq(id: &str, body: &str) -> String {
    format!(
        r#"<?xml version="1.0"?>
<iq type="set" from="compute-1" to="network-control@contrailsystems.com/bgp-peer" id="{id}">
<pubsub xmlns="http://jabber.org/protocol/pubsub">
{body}</pubsub>
</iq>
"#
    )
}

/// A publish of one item at `node` around `entry`, the lines inside `<entry>`.
fn agent_publish(id: &str, node: &str, entry: &str) -> String {
    agent_iq(
        id,
        &format!(
            "<publish node=\"{node}\">\n<item>\n<entry>\n{entry}</entry>\n</item>\n</publish>\n"
        ),
    )
}

/// The encapsulations of a next hop from an agent with both MPLS encapsulations configured.
const GRE_UDP: &str = r#"<tunnel-encapsulation-list>
<tunnel-encapsulation>gre</tunnel-encapsulation>
<tunnel-encapsulation>udp</tunnel-encapsulation>
</tunnel-encapsulation-list>
"#;

/// `ControllerSendSubscribe`: `<options>` then `<instance-id>` added as its child.
fn subscribe() -> String {
    agent_iq(
        "subscribe0",
        r#"<subscribe node="default-domain:admin:vn1:vn1">
<options>
<instance-id>2</instance-id>
</options>
</subscribe>
"#,
    )
}

/// `ControllerSendV4V6UnicastRouteCommon`: one next hop per VN, encaps from the bitmap,
/// the vhost MAC, an empty entry-level `virtual-network` (never set by the agent), the
/// path preference as local-preference and sequence-number, `med` 0, load-balance decision;
/// then the collection that associates the item with the VRF.
fn publish_inet() -> String {
    let node = "1/1/default-domain:admin:vn1:vn1/10.1.1.3/32";
    let entry = format!(
        r#"<nlri>
<af>1</af>
<safi>1</safi>
<address>10.1.1.3/32</address>
</nlri>
<next-hops>
<next-hop>
<af>1</af>
<address>192.168.0.1</address>
<mac>52:54:00:aa:bb:cc</mac>
<label>25</label>
<vni>0</vni>
{GRE_UDP}<virtual-network>default-domain:admin:vn1</virtual-network>
<tag-list />
</next-hop>
</next-hops>
<version>1</version>
<virtual-network></virtual-network>
<mobility seqno="0" sticky="false" />
<sequence-number>0</sequence-number>
<security-group-list>
<security-group>8000001</security-group>
</security-group-list>
<community-tag-list />
<local-preference>200</local-preference>
<med>0</med>
<load-balance>
<load-balance-fields />
<load-balance-decision>field-hash</load-balance-decision>
</load-balance>
<sub-protocol>interface</sub-protocol>
"#
    );
    let collection = format!(
        "<collection node=\"default-domain:admin:vn1:vn1\">\n<associate node=\"{node}\" />\n\
         </collection>\n"
    );
    agent_publish("pubsub3", node, &entry) + &agent_iq("collection3", &collection)
}

/// `BuildEvpnMulticastMessage` (no assisted replication) for the broadcast route: the node
/// has the route's address string (255.255.255.255) where a unicast key has the MAC.
fn publish_evpn_bum() -> String {
    let entry = format!(
        r#"<nlri>
<af>25</af>
<safi>242</safi>
<ethernet-tag>0</ethernet-tag>
<mac>ff:ff:ff:ff:ff:ff</mac>
<address>0.0.0.0/32</address>
<group></group>
<source></source>
<flags>0</flags>
</nlri>
<next-hops>
<next-hop>
<af>1</af>
<address>192.168.0.1</address>
<mac></mac>
<label>4</label>
<l3-label>0</l3-label>
{GRE_UDP}<tag-list />
</next-hop>
</next-hops>
<version>0</version>
<virtual-network></virtual-network>
<olist />
<leaf-olist />
<local-preference>100</local-preference>
<med>0</med>
<edge-replication-not-supported>false</edge-replication-not-supported>
<assisted-replication-supported>false</assisted-replication-supported>
<replicator-address></replicator-address>
<etree-leaf>false</etree-leaf>
"#
    );
    agent_publish(
        "pubsub_l27",
        "25/242/255.255.255.255,0.0.0.0/32,255.255.255.255,0.0.0.0",
        &entry,
    )
}

/// `ControllerSendMcastRouteCommon`: SAFI 241, the label is the agent's label block.
fn publish_mcast() -> String {
    let entry = format!(
        r#"<nlri>
<af>1</af>
<safi>241</safi>
<group>255.255.255.255</group>
<source>0.0.0.0</source>
<source-label>0</source-label>
<source-address></source-address>
</nlri>
<next-hops>
<next-hop>
<af>1</af>
<address>192.168.0.1</address>
<label>1048000-1048575</label>
{GRE_UDP}</next-hop>
</next-hops>
<olist />
"#
    );
    agent_publish(
        "pubsub_b0",
        "1/241/default-domain:admin:vn1:vn1/255.255.255.255",
        &entry,
    )
}

fn arr<const N: usize>(v: Vec<Stanza>) -> [Stanza; N] {
    v.try_into().unwrap()
}

/// The stanzas of `bytes`, behind the agent's stream open unless they bring their own.
fn stanzas(bytes: &[u8]) -> Vec<Stanza> {
    let mut p = StreamParser::new();
    if !bytes.starts_with(b"<stream:stream") {
        p.feed(AGENT_OPEN.as_bytes()).unwrap();
    }
    p.feed(bytes).unwrap();
    p.drain_events()
        .unwrap()
        .into_iter()
        .filter_map(|ev| match ev {
            StreamEvent::Stanza(e) => Some(Stanza::parse(&e).unwrap()),
            _ => None,
        })
        .collect()
}

#[test]
fn the_agent_stream_is_read_with_or_without_declarations() {
    let mut bytes = AGENT_OPEN.as_bytes().to_vec();
    bytes.extend_from_slice(&KEEPALIVE_BYTES);
    bytes.extend_from_slice(subscribe().as_bytes());
    bytes.extend_from_slice(&KEEPALIVE_BYTES);
    bytes.extend_from_slice(publish_inet().as_bytes());
    let mut p = StreamParser::new();
    p.feed(&bytes).unwrap();
    let evs = p.drain_events().unwrap();
    let StreamEvent::Open(h) = &evs[0] else {
        panic!("{evs:?}")
    };
    assert_eq!(h.from.as_deref(), Some("compute-1"));
    assert_eq!(h.to.as_deref(), Some(stream::CONTROL_JID));
    let kinds: Vec<&str> = evs[1..]
        .iter()
        .map(|e| match e {
            StreamEvent::Keepalive => "keepalive",
            StreamEvent::Stanza(_) => "stanza",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        ["keepalive", "stanza", "keepalive", "stanza", "stanza"]
    );
    // an older agent's header, with a declaration, is read the same way
    let mut p = StreamParser::new();
    p.feed(format!("<?xml version=\"1.0\"?>\n{AGENT_OPEN}\n").as_bytes())
        .unwrap();
    assert_eq!(
        p.drain_events().unwrap(),
        vec![StreamEvent::Open(h.clone())]
    );
}

/// What a TF agent does with the stream open we send (`xmpp_proto.cc`
/// `XmppProto::DecodeInternal`, the `sXMPP_STREAM_O` branch, and `xmpp_session.cc`
/// `XmppSession::Match`), redone here: frame it by `rXMPP_STREAM_END`, remove newlines,
/// require `sXMPP_STREAM_START` or `sXMPP_STREAM_START_S` at the start, turn the last `>`
/// into `/>` and load it as a document.  A header that fails makes the agent clear the
/// connection (`XmppConnection::XmppDecode` → `Clear()`).
fn tf_agent_accepts_open(bytes: &str) -> bool {
    let end = format!("{NS_STREAM}\" >");
    let end_sq = format!("{NS_STREAM}' >");
    if !(bytes.ends_with(&end) || bytes.ends_with(&end_sq)) {
        return false;
    }
    let t: String = bytes.chars().filter(|&c| c != '\n').collect();
    if !(t.starts_with("<?xml version=\"1.0\"?><stream:stream") || t.starts_with("<stream:stream"))
    {
        return false;
    }
    let Some(gt) = t.rfind('>') else { return false };
    let doc = format!("{}/>", &t[..gt]);
    Element::parse(&doc).is_ok_and(|e| e.name == "stream:stream")
}

#[test]
fn our_stream_open_passes_the_tf_agent_check() {
    let ours = StreamHeader::control_to_agent("compute-1").to_xml();
    assert!(tf_agent_accepts_open(&ours), "{ours}");
    // the agent-side header we write (filament agent) passes TF's server check, the same code
    assert!(tf_agent_accepts_open(
        &StreamHeader::agent_to_control("compute-1").to_xml()
    ));
    // the checker is not a rubber stamp: the single-quoted declaration we used to send fails
    let old = "<?xml version='1.0'?><stream:stream from='network-control@contrailsystems.com' \
        to='compute-1' id='++123' version='1.0' xml:lang='en' xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams' >";
    assert!(!tf_agent_accepts_open(old));
    assert!(tf_agent_accepts_open(AGENT_OPEN));
}

#[test]
fn subscribe_as_the_agent_sends_it() {
    let [Stanza::Subscribe(s)] = arr(stanzas(subscribe().as_bytes())) else {
        panic!()
    };
    assert_eq!(s.action, SubscribeAction::Subscribe);
    assert_eq!(s.node, "default-domain:admin:vn1:vn1");
    assert_eq!(s.instance_id, Some(2));
    assert_eq!(s.env.id.as_deref(), Some("subscribe0"));
}

#[test]
fn inet_item_with_every_field_the_agent_writes() {
    let [Stanza::Publish(p), Stanza::Collection(c)] = arr(stanzas(publish_inet().as_bytes()))
    else {
        panic!()
    };
    assert_eq!(c.node, p.node);
    assert_eq!(c.op, CollectionOp::Associate);
    let e = p.entry.unwrap();
    assert_eq!(e.nlri.address.as_deref(), Some("10.1.1.3/32"));
    // the empty entry-level <virtual-network></virtual-network> is "unset", so the next
    // hop's VN is the origin VN (it used to read as Some(""))
    assert_eq!(e.virtual_network, None);
    let nh = &e.next_hops[0];
    assert_eq!(
        nh.virtual_network.as_deref(),
        Some("default-domain:admin:vn1")
    );
    assert_eq!(nh.label, Some(NhLabel::Value(25)));
    assert_eq!(nh.vni, Some(0));
    assert_eq!(nh.mac.as_deref(), Some("52:54:00:aa:bb:cc"));
    assert_eq!(
        nh.tunnel_encapsulation,
        vec![TunnelEncap::Gre, TunnelEncap::Udp]
    );
    assert!(nh.tag_list.is_empty());
    assert_eq!(
        e.mobility,
        Some(Mobility {
            seqno: 0,
            sticky: false
        })
    );
    assert_eq!(e.security_groups, vec![8_000_001]);
    assert!(e.community_tags.is_empty());
    assert_eq!(e.local_preference, Some(200));
    assert_eq!(e.med, Some(0));
    assert_eq!(
        e.load_balance.as_ref().and_then(|l| l.decision.as_deref()),
        Some("field-hash")
    );
    assert_eq!(e.sub_protocol.as_deref(), Some("interface"));
}

#[test]
fn evpn_broadcast_and_multicast_publishes_parse() {
    let [Stanza::Publish(bum)] = arr(stanzas(publish_evpn_bum().as_bytes())) else {
        panic!()
    };
    assert_eq!(
        bum.node,
        RouteNode::Other {
            afi: 25,
            safi: 242,
            rest: "255.255.255.255,0.0.0.0/32,255.255.255.255,0.0.0.0".into()
        }
    );
    let e = bum.entry.unwrap();
    assert_eq!(e.nlri.mac.as_deref(), Some("ff:ff:ff:ff:ff:ff"));
    assert_eq!(e.nlri.group, None);
    assert_eq!(e.next_hops[0].mac, None);
    assert_eq!(e.next_hops[0].l3_label, Some(0));
    let [Stanza::Publish(m)] = arr(stanzas(publish_mcast().as_bytes())) else {
        panic!()
    };
    assert_eq!(m.node.family(), (1, 241));
    let e = m.entry.unwrap();
    assert_eq!(
        e.next_hops[0].label,
        Some(NhLabel::Range(1_048_000, 1_048_575))
    );
    assert_eq!(e.nlri.source_address, None);
}

/// A message from the control node holds items or retracts, never both (see push.rs), and
/// the parser reads either kind as TF's control node writes it: leading whitespace, the
/// `<retract id="…" />` with a space before `/>` (`xmpp_message_builder.cc` AddIpUnreach).
#[test]
fn retract_message_as_tf_writes_it() {
    let msg = "\n<message from=\"network-control@contrailsystems.com\" to=\"compute-1/bgp-peer\">\
        \n\t<event xmlns=\"http://jabber.org/protocol/pubsub\">\n\t\t<items node=\"1/1/vrf1\">\n\
        \t\t\t<retract id=\"10.1.1.9/32\" />\n\t\t</items>\n\t</event>\n</message>\n";
    let mut bytes = StreamHeader::control_to_agent("compute-1")
        .to_xml()
        .into_bytes();
    bytes.extend_from_slice(msg.as_bytes());
    let [Stanza::RouteUpdate(u)] = arr(stanzas(&bytes)) else {
        panic!()
    };
    assert_eq!(
        u.items,
        vec![PushedItem::Retract {
            id: "10.1.1.9/32".into()
        }]
    );
}
