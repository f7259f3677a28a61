//! Arbitrary bytes from an XMPP agent into a control node that requires TLS (TF's
//! `xmpp_auth_enable`; docs/tf-agent-compat.md "XMPP over TLS"): the STARTTLS steps in the
//! session core (`session.rs`) never panic, whatever arrives in which state and however the
//! shell reports the handshake; a well-behaved agent on another connection, through its
//! STARTTLS and TLS, keeps its session.
#![no_main]

use std::time::Duration;

use filament_control::{ControlNode, Input, NodeConfig, Output};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let mut n = ControlNode::new(NodeConfig::default());
    n.set_xmpp_tls(true);
    let t = Duration::from_millis(1);
    let header = |name: &str| {
        format!(
            "<stream:stream from=\"{name}\" to=\"network-control@contrailsystems.com\" version=\"1.0\" \
             xml:lang=\"en\" xmlns=\"jabber:client\" xmlns:stream=\"http://etherx.jabber.org/streams\" >"
        )
        .into_bytes()
    };
    let starttls = b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>".to_vec();
    n.step(t, Input::Accepted { conn: 1, remote: "127.0.0.1".into() });
    n.step(t, Input::Accepted { conn: 2, remote: "127.0.0.2".into() });
    // the good agent: header, <starttls/>, handshake, header again
    n.step(t, Input::Bytes { conn: 2, data: header("good") });
    let outs = n.step(t, Input::Bytes { conn: 2, data: starttls.clone() });
    assert!(outs.iter().any(|o| matches!(o, Output::StartTls { conn: 2 })));
    n.step(t, Input::TlsDone { conn: 2, error: None });
    n.step(t, Input::Bytes { conn: 2, data: header("good") });
    // the fuzzed one: optionally its header and <starttls/> first, then the bytes, with the
    // handshake reported (as success or failure) somewhere in between
    if sel & 1 != 0 {
        n.step(t, Input::Bytes { conn: 1, data: header("fuzz") });
    }
    if sel & 2 != 0 {
        n.step(t, Input::Bytes { conn: 1, data: starttls });
    }
    let at = usize::from(sel >> 2) % (rest.chunks(61).count() + 1);
    for (i, chunk) in rest.chunks(61).enumerate() {
        if i == at {
            let error = (sel & 0x80 != 0).then(|| "fuzzed failure".to_string());
            n.step(t, Input::TlsDone { conn: 1, error });
        }
        n.step(t, Input::Bytes { conn: 1, data: chunk.to_vec() });
    }
    let outs = n.step(t, Input::Tick);
    let names_good = data.windows(4).any(|w| w == b"good");
    assert!(names_good || !outs.iter().any(|o| matches!(o, Output::Close { conn: 2 })));
});
