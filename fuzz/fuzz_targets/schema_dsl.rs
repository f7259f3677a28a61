//! The schema language parser rejects any text cleanly.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = filament_schema::dsl::parse(s);
    }
});
