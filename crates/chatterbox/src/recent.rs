//! A few values kept by key, the least recently used dropped first (a voice's
//! conditioning in T3, its prompt state in S3Gen).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Tensor};

pub struct Recent<K, V> {
    /// The most recently used last.
    kept: Mutex<VecDeque<(K, Arc<V>)>>,
    capacity: usize,
}

impl<K: PartialEq, V> Recent<K, V> {
    pub fn new(capacity: usize) -> Self {
        Self {
            kept: Mutex::new(VecDeque::with_capacity(capacity)),
            capacity,
        }
    }

    /// The value kept for `key`, now the most recently used.
    pub fn get(&self, key: &K) -> Option<Arc<V>> {
        let mut kept = self.kept.lock().expect("recent values lock");
        let at = kept.iter().position(|(k, _)| k == key)?;
        let entry = kept.remove(at)?;
        let value = Arc::clone(&entry.1);
        kept.push_back(entry);
        Some(value)
    }

    /// Keeps `value` for `key`, dropping the least recently used beyond the capacity.
    pub fn insert(&self, key: K, value: Arc<V>) {
        let mut kept = self.kept.lock().expect("recent values lock");
        kept.retain(|(k, _)| *k != key);
        while !kept.is_empty() && kept.len() >= self.capacity {
            kept.pop_front();
        }
        if self.capacity > 0 {
            kept.push_back((key, value));
        }
    }
}

/// A tensor's values as the bits of their f32, for a key that compares them exactly.
pub fn value_bits(tensor: &Tensor) -> candle_core::Result<Vec<u32>> {
    Ok(tensor
        .flatten_all()?
        .to_dtype(DType::F32)?
        .to_vec1::<f32>()?
        .into_iter()
        .map(f32::to_bits)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_goes_first() {
        let recent = Recent::new(2);
        recent.insert("a", Arc::new(1));
        recent.insert("b", Arc::new(2));
        assert_eq!(recent.get(&"a").as_deref(), Some(&1));
        recent.insert("c", Arc::new(3));
        assert_eq!(recent.get(&"b"), None);
        assert_eq!(recent.get(&"a").as_deref(), Some(&1));
        assert_eq!(recent.get(&"c").as_deref(), Some(&3));
        recent.insert("c", Arc::new(4));
        assert_eq!(recent.get(&"c").as_deref(), Some(&4));
        assert_eq!(recent.get(&"a").as_deref(), Some(&1));
    }
}
