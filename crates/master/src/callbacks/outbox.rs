//! A subscriber's queue of events waiting to be POSTed: bounded, oldest first, and when full
//! the oldest event gives way to the newest (a subscriber that is down loses its oldest
//! events, never the leader's memory or time).

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::Notify;

/// A bounded FIFO that drops its oldest item when full; one producer (the leader's event
/// dispatch) pushes without ever waiting, one consumer (the subscriber's delivery task)
/// waits for the next item.
#[derive(Debug)]
pub struct Outbox<T> {
    items: Mutex<VecDeque<T>>,
    capacity: usize,
    ready: Notify,
}

impl<T> Outbox<T> {
    /// An empty outbox holding at most `capacity` items (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Outbox {
            items: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            capacity,
            ready: Notify::new(),
        }
    }

    /// Adds `item` at the back; when the outbox was full, the oldest item is dropped to
    /// make room and returned.
    pub fn push(&self, item: T) -> Option<T> {
        let dropped = {
            let mut items = self.lock();
            let dropped = if items.len() >= self.capacity {
                items.pop_front()
            } else {
                None
            };
            items.push_back(item);
            dropped
        };
        // A permit is kept when the consumer is not waiting yet, so no wake-up is lost.
        self.ready.notify_one();
        dropped
    }

    /// The oldest item, waiting until there is one.
    pub async fn next(&self) -> T {
        loop {
            if let Some(item) = self.lock().pop_front() {
                return item;
            }
            self.ready.notified().await;
        }
    }

    /// How many items wait.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<T>> {
        self.items
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn items_come_out_in_the_order_they_went_in() {
        let outbox = Outbox::new(8);
        for i in 0..5 {
            assert_eq!(outbox.push(i), None);
        }
        let mut out = Vec::new();
        for _ in 0..5 {
            out.push(outbox.next().await);
        }
        assert_eq!(out, [0, 1, 2, 3, 4]);
        assert!(outbox.is_empty());
    }

    #[tokio::test]
    async fn a_full_outbox_drops_its_oldest_items_and_keeps_the_newest_in_order() {
        let outbox = Outbox::new(3);
        let dropped: Vec<Option<u32>> = (0..6).map(|i| outbox.push(i)).collect();
        assert_eq!(dropped, [None, None, None, Some(0), Some(1), Some(2)]);
        assert_eq!(outbox.len(), 3, "never more than its bound");
        let mut out = Vec::new();
        for _ in 0..3 {
            out.push(outbox.next().await);
        }
        assert_eq!(out, [3, 4, 5]);
    }

    #[tokio::test]
    async fn a_waiting_consumer_is_woken_by_a_push() {
        let outbox = Arc::new(Outbox::new(2));
        let consumer = tokio::spawn({
            let outbox = outbox.clone();
            async move { (outbox.next().await, outbox.next().await) }
        });
        tokio::task::yield_now().await;
        outbox.push("first");
        outbox.push("second");
        let got = tokio::time::timeout(Duration::from_secs(30), consumer)
            .await
            .expect("the consumer was woken")
            .expect("it did not panic");
        assert_eq!(got, ("first", "second"));
    }

    #[test]
    fn a_bound_of_zero_still_holds_one_item() {
        let outbox = Outbox::new(0);
        assert_eq!(outbox.push('a'), None);
        assert_eq!(outbox.push('b'), Some('a'));
        assert_eq!(outbox.len(), 1);
    }
}
