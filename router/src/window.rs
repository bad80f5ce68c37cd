//! The bounded window of recent predictions that feedback is joined with: insertion order, oldest forgotten first.
//! Pure; the server keeps one behind a mutex.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// At most `capacity` entries keyed by prediction ID; inserting beyond it forgets the oldest.
#[derive(Debug)]
pub struct Window<T> {
    capacity: usize,
    entries: HashMap<Arc<str>, T>,
    order: VecDeque<Arc<str>>,
}

impl<T> Window<T> {
    /// An empty window; a capacity of 0 keeps nothing.
    pub fn new(capacity: usize) -> Window<T> {
        Window { capacity, entries: HashMap::new(), order: VecDeque::new() }
    }

    /// Records a prediction; a known ID is overwritten in place (it keeps its age).
    pub fn insert(&mut self, id: &str, value: T) {
        if self.capacity == 0 {
            return;
        }
        // One lookup: a known ID keeps its key and its place in the order, and only its value changes.
        let id: Arc<str> = Arc::from(id);
        if self.entries.insert(id.clone(), value).is_none() {
            self.order.push_back(id);
            self.evict();
        }
    }

    /// The prediction with this ID, while it is in the window.
    pub fn get_mut(&mut self, id: &str) -> Option<&mut T> {
        self.entries.get_mut(id)
    }

    /// Changes the capacity; a smaller one forgets the oldest entries now.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        self.evict();
    }

    /// How many predictions the window holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the window holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn evict(&mut self) {
        while self.entries.len() > self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.entries.remove(&old);
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_most_recent_and_forgets_the_oldest() {
        let mut w = Window::new(3);
        for i in 0..5 {
            w.insert(&format!("p{i}"), i);
        }
        assert_eq!(w.len(), 3);
        assert_eq!(w.get_mut("p0"), None);
        assert_eq!(w.get_mut("p1"), None);
        assert_eq!(w.get_mut("p2"), Some(&mut 2));
        assert_eq!(w.get_mut("p4"), Some(&mut 4));
    }

    #[test]
    fn a_known_id_is_overwritten_without_growing() {
        let mut w = Window::new(2);
        w.insert("a", 1);
        w.insert("b", 2);
        w.insert("a", 3);
        assert_eq!((w.len(), w.get_mut("a").copied()), (2, Some(3)));
        // "a" kept its age: it is the oldest and goes first.
        w.insert("c", 4);
        assert_eq!(w.get_mut("a"), None);
        assert!(w.get_mut("b").is_some() && w.get_mut("c").is_some());
    }

    #[test]
    fn capacity_changes_take_effect_and_zero_keeps_nothing() {
        let mut w = Window::new(10);
        for i in 0..10 {
            w.insert(&i.to_string(), i);
        }
        w.set_capacity(4);
        assert_eq!(w.len(), 4);
        assert!(w.get_mut("5").is_none() && w.get_mut("6").is_some());
        w.set_capacity(0);
        w.insert("x", 1);
        assert!(w.is_empty());
    }
}
