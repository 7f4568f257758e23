//! Bounded counts per key — connections per client address, streams per user: a [`Slot`] is
//! taken while something is open and gives itself back when dropped, so no path that ends a
//! connection or a stream can forget to count it down.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// How many slots each key holds.
#[derive(Debug)]
pub struct Slots<K: Hash + Eq + Clone> {
    open: Mutex<HashMap<K, usize>>,
}

impl<K: Hash + Eq + Clone> Default for Slots<K> {
    fn default() -> Self {
        Slots {
            open: Mutex::new(HashMap::new()),
        }
    }
}

/// One slot of a key, held until dropped.
#[derive(Debug)]
pub struct Slot<K: Hash + Eq + Clone> {
    table: Arc<Slots<K>>,
    key: K,
}

impl<K: Hash + Eq + Clone> Slots<K> {
    /// A slot for `key`, or `None` when it already holds `max`. Keys without slots take no
    /// memory.
    pub fn take(self: &Arc<Self>, key: K, max: usize) -> Option<Slot<K>> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(key.clone()).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            table: Arc::clone(self),
            key,
        })
    }
}

impl<K: Hash + Eq + Clone> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_at_most_max_and_gets_its_slots_back() {
        let slots: Arc<Slots<&str>> = Arc::default();
        let a1 = slots.take("a", 2).unwrap();
        let _a2 = slots.take("a", 2).unwrap();
        assert!(slots.take("a", 2).is_none());
        assert!(slots.take("b", 2).is_some(), "other keys are apart");
        drop(a1);
        assert!(slots.take("a", 2).is_some());
        drop(_a2);
        assert!(
            slots.open.lock().unwrap().is_empty(),
            "idle keys are forgotten"
        );
    }
}
