//! Rendering objects and lists in the JSON shapes `vnc_api` reads
//! (tf-facts 1.4): props, refs with `to`/`attr`/`uuid`/`href`, back-refs and
//! children, `fields=` projection, detail/count/pagination for lists.

use std::collections::BTreeSet;

use filament_schema::ResourceDef;
use serde_json::{json, Map, Value};

use crate::db::ConfigDb;
use crate::error::{bad, Result};
use crate::input::check_uuid;
use crate::obj::Obj;

/// Options of a single-object read.
#[derive(Debug, Clone, Default)]
pub struct ReadOpts {
    pub exclude_back_refs: bool,
    pub exclude_children: bool,
    pub exclude_hrefs: bool,
    /// Only these fields (plus identity, id_perms and perms2).
    pub fields: Option<Vec<String>>,
}

/// Options of a list.
#[derive(Debug, Clone, Default)]
pub struct ListOpts {
    pub parent_ids: Option<Vec<String>>,
    /// `(parent type, parent fq_name)`.
    pub parent_fq_name: Option<(Option<String>, Vec<String>)>,
    pub back_ref_ids: Option<Vec<String>>,
    pub obj_uuids: Option<Vec<String>>,
    pub fq_names: Option<Vec<Vec<String>>>,
    pub fields: Vec<String>,
    /// `(field, accepted values)`: values of one field OR, fields AND.
    pub filters: Vec<(String, Vec<Value>)>,
    pub detail: bool,
    pub count: bool,
    pub exclude_hrefs: bool,
    pub page_marker: Option<u64>,
    pub page_limit: Option<usize>,
}

impl ConfigDb {
    fn link(&self, base: &str, o: &Obj, hrefs: bool) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("to".into(), json!(o.fq_name));
        m.insert("uuid".into(), json!(o.uuid));
        if hrefs {
            m.insert(
                "href".into(),
                json!(format!("{base}/{}/{}", o.ty.name, o.uuid)),
            );
        }
        m
    }

    /// The full JSON of an object (the inner part of `{"<type>": {...}}`).
    pub fn render(&self, o: &Obj, opts: &ReadOpts, base: &str) -> Value {
        let hrefs = !opts.exclude_hrefs;
        let want = |f: &str| {
            opts.fields
                .as_ref()
                .is_none_or(|fs| fs.iter().any(|x| x == f))
        };
        let mut m = Map::new();
        m.insert("uuid".into(), json!(o.uuid));
        m.insert("name".into(), json!(o.name()));
        m.insert("fq_name".into(), json!(o.fq_name));
        if hrefs {
            m.insert(
                "href".into(),
                json!(format!("{base}/{}/{}", o.ty.name, o.uuid)),
            );
        }
        match &o.parent {
            Some((pt, pu)) => {
                m.insert("parent_type".into(), json!(pt.name));
                m.insert("parent_uuid".into(), json!(pu));
                if hrefs {
                    m.insert(
                        "parent_href".into(),
                        json!(format!("{base}/{}/{pu}", pt.name)),
                    );
                }
            }
            None if o.ty.name != "config-root" => {
                m.insert("parent_type".into(), json!("config-root"));
            }
            None => {}
        }
        m.insert(
            "id_perms".into(),
            serde_json::to_value(&o.id_perms).unwrap_or(Value::Null),
        );
        m.insert(
            "perms2".into(),
            serde_json::to_value(&o.perms2).unwrap_or(Value::Null),
        );
        for (k, v) in &o.props {
            if want(k) {
                m.insert(k.clone(), v.clone());
            }
        }
        for (field, links) in o.refs.iter() {
            if links.is_empty() || !want(field) {
                continue;
            }
            let out: Vec<Value> = links
                .iter()
                .filter_map(|l| {
                    let t = self.get(&l.uuid)?;
                    let mut e = self.link(base, t, hrefs);
                    e.insert("attr".into(), l.attr.clone());
                    Some(Value::Object(e))
                })
                .collect();
            m.insert(field.to_string(), Value::Array(out));
        }
        let explicit = opts.fields.is_some();
        if !opts.exclude_back_refs || explicit {
            let mut groups: Vec<(String, Vec<Value>)> = Vec::new();
            for r in self.referrers(&o.uuid) {
                let f = r.ty.back_ref_field();
                if !want(&f) {
                    continue;
                }
                for (_, l) in r.ref_uuids().filter(|(_, l)| l.uuid == o.uuid) {
                    let mut e = self.link(base, r, hrefs);
                    e.insert("attr".into(), l.attr.clone());
                    match groups.iter_mut().find(|(g, _)| *g == f) {
                        Some((_, v)) => v.push(Value::Object(e)),
                        None => groups.push((f.clone(), vec![Value::Object(e)])),
                    }
                }
            }
            if !opts.exclude_back_refs || explicit {
                for (f, v) in groups {
                    m.insert(f, Value::Array(v));
                }
            }
        }
        if !opts.exclude_children || explicit {
            let mut groups: Vec<(String, Vec<Value>)> = Vec::new();
            for c in self.children_of(&o.uuid) {
                let f = c.ty.child_field();
                if !want(&f) {
                    continue;
                }
                let e = Value::Object(self.link(base, c, hrefs));
                match groups.iter_mut().find(|(g, _)| *g == f) {
                    Some((_, v)) => v.push(e),
                    None => groups.push((f.clone(), vec![e])),
                }
            }
            for (f, v) in groups {
                m.insert(f, Value::Array(v));
            }
        }
        Value::Object(m)
    }

    /// `GET /<type>s` and `POST /list-bulk-collection`, as a JSON value.
    pub fn list(&self, ty: &'static ResourceDef, opts: &ListOpts, base: &str) -> Result<Value> {
        let text = self.list_json(ty, opts, base)?;
        serde_json::from_slice(&text).map_err(|e| crate::ConfigError::BadRequest(e.to_string()))
    }

    /// The list response as JSON bytes, rendered one item at a time so a
    /// large list never exists as one big value tree.
    pub fn list_json(
        &self,
        ty: &'static ResourceDef,
        opts: &ListOpts,
        base: &str,
    ) -> Result<Vec<u8>> {
        for ids in [&opts.parent_ids, &opts.back_ref_ids, &opts.obj_uuids]
            .into_iter()
            .flatten()
        {
            for u in ids {
                check_uuid(u)?;
            }
        }
        let mut cands: Vec<&Obj> = if let Some(ids) = &opts.obj_uuids {
            ids.iter()
                .filter_map(|u| self.get(u))
                .filter(|o| o.ty.name == ty.name)
                .collect()
        } else if let Some(ps) = &opts.parent_ids {
            ps.iter()
                .flat_map(|p| self.children_of(p))
                .filter(|o| o.ty.name == ty.name)
                .collect()
        } else if let Some(bs) = &opts.back_ref_ids {
            let mut seen = BTreeSet::new();
            bs.iter()
                .flat_map(|b| self.referrers(b))
                .filter(|o| o.ty.name == ty.name && seen.insert(o.uuid.clone()))
                .collect()
        } else {
            self.of_type(ty).collect()
        };
        if let (Some(_), Some(bs)) = (&opts.obj_uuids, &opts.back_ref_ids) {
            cands.retain(|o| o.ref_uuids().any(|(_, l)| bs.contains(&l.uuid)));
        }
        if let (Some(_), Some(ps)) = (
            opts.obj_uuids.as_ref().or(opts.back_ref_ids.as_ref()),
            &opts.parent_ids,
        ) {
            cands.retain(|o| o.parent.as_ref().is_some_and(|(_, p)| ps.contains(p)));
        }
        if let Some((pt, pfq)) = &opts.parent_fq_name {
            cands.retain(|o| {
                o.fq_name.len() == pfq.len() + 1
                    && o.fq_name[..pfq.len()] == pfq[..]
                    && pt
                        .as_ref()
                        .is_none_or(|t| o.parent.as_ref().is_some_and(|(ptd, _)| ptd.name == t))
            });
        }
        if let Some(fqs) = &opts.fq_names {
            cands.retain(|o| fqs.contains(&o.fq_name));
        }
        for (k, vals) in &opts.filters {
            cands.retain(|o| {
                let v = o.props.get(k).cloned().unwrap_or(Value::Null);
                vals.contains(&v)
            });
        }
        cands.sort_by_key(|o| o.seq);
        cands.dedup_by_key(|o| o.seq);
        if let Some(m) = opts.page_marker {
            cands.retain(|o| o.seq > m);
        }
        let mut marker = None;
        if let Some(limit) = opts.page_limit {
            if cands.len() > limit {
                cands.truncate(limit);
            }
            marker = cands.last().map(|o| o.seq.to_string());
        }
        let key = ty.plural;
        if opts.count {
            return Ok(json!({ key: {"count": cands.len()} })
                .to_string()
                .into_bytes());
        }
        let ro = ReadOpts {
            exclude_hrefs: opts.exclude_hrefs,
            exclude_back_refs: opts.fields.is_empty(),
            exclude_children: opts.fields.is_empty(),
            fields: None,
        };
        let mut out = Vec::with_capacity(64 + cands.len() * if opts.detail { 1024 } else { 160 });
        out.extend_from_slice(format!("{{\"{key}\": [").as_bytes());
        for (n, o) in cands.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            let item = if opts.detail {
                let mut ro = ro.clone();
                if !opts.fields.is_empty() {
                    ro.fields = Some(all_scalar_fields(o, &opts.fields));
                }
                json!({ ty.name: self.render(o, &ro, base) })
            } else {
                let mut m = Map::new();
                m.insert("uuid".into(), json!(o.uuid));
                m.insert("fq_name".into(), json!(o.fq_name));
                if !opts.exclude_hrefs {
                    m.insert(
                        "href".into(),
                        json!(format!("{base}/{}/{}", o.ty.name, o.uuid)),
                    );
                }
                if !opts.fields.is_empty() {
                    let full = self.render(
                        o,
                        &ReadOpts {
                            fields: Some(opts.fields.clone()),
                            exclude_hrefs: opts.exclude_hrefs,
                            ..ReadOpts::default()
                        },
                        base,
                    );
                    for f in &opts.fields {
                        if let Some(v) = full.get(f) {
                            m.insert(f.clone(), v.clone());
                        }
                    }
                }
                Value::Object(m)
            };
            serde_json::to_writer(&mut out, &item)
                .map_err(|e| crate::ConfigError::BadRequest(e.to_string()))?;
        }
        out.push(b']');
        if opts.page_limit.is_some() {
            out.extend_from_slice(b", \"marker\": ");
            let m = marker.map_or(Value::Null, Value::String);
            out.extend_from_slice(m.to_string().as_bytes());
        }
        out.push(b'}');
        Ok(out)
    }
}

/// Detail lists with `fields`: every property plus the requested extra fields.
fn all_scalar_fields(o: &Obj, extra: &[String]) -> Vec<String> {
    let mut v: Vec<String> = o.props.keys().cloned().collect();
    v.extend(o.refs.keys().map(|k| k.to_string()));
    v.extend(extra.iter().cloned());
    v
}

/// Parse the list query's `filters` parameter: `k==<json>,k==<json>,...`.
pub fn parse_filters(s: &str) -> Result<Vec<(String, Vec<Value>)>> {
    let mut out: Vec<(String, Vec<Value>)> = Vec::new();
    for part in split_filters(s) {
        let Some((k, v)) = part.split_once("==") else {
            return bad(format!("Invalid filter {part}"));
        };
        let val: Value = serde_json::from_str(v)
            .map_err(|_| crate::ConfigError::BadRequest(format!("Invalid filter {part}")))?;
        match out.iter_mut().find(|(key, _)| key == k) {
            Some((_, vals)) => vals.push(val),
            None => out.push((k.to_string(), vec![val])),
        }
    }
    Ok(out)
}

/// Split on commas that are not inside a JSON string.
fn split_filters(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut in_str, mut esc) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if esc => esc = false,
            '\\' if in_str => esc = true,
            '"' => in_str = !in_str,
            ',' if !in_str => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < s.len() {
        parts.push(&s[start..]);
    }
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}
