//! Any request body, for any resource type and any operation, must give a
//! result or a 4xx error: never a panic.
#![no_main]

use filament_config::{ConfigDb, Ctx};
use filament_schema::index;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(rest) else { return };
    let types = index().resources();
    let ty = &types[sel as usize % types.len()];
    let mut db = ConfigDb::new();
    let mut gen = filament_config::seq_uuids();
    let mut ctx = Ctx::new("2026-01-01T00:00:00.000000", &mut gen);
    if let Ok(t) = db.bootstrap(&mut ctx) {
        db.apply(t);
    }
    let r = match sel % 5 {
        0 => db.create(ty, &body, &mut ctx).map(|(t, _)| t),
        1 => db.ref_update(&body, &mut ctx).map(|(t, _)| t),
        2 => db.prop_collection_update(&body, &ctx),
        3 => db.chmod(&body, &ctx),
        _ => db.useragent_kv(&body).map(|(t, _)| t),
    };
    match r {
        Ok(t) => db.apply(t),
        Err(e) => assert!((400..500).contains(&e.status())),
    }
});
