//! Arbitrary bytes from an XMPP agent into the control node core (tf-facts §2): never a
//! panic; whatever the bytes, a well-behaved agent on another connection keeps its session
//! and its routes.
#![no_main]

use std::time::Duration;

use filament_control::{ControlNode, Input, NodeConfig, Output};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut n = ControlNode::new(NodeConfig::default());
    let t = Duration::from_millis(1);
    n.step(t, Input::Accepted { conn: 1, remote: "127.0.0.1".into() });
    n.step(t, Input::Accepted { conn: 2, remote: "127.0.0.2".into() });
    let good = "<?xml version='1.0'?><stream:stream from='good' to='network-control@contrailsystems.com' version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' >";
    n.step(t, Input::Bytes { conn: 2, data: good.as_bytes().to_vec() });
    for chunk in data.chunks(97) {
        n.step(t, Input::Bytes { conn: 1, data: chunk.to_vec() });
    }
    let outs = n.step(t, Input::Tick);
    // A stream opened as the same agent replaces the older session, as in TF: only an
    // input that never names it must leave that session alone.
    let names_good = data.windows(4).any(|w| w == b"good");
    assert!(names_good || !outs.iter().any(|o| matches!(o, Output::Close { conn: 2 })));
});
