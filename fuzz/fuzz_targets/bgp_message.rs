//! `Message::decode` on arbitrary bytes, with both 2- and 4-octet AS
//! contexts (and the other options varied by the first input byte), must
//! never panic; whatever decodes must re-encode and decode to the same value.
#![no_main]

use filament_wire_bgp::{DecodeCtx, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    for four_octet_as in [false, true] {
        let ctx = DecodeCtx {
            four_octet_as,
            extended_message: sel & 1 != 0,
            rfc7606: sel & 2 != 0,
        };
        let Ok((msg, used)) = Message::decode(rest, &ctx) else {
            continue;
        };
        assert!(used <= rest.len());
        let mut out = Vec::new();
        // Encoding can legitimately fail only on length limits; a decoded
        // message never grows past them.
        msg.encode(&ctx, &mut out)
            .expect("re-encode of a decoded message");
        let (again, used2) = Message::decode(&out, &ctx).expect("decode of re-encoded message");
        assert_eq!(used2, out.len());
        assert_eq!(again, msg);
    }
});
