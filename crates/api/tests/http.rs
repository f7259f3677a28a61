//! Handler tests: the router over an in-memory store, driven request by

#![allow(clippy::unwrap_used)]
//! request (no socket). Status codes and bodies are what `vnc_api` expects.

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::http::{header, Request, StatusCode};
use axum::Router;
use filament_api::{routes::router, ApiState};
use filament_store::{MemStore, Store};
use serde_json::{json, Value};
use tower::ServiceExt;

fn app() -> (Router, Arc<ApiState>, Arc<dyn Store>) {
    let store: Arc<dyn Store> = Arc::new(MemStore::new());
    let state = ApiState::open(store.clone()).unwrap();
    (router(state.clone()), state, store)
}

async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, String, axum::http::HeaderMap) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "h:8082");
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json; charset=\"UTF-8\"");
    }
    let req = req
        .body(body.map_or(Body::empty(), |b| Body::from(b.to_string())))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (
        status,
        String::from_utf8_lossy(&bytes).into_owned(),
        headers,
    )
}

fn js(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

async fn project(app: &Router, name: &str) -> String {
    let (st, body, _) = call(app, "POST", "/projects",
        Some(json!({"project": {"fq_name": ["default-domain", name], "parent_type": "domain", "uuid": null}}))).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    js(&body)["project"]["uuid"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn homepage_links_every_type_and_action() {
    let (app, _, _) = app();
    let (st, body, _) = call(&app, "GET", "/", None).await;
    assert_eq!(st, StatusCode::OK);
    let v = js(&body);
    assert_eq!(v["href"], "http://h:8082");
    let links = v["links"].as_array().unwrap();
    let has = |rel: &str, name: &str, href: &str| {
        links.iter().any(|l| {
            l["link"]["rel"] == rel && l["link"]["name"] == name && l["link"]["href"] == href
        })
    };
    assert!(has(
        "collection",
        "virtual-network",
        "http://h:8082/virtual-networks"
    ));
    assert!(has(
        "resource-base",
        "virtual-network",
        "http://h:8082/virtual-network"
    ));
    assert!(has(
        "collection",
        "bgp-as-a-service",
        "http://h:8082/bgp-as-a-services"
    ));
    assert!(has("action", "name-to-id", "http://h:8082/fqname-to-id"));
    assert!(has(
        "action",
        "useragent-keyvalue",
        "http://h:8082/useragent-kv"
    ));
}

#[tokio::test]
async fn create_read_update_delete_with_status_codes() {
    let (app, _, _) = app();
    let p = project(&app, "p").await;
    let (st, body, _) = call(
        &app,
        "POST",
        "/projects",
        Some(json!({"project": {"fq_name": ["default-domain", "p"], "parent_type": "domain"}})),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert!(body.contains("already exists with uuid"), "{body}");

    let (st, body, headers) = call(
        &app,
        "GET",
        &format!("/project/{p}?exclude_back_refs=True&exclude_children=True"),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    let v = js(&body)["project"].clone();
    assert_eq!(v["fq_name"], json!(["default-domain", "p"]));
    assert_eq!(v["parent_type"], "domain");
    assert_eq!(v["href"], format!("http://h:8082/project/{p}"));
    assert!(
        v.get("application_policy_sets").is_none(),
        "children excluded"
    );
    let etag = headers[header::ETAG].to_str().unwrap().to_string();

    // If-None-Match with the ETag: 304.
    let req = Request::get(format!("/project/{p}"))
        .header(header::IF_NONE_MATCH, &etag)
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        app.clone().oneshot(req).await.unwrap().status(),
        StatusCode::NOT_MODIFIED
    );

    let (st, body, _) = call(
        &app,
        "PUT",
        &format!("/project/{p}"),
        Some(json!({"project": {"uuid": p, "display_name": "renamed"}})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(js(&body)["project"]["uuid"], json!(p));
    let (_, body, _) = call(&app, "GET", &format!("/project/{p}"), None).await;
    assert_eq!(js(&body)["project"]["display_name"], "renamed");
    // With children: the default application-policy-set.
    assert_eq!(
        js(&body)["project"]["application_policy_sets"][0]["to"][2],
        "default-application-policy-set"
    );

    // Wrong type for the uuid: 404.
    let (st, _, _) = call(&app, "GET", &format!("/virtual-network/{p}"), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, body, _) = call(&app, "DELETE", &format!("/project/{p}"), None).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert!(body.is_empty());
    let (st, body, _) = call(&app, "DELETE", &format!("/project/{p}"), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(body, format!("ID {p} does not exist"));
}

#[tokio::test]
async fn bad_input_is_400_and_writes_nothing() {
    let (app, _, store) = app();
    project(&app, "p").await;
    let rev = store.revision();
    for (method, uri, body) in [
        ("POST", "/virtual-networks", Some("{not json")),
        ("POST", "/virtual-networks", Some("")),
        (
            "POST",
            "/virtual-networks",
            Some(r#"{"wrong-wrapper": {}}"#),
        ),
        (
            "POST",
            "/virtual-networks",
            Some(r#"{"virtual-network": {"fq_name": ["default-domain", "p", "a:b"]}}"#),
        ),
        (
            "POST",
            "/virtual-networks",
            Some(
                r#"{"virtual-network": {"fq_name": ["default-domain", "p", "x"], "display_name": 5}}"#,
            ),
        ),
        (
            "POST",
            "/virtual-networks",
            Some(
                r#"{"virtual-network": {"fq_name": ["default-domain", "p", "x"], "uuid": "XYZ"}}"#,
            ),
        ),
        (
            "POST",
            "/virtual-networks",
            Some(
                r#"{"virtual-network": {"fq_name": ["default-domain", "p", "x"], "network_ipam_refs": [{"to": ["default-domain", "default-project", "default-network-ipam"], "attr": {"ipam_subnets": [{"subnet": {"ip_prefix": "10.0.0.300", "ip_prefix_len": 24}}]}}]}}"#,
            ),
        ),
        ("POST", "/fqname-to-id", Some(r#"{"type": "project"}"#)),
        ("POST", "/ref-update", Some(r#"[]"#)),
        ("GET", "/virtual-networks?filters=bogus", None),
        ("GET", "/virtual-networks?page_marker=x&page_limit=2", None),
    ] {
        let (st, text, _) = call(
            &app,
            method,
            uri,
            body.map(|b| serde_json::from_str(b).unwrap_or(Value::String(b.into()))),
        )
        .await;
        // Raw bodies that are not JSON are sent as JSON strings above, still not the expected shape.
        assert_eq!(
            st,
            StatusCode::BAD_REQUEST,
            "{method} {uri} {body:?} -> {st} {text}"
        );
        assert!(!text.is_empty());
    }
    // A truly malformed body on the wire.
    let req = Request::post("/virtual-networks")
        .body(Body::from("{not json"))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(store.revision(), rev, "nothing was written");
    let (st, _, _) = call(&app, "GET", "/no-such-things", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn lists_count_detail_and_bulk() {
    let (app, _, _) = app();
    let p = project(&app, "p").await;
    let mut ids = Vec::new();
    for i in 0..30 {
        let (st, body, _) = call(
            &app,
            "POST",
            "/virtual-networks",
            Some(json!({"virtual-network": {
            "fq_name": ["default-domain", "p", format!("vn{i}")], "parent_type": "project"}})),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{body}");
        ids.push(
            js(&body)["virtual-network"]["uuid"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let (_, body, _) = call(
        &app,
        "GET",
        &format!("/virtual-networks?parent_id={p}&detail=False&count=True&shared=False"),
        None,
    )
    .await;
    assert_eq!(js(&body), json!({"virtual-networks": {"count": 30}}));
    let (_, body, _) = call(
        &app,
        "GET",
        &format!("/virtual-networks?parent_id={p}&detail=True&count=False"),
        None,
    )
    .await;
    let items = js(&body)["virtual-networks"].as_array().unwrap().clone();
    assert_eq!(items.len(), 30);
    assert_eq!(items[0]["virtual-network"]["name"], "vn0");
    let (st, body, _) = call(&app, "POST", "/list-bulk-collection", Some(json!({"type": "virtual-network",
        "obj_uuids": ids.join(","), "detail": false, "count": false, "shared": false, "fields": "display_name"}))).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let items = js(&body)["virtual-networks"].as_array().unwrap().clone();
    assert_eq!(items.len(), 30);
    assert_eq!(items[3]["display_name"], "vn3");
    let (_, body, _) = call(&app, "GET", "/virtual-networks?parent_fq_name_str=default-domain:p&parent_type=project&filters=display_name==%22vn7%22", None).await;
    assert_eq!(js(&body)["virtual-networks"][0]["uuid"], json!(ids[7]));
}

#[tokio::test]
async fn actions_answer_in_tf_shapes() {
    let (app, _, _) = app();
    let p = project(&app, "p").await;
    let (st, body, _) = call(
        &app,
        "POST",
        "/fqname-to-id",
        Some(json!({"type": "project", "fq_name": ["default-domain", "p"]})),
    )
    .await;
    assert_eq!((st, js(&body)), (StatusCode::OK, json!({"uuid": p})));
    let (st, body, _) = call(
        &app,
        "POST",
        "/fqname-to-id",
        Some(json!({"type": "project", "fq_name": ["default-domain", "nope"]})),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(body, "Name ['default-domain', 'nope'] not found");
    let (_, body, _) = call(&app, "POST", "/id-to-fqname", Some(json!({"uuid": p}))).await;
    assert_eq!(
        js(&body),
        json!({"fq_name": ["default-domain", "p"], "type": "project"})
    );
    let (st, _, _) = call(
        &app,
        "POST",
        "/useragent-kv",
        Some(json!({"operation": "STORE", "key": "k", "value": "v"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (_, body, _) = call(
        &app,
        "POST",
        "/useragent-kv",
        Some(json!({"operation": "RETRIEVE", "key": "k"})),
    )
    .await;
    assert_eq!(js(&body), json!({"value": "v"}));
    let (st, _, _) = call(
        &app,
        "POST",
        "/useragent-kv",
        Some(json!({"operation": "RETRIEVE", "key": "missing"})),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, body, _) = call(&app, "GET", &format!("/obj-perms?uuid={p}"), None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(js(&body)["permissions"], "RWX");
}

#[tokio::test]
async fn reopening_the_store_restores_everything() {
    let store: Arc<dyn Store> = Arc::new(MemStore::new());
    let state = ApiState::open(store.clone()).unwrap();
    let app = router(state.clone());
    let p = project(&app, "p").await;
    let (_, body, _) = call(&app, "POST", "/virtual-networks", Some(json!({"virtual-network": {
        "fq_name": ["default-domain", "p", "vn"], "parent_type": "project",
        "network_ipam_refs": [{"to": ["default-domain", "default-project", "default-network-ipam"],
            "attr": {"ipam_subnets": [{"subnet": {"ip_prefix": "10.9.0.0", "ip_prefix_len": 24}}]}}]}}))).await;
    let vn = js(&body)["virtual-network"]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, before, _) = call(&app, "GET", &format!("/virtual-network/{vn}"), None).await;
    let n = state.db.read().len();
    drop(app);
    drop(state);
    let again = ApiState::open(store).unwrap();
    assert_eq!(
        again.db.read().len(),
        n,
        "no second bootstrap, nothing lost"
    );
    let app = router(again);
    let (_, after, _) = call(&app, "GET", &format!("/virtual-network/{vn}"), None).await;
    assert_eq!(js(&before), js(&after));
    let (st, _, _) = call(&app, "GET", &format!("/project/{p}"), None).await;
    assert_eq!(st, StatusCode::OK);
}
