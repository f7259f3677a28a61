//! Writes of derived state (routing-instance route targets and connections,
//! route-target objects, ACLs), as the schema transformer computes them.
//!
//! The transformer addresses objects by fq_name, not uuid, so its output is
//! deterministic; this module resolves names, creates missing objects as
//! system-created, and turns a batch of writes into one transaction.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use filament_schema::index;

use crate::db::{ConfigDb, Txn};
use crate::error::{bad, Result};
use crate::obj::RefLink;
use crate::write::touch;
use crate::{ConfigError, Ctx};

/// A reference to set on a derived object, by the target's fq_name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DerivedRef {
    pub target_type: String,
    pub to: Vec<String>,
    #[serde(default)]
    pub attr: Value,
}

/// One change to derived state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum DerivedWrite {
    /// Create the object if missing, then set exactly these properties and
    /// reference fields (fields not named are left as they are).
    Put {
        #[serde(rename = "type")]
        ty: String,
        fq_name: Vec<String>,
        #[serde(default)]
        props: Map<String, Value>,
        /// Reference field (`route_target_refs`) → its complete new list.
        #[serde(default)]
        refs: Vec<(String, Vec<DerivedRef>)>,
    },
    /// Delete a system-created object (and its system-created children).
    Delete {
        #[serde(rename = "type")]
        ty: String,
        fq_name: Vec<String>,
    },
}

impl ConfigDb {
    /// Apply derived writes as one transaction. Puts are applied in order
    /// (so a route target is created before a routing instance refers to
    /// it), deletes last. Only system-created objects are deleted; a put on
    /// an object the user owns (a routing instance) only touches the named
    /// fields.
    pub fn apply_derived(
        &mut self,
        writes: &[DerivedWrite],
        ctx: &mut Ctx<'_>,
        base: &str,
    ) -> Result<Txn> {
        let mut txn = Txn::default();
        let was = ctx.system;
        ctx.system = true;
        let r = self.apply_derived_in(&mut txn, writes, ctx, base);
        ctx.system = was;
        r.map(|()| txn)
    }

    fn apply_derived_in(
        &mut self,
        txn: &mut Txn,
        writes: &[DerivedWrite],
        ctx: &mut Ctx<'_>,
        base: &str,
    ) -> Result<()> {
        for w in writes {
            let DerivedWrite::Put {
                ty,
                fq_name,
                props,
                refs,
            } = w
            else {
                continue;
            };
            let def = index()
                .resource(ty)
                .ok_or_else(|| ConfigError::BadRequest(format!("unknown type {ty}")))?;
            let uuid = match self.uuid_in(txn, def, fq_name) {
                Some(u) => u,
                // Only route targets and ACLs are made here; an instance or
                // port that is gone (deleted since the transformer looked)
                // is skipped.
                None if !matches!(ty.as_str(), "route-target" | "access-control-list") => continue,
                None => {
                    let mut body = Map::new();
                    body.insert("fq_name".into(), Value::from(fq_name.clone()));
                    if fq_name.len() > 1 {
                        // The parent type is the one whose object holds the prefix.
                        let pfq = &fq_name[..fq_name.len() - 1];
                        let parent = def.parents.iter().find(|p| {
                            index()
                                .resource(p)
                                .is_some_and(|pd| self.uuid_of(pd, pfq).is_some())
                        });
                        match parent {
                            Some(p) => body.insert("parent_type".into(), Value::from(*p)),
                            // The owner was deleted since the transformer looked.
                            None => continue,
                        };
                    }
                    self.create_in(txn, def, &Value::Object(body), ctx)?
                }
            };
            let mut o = match txn.pending(&uuid) {
                Some(p) => p.clone(),
                None => self
                    .get(&uuid)
                    .cloned()
                    .ok_or_else(|| ConfigError::NotFound(format!("{ty} {uuid} vanished")))?,
            };
            for (k, v) in props {
                if o.ty.prop(k).is_none() {
                    return bad(format!("derived {ty}: unknown property {k}"));
                }
                if v.is_null() {
                    o.props.remove(k);
                } else {
                    o.props.insert(k.clone(), v.clone());
                }
            }
            for (field, list) in refs {
                let Some(rdef) = o.ty.ref_def(field) else {
                    return bad(format!("derived {ty}: unknown reference field {field}"));
                };
                let tdef = index().resource(rdef.target).ok_or_else(|| {
                    ConfigError::BadRequest(format!("unknown type {}", rdef.target))
                })?;
                let mut links = Vec::with_capacity(list.len());
                for r in list {
                    let target = self.uuid_in(txn, tdef, &r.to);
                    // A target that does not exist (yet) is skipped: the next
                    // reconcile, after it appears, adds the reference.
                    if let Some(t) = target {
                        links.push(RefLink {
                            uuid: t,
                            attr: r.attr.clone(),
                        });
                    }
                }
                o.refs.insert(rdef.field, links);
            }
            touch(&mut o, &ctx.now);
            txn.put(o);
        }
        for w in writes {
            let DerivedWrite::Delete { ty, fq_name } = w else {
                continue;
            };
            let Some(def) = index().resource(ty) else {
                continue;
            };
            let Some(uuid) = self.uuid_of(def, fq_name).map(str::to_string) else {
                continue;
            };
            let Some(o) = self.get(&uuid) else { continue };
            if !o.is_system_created() {
                // Never delete what a user made, even if asked to.
                continue;
            }
            let d = self.delete(def, &uuid, base)?;
            let gone: Vec<&str> = d.deletes.iter().map(|x| x.uuid.as_str()).collect();
            for p in &d.puts {
                // A referrer already changed by this batch keeps its changes
                // and only loses the references to what is deleted.
                let mut merged = txn.pending(&p.uuid).cloned().unwrap_or_else(|| p.clone());
                for links in merged.refs.values_mut() {
                    links.retain(|l| !gone.contains(&l.uuid.as_str()));
                }
                merged.relaxed.retain(|u| !gone.contains(&u.as_str()));
                txn.put(merged);
            }
            txn.puts.retain(|p| !gone.contains(&p.uuid.as_str()));
            txn.deletes.extend(d.deletes);
        }
        Ok(())
    }
}
