//! Turns a verb mix into concrete requests on a churning set of objects, keeping each
//! object's life plausible: created before it is read, patched, applied or deleted, and
//! created again (under a new name) only after it was deleted.

use std::fmt::Write as _;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::body::{json_object, merge_patch, yaml_object, Padding};
use super::kinds::{push_namespace, Slot, POD};
use super::mix::{GenVerb, VerbMix};

/// The fields of one profile request; buffers are reused from one request to the next.
#[derive(Debug, Default)]
pub(crate) struct RequestFields {
    pub verb: Option<GenVerb>,
    pub namespace: String,
    pub kind: &'static str,
    pub name: String,
    pub api_path: String,
    pub label_selector: String,
    pub body: String,
    /// The body is YAML text (written as a block literal).
    pub body_is_yaml: bool,
}

/// Which object slots exist right now. `order[..live]` are the live slots, the rest the
/// absent ones; `pos` finds a slot in `order`, so both sides can be sampled in O(1).
struct ObjectSet {
    order: Vec<u32>,
    pos: Vec<u32>,
    live: u32,
    generation: Vec<u32>,
}

impl ObjectSet {
    fn new(objects: u32) -> ObjectSet {
        ObjectSet {
            order: (0..objects).collect(),
            pos: (0..objects).collect(),
            live: 0,
            generation: vec![0; objects as usize],
        }
    }

    fn len(&self) -> u32 {
        self.order.len() as u32
    }

    fn is_live(&self, j: u32) -> bool {
        self.pos[j as usize] < self.live
    }

    fn swap(&mut self, a: u32, b: u32) {
        let (sa, sb) = (self.order[a as usize], self.order[b as usize]);
        self.order.swap(a as usize, b as usize);
        self.pos[sa as usize] = b;
        self.pos[sb as usize] = a;
    }

    fn pick_live(&self, rng: &mut ChaCha8Rng) -> u32 {
        self.order[rng.gen_range(0..self.live) as usize]
    }

    fn pick_absent(&self, rng: &mut ChaCha8Rng) -> u32 {
        self.order[rng.gen_range(self.live..self.len()) as usize]
    }

    fn set_live(&mut self, j: u32) {
        if !self.is_live(j) {
            let p = self.pos[j as usize];
            self.swap(p, self.live);
            self.live += 1;
        }
    }

    fn set_absent(&mut self, j: u32) {
        if self.is_live(j) {
            let p = self.pos[j as usize];
            self.live -= 1;
            self.swap(p, self.live);
            self.generation[j as usize] += 1;
        }
    }
}

/// Generates the requests of one profile in order.
pub(crate) struct Synthesizer {
    rng: ChaCha8Rng,
    mix: VerbMix,
    total: u64,
    watches: Option<u64>,
    namespaces: u32,
    body_size: usize,
    set: ObjectSet,
    /// The object set has reached its warm-up size once; reads no longer turn into creates.
    warmed: bool,
    padding: Padding,
}

impl Synthesizer {
    pub(crate) fn new(
        mut rng: ChaCha8Rng,
        mix: &VerbMix,
        total: u64,
        watches: Option<u64>,
        objects: u32,
        namespaces: u32,
        body_size: usize,
    ) -> Synthesizer {
        let padding = Padding::new(&mut rng);
        // With an exact WATCH count, the mix chooses among the other verbs.
        let mix = match watches {
            Some(_) => mix.with_weight(GenVerb::Watch, 0.0),
            None => mix.clone(),
        };
        Synthesizer {
            rng,
            mix,
            total,
            watches,
            namespaces,
            body_size,
            set: ObjectSet::new(objects),
            warmed: false,
            padding,
        }
    }

    /// Whether request `i` is one of the evenly spread WATCHes of an exact count.
    fn is_watch_slot(&self, i: u64) -> bool {
        match self.watches {
            Some(w) => {
                let (w, n, i) = (u128::from(w), u128::from(self.total), u128::from(i));
                (i + 1) * w / n > i * w / n
            }
            None => false,
        }
    }

    fn choose_verb(&mut self, i: u64) -> GenVerb {
        if self.is_watch_slot(i) {
            return GenVerb::Watch;
        }
        let u: f64 = self.rng.gen();
        let sampled = self.mix.pick(u, |_| true).unwrap_or(GenVerb::Get);
        let live = self.set.live;
        let objects = self.set.len();
        let warm_target = (objects / 2).max(1);
        if live >= warm_target {
            self.warmed = true;
        }
        if sampled.needs_live_object() {
            if live == 0 {
                return GenVerb::Create;
            }
            // Until half the slots exist, a read or update of a random object would mostly
            // miss: create objects instead, less often as the set fills.
            if !self.warmed && self.rng.gen::<f64>() * f64::from(warm_target) >= f64::from(live) {
                return GenVerb::Create;
            }
        }
        if sampled == GenVerb::Create && live == objects {
            let u: f64 = self.rng.gen();
            return self
                .mix
                .pick(u, |v| v != GenVerb::Create)
                .unwrap_or(GenVerb::Get);
        }
        sampled
    }

    /// Fills `out` with request `i`.
    pub(crate) fn next_request(&mut self, i: u64, out: &mut RequestFields) {
        let verb = self.choose_verb(i);
        out.verb = Some(verb);
        out.namespace.clear();
        out.name.clear();
        out.api_path.clear();
        out.label_selector.clear();
        out.body.clear();
        out.body_is_yaml = false;
        match verb {
            GenVerb::Create => {
                let j = self.set.pick_absent(&mut self.rng);
                let slot = self.object_request(j, out, false);
                self.set.set_live(j);
                json_object(
                    &mut out.body,
                    &slot,
                    &out.name,
                    self.body_size,
                    &self.padding,
                    &mut self.rng,
                );
            }
            GenVerb::Get => {
                let j = self.set.pick_live(&mut self.rng);
                self.object_request(j, out, true);
            }
            GenVerb::Patch => {
                let j = self.set.pick_live(&mut self.rng);
                let slot = self.object_request(j, out, true);
                merge_patch(
                    &mut out.body,
                    &slot,
                    i,
                    self.body_size,
                    &self.padding,
                    &mut self.rng,
                );
            }
            GenVerb::Apply => {
                let j = self.set.pick_live(&mut self.rng);
                let slot = self.object_request(j, out, true);
                out.body_is_yaml = self.rng.gen_bool(0.5);
                let build = if out.body_is_yaml {
                    yaml_object::<ChaCha8Rng>
                } else {
                    json_object::<ChaCha8Rng>
                };
                build(
                    &mut out.body,
                    &slot,
                    &out.name,
                    self.body_size,
                    &self.padding,
                    &mut self.rng,
                );
            }
            GenVerb::Delete => {
                let j = self.set.pick_live(&mut self.rng);
                self.object_request(j, out, true);
                self.set.set_absent(j);
            }
            GenVerb::List | GenVerb::Watch => self.collection_request(verb, out),
            GenVerb::DeleteCollection => self.delete_collection(out),
        }
    }

    /// Sets namespace, kind, name and path for object slot `j`; `item` adds the name to
    /// the path (every verb but CREATE).
    fn object_request(&self, j: u32, out: &mut RequestFields, item: bool) -> Slot {
        let slot = Slot::of(j, self.namespaces);
        out.kind = slot.kind.name;
        let _ = write!(
            out.name,
            "{}-{}-{}",
            slot.kind.prefix, j, self.set.generation[j as usize]
        );
        if slot.kind.namespaced {
            push_namespace(&mut out.namespace, slot.ns);
        }
        push_collection_path(&mut out.api_path, &slot, !slot.kind.namespaced);
        if item {
            out.api_path.push('/');
            out.api_path.push_str(&out.name);
        }
        slot
    }

    fn collection_request(&mut self, verb: GenVerb, out: &mut RequestFields) {
        let j = self.rng.gen_range(0..self.set.len());
        let slot = Slot::of(j, self.namespaces);
        out.kind = slot.kind.name;
        let all_namespaces = !slot.kind.namespaced || self.rng.gen_bool(0.15);
        if !all_namespaces {
            push_namespace(&mut out.namespace, slot.ns);
        }
        push_collection_path(&mut out.api_path, &slot, all_namespaces);
        if self.rng.gen_bool(0.5) {
            let _ = write!(out.label_selector, "app=app-{}", slot.app);
        }
        if verb == GenVerb::Watch {
            out.api_path.push_str("?allowWatchBookmarks=true");
        } else if all_namespaces || self.rng.gen_bool(0.2) {
            out.api_path.push_str("?limit=500");
        }
    }

    /// Deletes the live objects of one kind, namespace and `app` label; the selector is in
    /// the path because kperf does not send DELETECOLLECTION's labelSelector field.
    fn delete_collection(&mut self, out: &mut RequestFields) {
        let j = if self.set.live > 0 {
            self.set.pick_live(&mut self.rng)
        } else {
            self.rng.gen_range(0..self.set.len())
        };
        let mut slot = Slot::of(j, self.namespaces);
        if !slot.kind.namespaced {
            slot.kind = &POD;
        }
        out.kind = slot.kind.name;
        push_namespace(&mut out.namespace, slot.ns);
        push_collection_path(&mut out.api_path, &slot, false);
        let _ = write!(out.api_path, "?labelSelector=app%3Dapp-{}", slot.app);
        let _ = write!(out.label_selector, "app=app-{}", slot.app);
        let members: Vec<u32> = slot
            .group_members(self.set.len(), self.namespaces)
            .filter(|&m| self.set.is_live(m))
            .collect();
        for m in members {
            self.set.set_absent(m);
        }
    }
}

/// `<group path>[/namespaces/<ns>]/<plural>`.
fn push_collection_path(out: &mut String, slot: &Slot, all_namespaces: bool) {
    out.push_str(slot.kind.group_path);
    if !all_namespaces {
        out.push_str("/namespaces/");
        push_namespace(out, slot.ns);
    }
    out.push('/');
    out.push_str(slot.kind.plural);
}
