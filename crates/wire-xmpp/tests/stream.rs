//! Stream framing (tf-facts §2.1): split invariance, U+0200 keepalives, caps, garbage.
#![allow(clippy::unwrap_used)] // test helpers: a panic is a test failure

use filament_wire_xmpp::*;
use proptest::prelude::*;

const AGENT: &str = "compute-1";

fn session() -> (Vec<u8>, Vec<StreamEvent>) {
    let header = StreamHeader::agent_to_control(AGENT);
    let sub = SubscribeIq::routing(
        AGENT,
        1,
        SubscribeAction::Subscribe,
        "default-domain:admin:vn1:vn1",
        3,
    );
    let eor = EndOfRib::from_agent(AGENT);
    let publish = r#"<iq type="set" from="compute-1" to="network-control@contrailsystems.com/bgp-peer" id="pubsub2"><pubsub xmlns="http://jabber.org/protocol/pubsub"><publish node="1/1/default-domain:admin:vn1:vn1/10.1.1.252/32"><item><entry><nlri><af>1</af><safi>1</safi><address>10.1.1.252/32</address></nlri><next-hops><next-hop><af>1</af><address>192.168.0.11</address><label>25</label><virtual-network>a &amp; b &lt;c&gt; 'q' "d"</virtual-network></next-hop></next-hops><!-- c > d --><extra a="x>y">t<![CDATA[ <not-a-tag> ]]>u</extra></entry></item></publish></pubsub></iq>"#;
    let mut bytes = Vec::new();
    bytes.extend_from_slice(header.to_xml().as_bytes());
    bytes.extend_from_slice(b"\n  ");
    bytes.extend_from_slice(&stream::KEEPALIVE_BYTES);
    bytes.extend_from_slice(sub.to_xml().as_bytes());
    bytes.extend_from_slice(&stream::KEEPALIVE_BYTES);
    bytes.extend_from_slice(&stream::KEEPALIVE_BYTES);
    bytes.extend_from_slice(publish.as_bytes());
    bytes.extend_from_slice(b" <!-- between -->\r\n");
    bytes.extend_from_slice(eor.to_xml().as_bytes());
    bytes.extend_from_slice("<presence>\u{200}<x>caf\u{e9}</x></presence>".as_bytes());
    bytes.extend_from_slice(stream::STREAM_CLOSE.as_bytes());
    let events = vec![
        StreamEvent::Open(header),
        StreamEvent::Keepalive,
        StreamEvent::Stanza(sub.to_element()),
        StreamEvent::Keepalive,
        StreamEvent::Keepalive,
        StreamEvent::Stanza(Element::parse(publish).unwrap()),
        StreamEvent::Stanza(eor.to_element()),
        StreamEvent::Stanza(Element::parse("<presence><x>caf\u{e9}</x></presence>").unwrap()),
        StreamEvent::Close,
    ];
    (bytes, events)
}

fn run_chunks(chunks: &[&[u8]]) -> Result<Vec<StreamEvent>> {
    let mut p = StreamParser::new();
    let mut out = Vec::new();
    for c in chunks {
        p.feed(c)?;
        out.extend(p.drain_events()?);
    }
    Ok(out)
}

#[test]
fn whole_session_in_one_feed() {
    let (bytes, expected) = session();
    assert_eq!(run_chunks(&[&bytes]).unwrap(), expected);
}

#[test]
fn every_split_point_gives_same_events() {
    let (bytes, expected) = session();
    for i in 0..=bytes.len() {
        let (a, b) = bytes.split_at(i);
        assert_eq!(run_chunks(&[a, b]).unwrap(), expected, "split at {i}");
    }
}

#[test]
fn byte_by_byte_gives_same_events() {
    let (bytes, expected) = session();
    let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(run_chunks(&chunks).unwrap(), expected);
}

#[test]
fn typed_stanzas_from_the_stream() {
    let (bytes, _) = session();
    let evs = run_chunks(&[&bytes]).unwrap();
    let typed: Vec<Stanza> = evs
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Stanza(el) => Some(Stanza::parse(el).unwrap()),
            _ => None,
        })
        .collect();
    assert!(matches!(typed[0], Stanza::Subscribe(_)));
    let Stanza::Publish(p) = &typed[1] else {
        panic!()
    };
    let e = p.entry.as_deref().unwrap();
    assert_eq!(
        e.next_hops[0].virtual_network.as_deref(),
        Some(r#"a & b <c> 'q' "d""#)
    );
    assert_eq!(e.extra[0].text(), "t <not-a-tag> u");
    assert!(matches!(typed[2], Stanza::EndOfRib(_)));
    assert!(matches!(typed[3], Stanza::Other(_)));
}

#[test]
fn keepalive_only_and_partial_keepalive() {
    let mut p = StreamParser::new();
    p.feed(StreamHeader::control_to_agent(AGENT).to_xml().as_bytes())
        .unwrap();
    assert!(matches!(
        p.next_event().unwrap(),
        Some(StreamEvent::Open(_))
    ));
    p.feed(&[0xC8]).unwrap();
    assert_eq!(p.next_event().unwrap(), None);
    p.feed(&[0x80, 0xC8, 0x80, b' ']).unwrap();
    assert_eq!(
        p.drain_events().unwrap(),
        vec![StreamEvent::Keepalive, StreamEvent::Keepalive]
    );
    assert_eq!(p.buffered(), 0);
    assert!(p.is_open());
}

#[test]
fn incomplete_stanza_waits() {
    let mut p = StreamParser::new();
    p.feed(StreamHeader::agent_to_control(AGENT).to_xml().as_bytes())
        .unwrap();
    p.feed(b"<iq type='set'><pubsub><sub").unwrap();
    assert!(matches!(
        p.next_event().unwrap(),
        Some(StreamEvent::Open(_))
    ));
    assert_eq!(p.next_event().unwrap(), None);
    p.feed(b"scribe node='x'/></pubsub></iq>").unwrap();
    assert!(matches!(
        p.next_event().unwrap(),
        Some(StreamEvent::Stanza(_))
    ));
}

#[test]
fn self_closed_header_is_open_then_close() {
    let mut p = StreamParser::new();
    p.feed(b"<stream:stream from='a' to='b'/>").unwrap();
    let ev = p.drain_events().unwrap();
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[1], StreamEvent::Close);
    assert!(!p.is_open());
}

#[test]
fn oversized_stanza_is_an_error() {
    let big = format!("<message><body>{}</body></message>", "x".repeat(5000));
    // single feed
    let mut p = StreamParser::with_max_stanza(1024);
    p.feed(StreamHeader::agent_to_control(AGENT).to_xml().as_bytes())
        .unwrap();
    p.feed(big.as_bytes()).unwrap();
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Open(_)))));
    assert_eq!(
        p.next_event(),
        Err(XmppError::StanzaTooLarge { limit: 1024 })
    );
    assert_eq!(p.next_event(), Err(XmppError::Poisoned));
    assert_eq!(p.feed(b" "), Err(XmppError::Poisoned));
    // chunked, never completing: must fail once the cap is crossed, not buffer forever
    let mut p = StreamParser::with_max_stanza(1024);
    p.feed(StreamHeader::agent_to_control(AGENT).to_xml().as_bytes())
        .unwrap();
    p.drain_events().unwrap();
    p.feed(b"<message><body>").unwrap();
    let mut failed = false;
    for _ in 0..100 {
        p.feed(&[b'y'; 100]).unwrap();
        match p.drain_events() {
            Ok(ev) => assert!(ev.is_empty()),
            Err(e) => {
                assert_eq!(e, XmppError::StanzaTooLarge { limit: 1024 });
                failed = true;
                break;
            }
        }
    }
    assert!(failed);
    assert!(p.buffered() < 1024 + 200);
    // an oversized unterminated header / comment also fails
    let mut p = StreamParser::with_max_stanza(1024);
    p.feed(format!("<!--{}", "z".repeat(2000)).as_bytes())
        .unwrap();
    assert_eq!(
        p.next_event(),
        Err(XmppError::StanzaTooLarge { limit: 1024 })
    );
}

#[test]
fn buffer_full_when_not_drained() {
    let mut p = StreamParser::with_max_stanza(1024);
    let limit = p.buffer_limit();
    assert_eq!(
        p.feed(&vec![b' '; limit + 1]),
        Err(XmppError::BufferFull { limit })
    );
    p.feed(&vec![b' '; limit]).unwrap();
    assert_eq!(p.next_event(), Ok(None));
    assert_eq!(p.buffered(), 0);
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    let header = StreamHeader::agent_to_control(AGENT).to_xml();
    let cases: Vec<Vec<u8>> = vec![
        b"hello".to_vec(),
        b"<iq/>".to_vec(), // stanza before header
        b"<!DOCTYPE x><stream:stream>".to_vec(),
        [header.as_bytes(), b"text"].concat(),
        [header.as_bytes(), &[0xC8, 0x81]].concat(),
        [header.as_bytes(), &[0xFF, 0xFE]].concat(),
        [header.as_bytes(), b"<iq><a></b></iq>"].concat(),
        [header.as_bytes(), b"<iq>\xFF</iq>"].concat(),
        [header.as_bytes(), b"</iq>"].concat(),
        [header.as_bytes(), b"<![CDATA[x]]>"].concat(),
        [header.as_bytes(), b"<iq a='1' a='2'/>"].concat(),
        [header.as_bytes(), b"<iq>&nope;</iq>"].concat(),
        [header.as_bytes(), b"<1iq/>"].concat(),
        b"<stream:stream a=b>".to_vec(),
    ];
    for c in cases {
        let r = run_chunks(&[&c]);
        assert!(
            r.is_err(),
            "{:?} should fail, got {r:?}",
            String::from_utf8_lossy(&c)
        );
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut p = StreamParser::with_max_stanza(256);
        let header = StreamHeader::agent_to_control(AGENT).to_xml();
        let _ = p.feed(header.as_bytes());
        let _ = p.feed(&data);
        while let Ok(Some(ev)) = p.next_event() {
            if let StreamEvent::Stanza(e) = ev {
                let _ = Stanza::parse(&e);
            }
        }
    }

    #[test]
    fn random_chunking_is_invariant(cuts in proptest::collection::vec(0usize..2000, 0..12)) {
        let (bytes, expected) = session();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut last = 0;
        for c in cuts {
            chunks.push(&bytes[last..c]);
            last = c;
        }
        chunks.push(&bytes[last..]);
        prop_assert_eq!(run_chunks(&chunks).unwrap(), expected);
    }
}

#[test]
fn tls_negotiation_elements() {
    let f = stream::tls_features();
    assert!(xml_equivalent(
        &f.to_xml(),
        "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>"
    )
    .unwrap());
    assert!(xml_equivalent(
        &stream::starttls().to_xml(),
        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
    )
    .unwrap());
    assert!(xml_equivalent(
        &stream::proceed().to_xml(),
        "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
    )
    .unwrap());
    let mut p = StreamParser::new();
    p.feed(StreamHeader::control_to_agent(AGENT).to_xml().as_bytes())
        .unwrap();
    p.feed(f.to_xml().as_bytes()).unwrap();
    let ev = p.drain_events().unwrap();
    assert_eq!(ev[1], StreamEvent::Stanza(f));
}

/// A stanza whose tags, comment and CDATA grow over many reads (each resumed where the
/// last read's scan stopped, not rescanned from its `<`) gives the same stanza as in
/// one read, for reads of every size up to 64 bytes.
#[test]
fn tokens_growing_over_many_reads_resume_where_they_stopped() {
    let big = "v>'\"".repeat(20_000);
    let xml = format!(
        "<iq a=\"{q}\" b='{s}'><!-- {c} --><x y=\"1\"/><![CDATA[{c}]]></iq >",
        q = big.replace('"', "'"),
        s = big.replace('\'', "\""),
        c = big.replace("-->", "").replace("]]>", ""),
    );
    let header = StreamHeader::agent_to_control(AGENT);
    let mut bytes = header.to_xml().into_bytes();
    bytes.extend_from_slice(xml.as_bytes());
    let whole = run_chunks(&[&bytes]).unwrap();
    assert_eq!(whole.len(), 2, "{whole:?}");
    for size in [1usize, 2, 3, 7, 64, 4096] {
        let chunks: Vec<&[u8]> = bytes.chunks(size).collect();
        assert_eq!(run_chunks(&chunks).unwrap(), whole, "reads of {size}");
    }
}
