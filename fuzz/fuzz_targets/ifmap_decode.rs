//! Fuzz the IFMap config decoder (tf-facts §2.6): arbitrary bytes as a config iq, applied to
//! a graph; every object read back must re-encode without panicking.
#![no_main]

use filament_ifmap::{encode_object, IfmapGraph};
use filament_wire_xmpp::{Element, Stanza};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(el) = Element::parse_bytes(data) else { return };
    let Ok(Stanza::Config(iq)) = Stanza::parse(&el) else { return };
    let mut g = IfmapGraph::new();
    let Ok(keys) = g.apply(&iq) else { return };
    for (ty, name) in keys {
        if let Some(obj) = g.object(&ty, &name) {
            if let Some(m) = obj.as_object() {
                let _ = encode_object(&ty, m);
            }
        }
    }
});
