//! Validation of any JSON against any schema type never panics.
#![no_main]

use filament_schema::{index, validate, Ty};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(rest) else { return };
    let n = index().structs().len();
    let _ = validate(&Ty::Struct(sel as usize % n), &v, "");
    let _ = filament_config::parse_filters(&String::from_utf8_lossy(rest));
});
