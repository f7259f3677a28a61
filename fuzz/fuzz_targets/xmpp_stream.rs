//! Arbitrary bytes into the XMPP `StreamParser` (tf-facts §2.1): never a panic; chunked and
//! one-shot feeding give the same events; every stanza re-emits to an equal tree, and every
//! typed stanza (STARTTLS elements included) re-emits to text that parses back to the same
//! typed value.
#![no_main]

use filament_wire_xmpp::{
    Element, Stanza, StreamEvent, StreamHeader, StreamParser, TlsNegotiation,
};
use libfuzzer_sys::fuzz_target;

fn run(data: &[u8], chunk: usize) -> (Vec<StreamEvent>, bool) {
    let mut p = StreamParser::with_max_stanza(8192);
    let mut events = Vec::new();
    for c in data.chunks(chunk.max(1)) {
        if p.feed(c).is_err() {
            return (events, true);
        }
        loop {
            match p.next_event() {
                Ok(Some(ev)) => events.push(ev),
                Ok(None) => break,
                Err(_) => return (events, true),
            }
        }
    }
    (events, false)
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let mut input = Vec::new();
    if sel & 0x80 != 0 {
        input.extend_from_slice(StreamHeader::agent_to_control("fuzz").to_xml().as_bytes());
    }
    input.extend_from_slice(rest);
    let chunk = usize::from(sel & 0x7f) + 1;
    // "whole" = as few feeds as the parser's buffer limit allows
    let (whole, whole_err) = run(&input, input.len().clamp(1, 64 * 1024));
    let (chunked, chunked_err) = run(&input, chunk);
    assert_eq!(whole, chunked, "split invariance");
    assert_eq!(whole_err, chunked_err);
    for ev in whole {
        match ev {
            StreamEvent::Stanza(e) => {
                let text = e.to_xml();
                assert_eq!(
                    Element::parse(&text).as_ref(),
                    Ok(&e),
                    "tree re-emit: {text}"
                );
                // STARTTLS elements (tls.rs) re-emit to the same negotiation step
                if let Some(t) = TlsNegotiation::from_element(&e) {
                    let again = Element::parse(&t.to_xml()).ok();
                    assert_eq!(
                        again.as_ref().and_then(TlsNegotiation::from_element),
                        Some(t),
                        "tls re-emit"
                    );
                }
                if let Ok(s) = Stanza::parse(&e) {
                    let again = s.to_xml();
                    assert_eq!(
                        Stanza::parse_str(&again).as_ref(),
                        Ok(&s),
                        "typed re-emit: {again}"
                    );
                }
            }
            StreamEvent::Open(h) => {
                let mut p = StreamParser::new();
                let _ = p.feed(h.to_xml().as_bytes());
                assert_eq!(p.next_event(), Ok(Some(StreamEvent::Open(h))));
            }
            StreamEvent::Keepalive | StreamEvent::Close => {}
        }
    }
});
