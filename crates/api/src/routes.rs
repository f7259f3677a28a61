//! HTTP routes of the config API. Handlers only parse the request, call the
//! config core through [`ApiState`], and turn results into the status codes
//! and bodies `vnc_api` expects (tf-facts 1.1–1.5). Resource routes are not
//! written per type: `/<plural>` and `/<type>/<uuid>` are looked up in the
//! schema, so a new type in `filament.schema` is served without code.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use filament_config::{parse_filters, ConfigError, ListOpts, ReadOpts};
use filament_schema::{index, ResourceDef};
use serde_json::{json, Value};

use crate::state::{ApiError, ApiState};
use crate::watch::watch_handler;

type St = State<Arc<ApiState>>;
type Q = Query<HashMap<String, String>>;

/// Action links of the homepage: `(name, path, method)`.
const ACTIONS: &[(&str, &str, &str)] = &[
    ("name-to-id", "/fqname-to-id", "POST"),
    ("id-to-name", "/id-to-fqname", "POST"),
    ("ref-update", "/ref-update", "POST"),
    ("ref-relax-for-delete", "/ref-relax-for-delete", "POST"),
    ("prop-collection-get", "/prop-collection-get", "GET"),
    ("prop-collection-update", "/prop-collection-update", "POST"),
    ("useragent-keyvalue", "/useragent-kv", "POST"),
    ("list-bulk-collection", "/list-bulk-collection", "POST"),
    ("obj-perms", "/obj-perms", "GET"),
    ("chown", "/chown", "POST"),
    ("chmod", "/chmod", "POST"),
    ("aaa-mode", "/aaa-mode", "GET"),
    (
        "virtual-network-ip-alloc",
        "/virtual-network/%s/ip-alloc",
        "POST",
    ),
    (
        "virtual-network-ip-free",
        "/virtual-network/%s/ip-free",
        "POST",
    ),
    (
        "virtual-network-subnet-ip-count",
        "/virtual-network/%s/subnet-ip-count",
        "POST",
    ),
    ("watch", "/watch", "GET"),
];

/// The API router.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/", get(homepage))
        .route("/fqname-to-id", post(fq_name_to_id))
        .route("/id-to-fqname", post(id_to_fq_name))
        .route("/ref-update", post(ref_update))
        .route("/ref-relax-for-delete", post(ref_relax))
        .route("/prop-collection-get", get(prop_collection_get))
        .route("/prop-collection-update", post(prop_collection_update))
        .route("/useragent-kv", post(useragent_kv))
        .route("/list-bulk-collection", post(list_bulk))
        .route("/obj-perms", get(obj_perms))
        .route("/chown", post(chown))
        .route("/chmod", post(chmod))
        .route("/aaa-mode", get(aaa_mode))
        .route("/status", get(status))
        .route("/watch", get(watch_handler))
        .route("/derived", post(derived))
        .route("/{collection}", get(list).post(create))
        .route("/{ty}/{uuid}", get(read).put(update).delete(delete))
        .route("/{ty}/{uuid}/{action}", post(vn_action))
        .with_state(state)
}

// ===== responses =====

fn text(status: StatusCode, msg: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg.into(),
    )
        .into_response()
}

fn json_ok(v: Value) -> Response {
    // `to_vec` writes straight into the buffer (`to_string` goes through
    // `fmt::Write`); the bytes are the same.
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec(&v).unwrap_or_default(),
    )
        .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Config(e) => {
                let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
                text(status, e.to_string())
            }
            other => {
                tracing::error!(error = %other, "request failed in the store");
                text(StatusCode::INTERNAL_SERVER_ERROR, other.to_string())
            }
        }
    }
}

fn reply(r: Result<Value, ApiError>) -> Response {
    match r {
        Ok(v) => json_ok(v),
        Err(e) => e.into_response(),
    }
}

fn reply_bytes(r: Result<Vec<u8>, ApiError>) -> Response {
    match r {
        Ok(v) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            v,
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::Config(ConfigError::BadRequest(msg.into()))
}

fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Err(bad("Request body is empty: expected JSON"));
    }
    serde_json::from_slice(body).map_err(|e| bad(format!("Malformed JSON body: {e}")))
}

/// `http://<Host header>`: hrefs use the address the client used.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost:8082");
    format!("http://{host}")
}

fn truthy(v: Option<&String>) -> bool {
    v.is_some_and(|s| s.to_ascii_lowercase().contains("true"))
}

fn resource(name: &str) -> Result<&'static ResourceDef, ApiError> {
    index().resource(name).ok_or_else(|| {
        ApiError::Config(ConfigError::NotFound(format!(
            "Unknown resource type {name}"
        )))
    })
}

// ===== homepage =====

async fn homepage(headers: HeaderMap) -> Response {
    let base = base_url(&headers);
    let mut links = vec![
        json!({"link": {"rel": "root", "href": format!("{base}/config-root"), "name": "config-root", "method": null}}),
    ];
    for r in index().resources() {
        links.push(json!({"link": {"rel": "collection", "href": format!("{base}/{}", r.plural), "name": r.name, "method": null}}));
        links.push(json!({"link": {"rel": "resource-base", "href": format!("{base}/{}", r.name), "name": r.name, "method": null}}));
    }
    for (name, path, method) in ACTIONS {
        links.push(json!({"link": {"rel": "action", "href": format!("{base}{path}"), "name": name, "method": method}}));
    }
    json_ok(json!({"href": base, "links": links}))
}

// ===== CRUD =====

async fn create(
    State(st): St,
    Path(collection): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r: Result<Vec<u8>, ApiError> = async {
        let ty = index().by_plural(&collection).ok_or_else(|| {
            ApiError::Config(ConfigError::NotFound(format!(
                "Unknown collection {collection}"
            )))
        })?;
        let v = parse_body(&body)?;
        let inner = v
            .get(ty.name)
            .ok_or_else(|| bad(format!("Body must be {{\"{}\": {{...}}}}", ty.name)))?;
        let owner = headers
            .get("X-Project-Id")
            .and_then(|h| h.to_str().ok())
            .map(|s| s.replace('-', ""));
        let uuid = st
            .write(|db, ctx| {
                ctx.owner = owner;
                db.create(ty, inner, ctx)
            })
            .await?;
        let base = base_url(&headers);
        let db = st.db.read();
        let o = db
            .get(&uuid)
            .ok_or_else(|| ApiError::Corrupt(format!("created object {uuid} vanished")))?;
        // Serialized straight from borrowed fields (no `Value` tree): the
        // same bytes as `{"<type>": {"name", "fq_name", "uuid", "href",
        // "parent_type", "parent_uuid", "parent_href"}}` built as JSON values.
        let created = Created {
            name: o.name(),
            fq_name: &o.fq_name,
            uuid: &o.uuid,
            href: format!("{base}/{}/{}", ty.name, o.uuid),
            parent_type: o.parent.as_ref().map(|(pt, _)| pt.name),
            parent_uuid: o.parent.as_ref().map(|(_, pu)| pu.as_str()),
            parent_href: o
                .parent
                .as_ref()
                .map(|(pt, pu)| format!("{base}/{}/{pu}", pt.name)),
        };
        let mut out = std::collections::BTreeMap::new();
        out.insert(ty.name, created);
        serde_json::to_vec(&out).map_err(|e| ApiError::Corrupt(format!("create answer: {e}")))
    }
    .await;
    reply_bytes(r)
}

/// The answer to a create (inside `{"<type>": ...}`).
#[derive(serde::Serialize)]
struct Created<'a> {
    name: &'a str,
    fq_name: &'a [String],
    uuid: &'a str,
    href: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_uuid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_href: Option<String>,
}

async fn read(
    State(st): St,
    Path((ty, uuid)): Path<(String, String)>,
    Query(q): Q,
    headers: HeaderMap,
) -> Response {
    let r = (|| -> Result<(Value, String), ApiError> {
        let ty = resource(&ty)?;
        let db = st.db.read();
        let o = db.typed(ty, &uuid)?;
        let opts = ReadOpts {
            // TF checks that these flags are present, whatever their value.
            exclude_back_refs: q.contains_key("exclude_back_refs"),
            exclude_children: q.contains_key("exclude_children"),
            exclude_hrefs: truthy(q.get("exclude_hrefs")),
            fields: q.get("fields").map(|f| {
                f.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            }),
        };
        let etag = o.id_perms.last_modified.clone().unwrap_or_default();
        Ok((
            json!({ ty.name: db.render(o, &opts, &base_url(&headers)) }),
            etag,
        ))
    })();
    match r {
        Ok((v, etag)) => {
            let tag = format!("\"{etag}\"");
            let inm = headers
                .get(header::IF_NONE_MATCH)
                .and_then(|h| h.to_str().ok());
            if inm.is_some_and(|v| v.trim().trim_matches('"') == etag) {
                return StatusCode::NOT_MODIFIED.into_response();
            }
            let mut resp = json_ok(v);
            if let Ok(h) = HeaderValue::from_str(&tag) {
                resp.headers_mut().insert(header::ETAG, h);
            }
            resp
        }
        Err(e) => e.into_response(),
    }
}

async fn update(
    State(st): St,
    Path((ty, uuid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r: Result<Value, ApiError> = async {
        let ty = resource(&ty)?;
        let v = parse_body(&body)?;
        let inner = v
            .get(ty.name)
            .ok_or_else(|| bad(format!("Body must be {{\"{}\": {{...}}}}", ty.name)))?;
        st.write(|db, ctx| Ok((db.update(ty, &uuid, inner, ctx)?, ()))).await?;
        Ok(
            json!({ ty.name: {"uuid": uuid, "href": format!("{}/{}/{uuid}", base_url(&headers), ty.name)} }),
        )
    }
    .await;
    reply(r)
}

async fn delete(
    State(st): St,
    Path((ty, uuid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let r: Result<(), ApiError> = async {
        let ty = resource(&ty)?;
        let base = base_url(&headers);
        st.write(|db, _| Ok((db.delete(ty, &uuid, &base)?, ())))
            .await
    }
    .await;
    match r {
        Ok(()) => (StatusCode::OK, Body::empty()).into_response(),
        Err(e) => e.into_response(),
    }
}

// ===== lists =====

fn ids(v: Option<&Value>) -> Option<Vec<String>> {
    match v? {
        Value::String(s) => Some(
            s.split(',')
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect(),
        ),
        Value::Array(a) => Some(
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
        ),
        _ => None,
    }
}

fn flag(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.to_ascii_lowercase().contains("true"),
        _ => false,
    }
}

/// List options from query parameters or a list-bulk-collection body.
fn list_opts(p: &serde_json::Map<String, Value>) -> Result<ListOpts, ApiError> {
    let mut o = ListOpts {
        parent_ids: ids(p.get("parent_id")),
        back_ref_ids: ids(p.get("back_ref_id")),
        obj_uuids: ids(p.get("obj_uuids")),
        fields: ids(p.get("fields")).unwrap_or_default(),
        detail: flag(p.get("detail")),
        count: flag(p.get("count")),
        exclude_hrefs: flag(p.get("exclude_hrefs")),
        ..ListOpts::default()
    };
    if let Some(fqs) = ids(p.get("fq_names")) {
        o.fq_names = Some(
            fqs.iter()
                .map(|s| s.split(':').map(str::to_string).collect())
                .collect(),
        );
    }
    if let Some(s) = p.get("parent_fq_name_str").and_then(Value::as_str) {
        let pt = p
            .get("parent_type")
            .and_then(Value::as_str)
            .map(|t| t.replace('_', "-"));
        o.parent_fq_name = Some((pt, s.split(':').map(str::to_string).collect()));
    }
    if let Some(f) = p.get("filters").and_then(Value::as_str) {
        o.filters = parse_filters(f)?;
    }
    if let Some(m) = p
        .get("page_marker")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty() && *m != "None")
    {
        o.page_marker = Some(
            m.parse()
                .map_err(|_| bad(format!("Invalid page_marker {m}")))?,
        );
    }
    match p.get("page_limit") {
        Some(Value::String(s)) => {
            o.page_limit = Some(
                s.parse()
                    .map_err(|_| bad(format!("Invalid page_limit {s}")))?,
            );
        }
        Some(Value::Number(n)) => o.page_limit = n.as_u64().map(|n| n as usize),
        _ => {}
    }
    Ok(o)
}

async fn list(
    State(st): St,
    Path(collection): Path<String>,
    Query(q): Q,
    headers: HeaderMap,
) -> Response {
    let r = (|| {
        let ty = index().by_plural(&collection).ok_or_else(|| {
            ApiError::Config(ConfigError::NotFound(format!(
                "Unknown collection {collection}"
            )))
        })?;
        let p: serde_json::Map<String, Value> =
            q.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        let opts = list_opts(&p)?;
        Ok(st.db.read().list_json(ty, &opts, &base_url(&headers))?)
    })();
    reply_bytes(r)
}

async fn list_bulk(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    let r = (|| {
        let v = parse_body(&body)?;
        let p = v
            .as_object()
            .ok_or_else(|| bad("list-bulk-collection body must be an object"))?;
        let tname = p
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("list-bulk-collection needs a type"))?;
        let ty = resource(&tname.replace('_', "-"))?;
        let opts = list_opts(p)?;
        Ok(st.db.read().list_json(ty, &opts, &base_url(&headers))?)
    })();
    reply_bytes(r)
}

// ===== actions =====

async fn fq_name_to_id(State(st): St, body: Bytes) -> Response {
    reply(parse_body(&body).and_then(|v| Ok(st.db.read().fq_name_to_id(&v)?)))
}

async fn id_to_fq_name(State(st): St, body: Bytes) -> Response {
    reply(parse_body(&body).and_then(|v| Ok(st.db.read().id_to_fq_name(&v)?)))
}

async fn ref_update(State(st): St, body: Bytes) -> Response {
    reply(
        async {
            let v = parse_body(&body)?;
            let u = st.write(|db, ctx| db.ref_update(&v, ctx)).await?;
            Ok(json!({ "uuid": u }))
        }
        .await,
    )
}

async fn ref_relax(State(st): St, body: Bytes) -> Response {
    reply(
        async {
            let v = parse_body(&body)?;
            st.write(|db, _| Ok((db.ref_relax(&v)?, ()))).await?;
            Ok(json!({ "uuid": v.get("uuid").cloned().unwrap_or(Value::Null) }))
        }
        .await,
    )
}

async fn prop_collection_get(State(st): St, Query(q): Q) -> Response {
    let r = (|| {
        let uuid = q.get("uuid").ok_or_else(|| bad("uuid is required"))?;
        let fields = q.get("fields").ok_or_else(|| bad("fields is required"))?;
        Ok(st
            .db
            .read()
            .prop_collection_get(uuid, fields, q.get("position").map(String::as_str))?)
    })();
    reply(r)
}

async fn prop_collection_update(State(st): St, body: Bytes) -> Response {
    reply(
        async {
            let v = parse_body(&body)?;
            st.write(|db, ctx| Ok((db.prop_collection_update(&v, ctx)?, ())))
                .await?;
            Ok(json!({}))
        }
        .await,
    )
}

async fn useragent_kv(State(st): St, body: Bytes) -> Response {
    reply(
        async {
            let v = parse_body(&body)?;
            st.write(|db, _| db.useragent_kv(&v)).await
        }
        .await,
    )
}

async fn chown(State(st): St, body: Bytes) -> Response {
    reply(
        async {
            let v = parse_body(&body)?;
            st.write(|db, ctx| Ok((db.chown(&v, ctx)?, ()))).await?;
            Ok(json!({}))
        }
        .await,
    )
}

async fn chmod(State(st): St, body: Bytes) -> Response {
    reply(
        async {
            let v = parse_body(&body)?;
            st.write(|db, ctx| Ok((db.chmod(&v, ctx)?, ()))).await?;
            Ok(json!({}))
        }
        .await,
    )
}

async fn obj_perms(State(st): St, Query(q): Q) -> Response {
    reply(
        st.db
            .read()
            .obj_perms(q.get("uuid").map(String::as_str))
            .map_err(ApiError::from),
    )
}

/// `POST /derived {"writes": [...]}`: derived-state writes from a schema
/// transformer running in another process (one transaction).
async fn derived(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    reply(
        async {
            let v = parse_body(&body)?;
            let writes: Vec<filament_config::DerivedWrite> =
                serde_json::from_value(v.get("writes").cloned().unwrap_or(Value::Null))
                    .map_err(|e| bad(format!("writes must be a list of derived writes: {e}")))?;
            let base = base_url(&headers);
            let n = writes.len();
            let ((), rev) = st
                .write_revision(|db, ctx| Ok((db.apply_derived(&writes, ctx, &base)?, ())))
                .await?;
            Ok(json!({ "applied": n, "revision": rev }))
        }
        .await,
    )
}

/// `GET /status`: the role-status document every Filament role serves (`filament status`).
async fn status(State(st): St) -> Response {
    let objects = st.db.read().len();
    let (commits, committed_writes) = st.commit_stats();
    json_ok(json!({
        "role": "api",
        "state": "active",
        "reason": "",
        "revision": st.store.revision(),
        "objects": objects,
        "commits": commits,
        "committed_writes": committed_writes,
    }))
}

async fn aaa_mode() -> Response {
    json_ok(json!({"aaa-mode": "no-auth"}))
}

async fn vn_action(
    State(st): St,
    Path((ty, uuid, action)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    if ty != "virtual-network" {
        return text(
            StatusCode::NOT_FOUND,
            format!("Unknown action {ty}/{action}"),
        );
    }
    reply(
        async {
            let v = parse_body(&body)?;
            match action.as_str() {
                // Address reservations are in-memory only: no transaction to commit.
                "ip-alloc" => {
                    st.write(|db, _| Ok((Default::default(), db.vn_ip_alloc(&uuid, &v)?)))
                        .await
                }
                "ip-free" => {
                    st.write(|db, _| Ok((Default::default(), db.vn_ip_free(&uuid, &v)?)))
                        .await
                }
                "subnet-ip-count" => Ok(st.db.read().vn_subnet_ip_count(&uuid, &v)?),
                _ => Err(ApiError::Config(ConfigError::NotFound(format!(
                    "Unknown action {action}"
                )))),
            }
        }
        .await,
    )
}
