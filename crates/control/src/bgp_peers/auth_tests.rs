//! Unit tests of the MD5 key choice (TF's `MakeBgpNeighborConfig`: session attributes,
//! else this node's own `auth_data`) and of bad `auth_data`.

use super::*;

const SECRET: &str = "s3cr3t-key";

fn router(uuid: &str, name: &str, params: Value, refs: Value) -> filament_config::StoredObj {
    let mut fq: Vec<String> = FABRIC_RI.iter().map(|s| s.to_string()).collect();
    fq.push(name.into());
    serde_json::from_value(
        json!({"type": "bgp-router", "uuid": uuid, "fq_name": fq, "seq": 1,
        "props": {"bgp_router_parameters": params}, "refs": {"bgp_router_refs": refs}}),
    )
    .unwrap()
}

fn md5(key: &str) -> Value {
    json!({"key_type": "md5", "key_items": [{"key_id": 0, "key": key}]})
}

fn key_of(bc: &BgpConfig, addr: &str) -> Option<Vec<u8>> {
    let p = bc
        .peers
        .iter()
        .find(|p| p.address.to_string() == addr)
        .unwrap();
    p.md5_key.as_ref().map(|k| k.as_bytes().to_vec())
}

#[test]
fn auth_data_values() {
    let ok = |v: Value| auth_key(Some(&v)).map(|k| k.map(|k| k.as_bytes().to_vec()));
    assert_eq!(auth_key(None), Ok(None));
    assert_eq!(ok(Value::Null), Ok(None));
    assert_eq!(
        ok(json!({"key_type": "md5", "key_items": []})),
        Ok(None),
        "no items: no key"
    );
    assert_eq!(ok(md5("abc")), Ok(Some(b"abc".to_vec())));
    // TF compares the type without case and uses the first item.
    let two = json!({"key_type": "MD5", "key_items": [{"key_id": 0, "key": "one"}, {"key_id": 1, "key": "two"}]});
    assert_eq!(ok(two), Ok(Some(b"one".to_vec())));
    let sha = json!({"key_type": "sha1", "key_items": [{"key_id": 0, "key": "abc"}]});
    assert_eq!(ok(sha), Err(AuthDataError::KeyType("sha1".into())));
    let untyped = json!({"key_items": [{"key_id": 0, "key": "abc"}]});
    assert_eq!(ok(untyped), Err(AuthDataError::KeyType(String::new())));
    assert_eq!(
        ok(json!({"key_type": "md5", "key_items": [{"key_id": 0}]})),
        Err(AuthDataError::NoKey)
    );
    assert_eq!(
        ok(md5("")),
        Err(AuthDataError::Key(filament_bgp::Md5KeyError::Empty))
    );
    let long = "k".repeat(81);
    let e = ok(md5(&long)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "auth_data key_items[0]: the MD5 key is 81 bytes, longer than 80 (TCP_MD5SIG_MAXKEYLEN)"
    );
    assert_eq!(ok(md5(&long[..80])).unwrap().unwrap().len(), 80);
}

/// The key of a session is this node's own `auth_data` unless the peering's session
/// attributes carry one (for both ends, or for this node); the peer's own `auth_data` is
/// not used, as in TF. A bad `auth_data` keeps only that peer down, with the reason.
#[test]
fn keys_come_from_the_session_else_this_node() {
    let mut g = ConfigGraph::new();
    let node = |auth: Value| {
        json!({"address": "10.0.0.1", "identifier": "10.0.0.1", "autonomous_system": 64512,
            "router_type": "control-node", "auth_data": auth})
    };
    let peer = |addr: &str, auth: Value| json!({"address": addr, "autonomous_system": 65001, "auth_data": auth});
    let session = |router: &str, auth: Value| json!([{"uuid": "u-cn1", "attr": {"session": [{"attributes": [{"bgp_router": router, "auth_data": auth}]}]}}]);
    g.apply(
        "u-cn1",
        Some(router("u-cn1", "cn1", node(Value::Null), json!([]))),
    );
    g.apply(
        "u-a",
        Some(router(
            "u-a",
            "a",
            peer("10.0.0.2", md5("theirs")),
            json!([{"uuid": "u-cn1", "attr": {}}]),
        )),
    );
    g.apply(
        "u-b",
        Some(router(
            "u-b",
            "b",
            peer("10.0.0.3", Value::Null),
            session("", md5("both-ends")),
        )),
    );
    g.apply(
        "u-c",
        Some(router(
            "u-c",
            "c",
            peer("10.0.0.4", Value::Null),
            session("cn1", md5("for-cn1")),
        )),
    );
    g.apply(
        "u-d",
        Some(router(
            "u-d",
            "d",
            peer("10.0.0.5", Value::Null),
            session("d", md5("for-d")),
        )),
    );
    let bc = bgp_config(&g, "cn1");
    assert_eq!(
        key_of(&bc, "10.0.0.2"),
        None,
        "the peer's own auth_data is not used"
    );
    assert_eq!(key_of(&bc, "10.0.0.3"), Some(b"both-ends".to_vec()));
    assert_eq!(key_of(&bc, "10.0.0.4"), Some(b"for-cn1".to_vec()));
    assert_eq!(
        key_of(&bc, "10.0.0.5"),
        None,
        "attributes for the other end only"
    );
    assert!(bc.errors.is_empty(), "{:?}", bc.errors);
    // The session attributes of a ref from this node to the peer count the same way.
    let e_sess = json!([{"uuid": "u-e", "attr": {"session": [{"attributes": [{"auth_data": md5("to-e")}]}]}}]);
    g.apply(
        "u-e",
        Some(router("u-e", "e", peer("10.0.0.6", Value::Null), json!([]))),
    );
    g.apply(
        "u-cn1",
        Some(router("u-cn1", "cn1", node(Value::Null), e_sess)),
    );
    let bc = bgp_config(&g, "cn1");
    assert_eq!(key_of(&bc, "10.0.0.6"), Some(b"to-e".to_vec()));
    assert_eq!(key_of(&bc, "10.0.0.2"), None);

    // This node's auth_data keys every peering without session attributes of its own.
    g.apply(
        "u-cn1",
        Some(router("u-cn1", "cn1", node(md5(SECRET)), json!([]))),
    );
    let bc = bgp_config(&g, "cn1");
    assert_eq!(key_of(&bc, "10.0.0.2"), Some(SECRET.as_bytes().to_vec()));
    assert_eq!(key_of(&bc, "10.0.0.3"), Some(b"both-ends".to_vec()));
    assert_eq!(key_of(&bc, "10.0.0.5"), Some(SECRET.as_bytes().to_vec()));
    assert!(
        !format!("{bc:?}").contains(SECRET),
        "the key leaks through Debug"
    );

    // A bad session auth_data: that peer is down with the reason, the others are not.
    let sha = json!({"key_type": "sha1", "key_items": [{"key_id": 0, "key": "x"}]});
    g.apply(
        "u-b",
        Some(router(
            "u-b",
            "b",
            peer("10.0.0.3", Value::Null),
            session("", sha),
        )),
    );
    let bc = bgp_config(&g, "cn1");
    let b = bc
        .peers
        .iter()
        .find(|p| p.address.to_string() == "10.0.0.3")
        .unwrap();
    assert!(b.admin_down && b.md5_key.is_none(), "{b:?}");
    assert_eq!(bc.errors.len(), 1);
    assert!(
        bc.errors[&b.address].contains("key_type \"sha1\""),
        "{:?}",
        bc.errors
    );
    assert!(bc
        .peers
        .iter()
        .filter(|p| p.address != b.address)
        .all(|p| !p.admin_down && p.md5_key.is_some()));

    // ... and the rows of `neighbors` say why, and "md5" (never the key) for keyed peers.
    let peers: BTreeMap<IpAddr, PeerConfig> =
        bc.peers.iter().map(|p| (p.address, p.clone())).collect();
    let mut rows = json!([{"peer": "10.0.0.2", "last_reason": null}, {"peer": "10.0.0.3", "last_reason": null}]);
    annotate(&mut rows, &peers, &bc.errors);
    assert_eq!(rows[0]["auth"], "md5");
    assert_eq!(rows[0]["auth_type"], "MD5");
    assert_eq!(rows[1]["auth"], Value::Null);
    assert_eq!(rows[1]["auth_type"], "NIL");
    assert!(
        rows[1]["last_reason"].as_str().unwrap().contains("sha1"),
        "{rows}"
    );
    assert!(!rows.to_string().contains(SECRET));
}
