//! Interning for the control RIB: one shared copy per distinct attribute set and name
//! ([`Pool`]), and the per-attribute-set memo of whether an instance imports a path's
//! targets ([`imports`]).

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::hash::Hash;
use std::sync::Arc;

use super::{Name, PathAttrs};

/// A shared handle whose holders can be counted.
pub(super) trait Shared: Clone + Eq + Hash {
    fn holders(&self) -> usize;
}

impl Shared for Arc<PathAttrs> {
    fn holders(&self) -> usize {
        Arc::strong_count(self)
    }
}

impl Shared for Name {
    fn holders(&self) -> usize {
        Name::holders(self)
    }
}

/// One shared copy per distinct value; entries no one else holds any more are dropped
/// when the pool has doubled since the last sweep.
#[derive(Debug)]
pub(super) struct Pool<H> {
    pub(super) set: HashSet<H>,
    sweep_at: usize,
}

impl<H> Default for Pool<H> {
    fn default() -> Self {
        Pool {
            set: HashSet::new(),
            sweep_at: 0,
        }
    }
}

impl<H: Shared> Pool<H> {
    /// The shared copy of `v` (`make` builds one when there is none).
    pub(super) fn get<Q: ?Sized + Eq + Hash>(&mut self, v: &Q, make: impl FnOnce() -> H) -> H
    where
        H: Borrow<Q>,
    {
        if let Some(x) = self.set.get(v) {
            return x.clone();
        }
        if self.set.len() >= self.sweep_at {
            self.set.retain(|x| x.holders() > 1);
            self.sweep_at = (self.set.len() * 2).max(1024);
        }
        let x = make();
        self.set.insert(x.clone());
        x
    }
}

/// Whether an instance imports one of the targets of `a` (memoised per attribute set: a
/// full table from one peer has a handful).
pub(super) fn imports(
    memo: &mut hashbrown::HashMap<usize, (Arc<PathAttrs>, bool)>,
    importers: &BTreeMap<String, BTreeSet<String>>,
    a: &Arc<PathAttrs>,
) -> bool {
    let id = Arc::as_ptr(a) as usize;
    if let Some((_, b)) = memo.get(&id) {
        return *b;
    }
    let b = a.route_targets.iter().any(|rt| importers.contains_key(rt));
    if memo.len() >= 4096 {
        memo.clear();
    }
    memo.insert(id, (a.clone(), b));
    b
}
