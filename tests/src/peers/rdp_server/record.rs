//! A list of things a peer observed (input events, layouts, clipboard texts) that the test
//! thread reads while the peer's own thread appends, with an async wait that polls nothing:
//! it wakes on each append and gives up at a deadline.

use anyhow::bail;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;

/// How long [`Recorded::wait_for`] waits by default.
pub const WAIT_DEADLINE: Duration = Duration::from_secs(10);

/// Items appended by a peer, readable and awaitable by tests.
#[derive(Debug)]
pub struct Recorded<T> {
    items: Mutex<Vec<T>>,
    changed: watch::Sender<u64>,
}

impl<T> Default for Recorded<T> {
    fn default() -> Self {
        Self {
            items: Mutex::new(Vec::new()),
            changed: watch::Sender::new(0),
        }
    }
}

impl<T: Clone> Recorded<T> {
    /// Appends `item` and wakes every waiter.
    pub fn push(&self, item: T) {
        self.lock().push(item);
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Everything recorded so far, oldest first.
    pub fn snapshot(&self) -> Vec<T> {
        self.lock().clone()
    }

    /// Forgets everything recorded so far (a test's "from now on").
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Waits up to [`WAIT_DEADLINE`] until `check` finds what it looks for in the items.
    pub async fn wait_for<R>(
        &self,
        what: &str,
        check: impl FnMut(&[T]) -> Option<R>,
    ) -> anyhow::Result<R>
    where
        T: std::fmt::Debug,
    {
        self.wait_for_within(WAIT_DEADLINE, what, check).await
    }

    /// [`Self::wait_for`] with its own deadline.
    pub async fn wait_for_within<R>(
        &self,
        deadline: Duration,
        what: &str,
        mut check: impl FnMut(&[T]) -> Option<R>,
    ) -> anyhow::Result<R>
    where
        T: std::fmt::Debug,
    {
        let until = tokio::time::Instant::now() + deadline;
        // Subscribed before the first look, so an append between the look and the wait
        // still wakes us.
        let mut changes = self.changed.subscribe();
        loop {
            if let Some(found) = check(&self.lock()) {
                return Ok(found);
            }
            if tokio::time::timeout_at(until, changes.changed())
                .await
                .is_err()
            {
                bail!(
                    "no {what} within {deadline:?}; recorded: {:?}",
                    self.snapshot()
                );
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<T>> {
        // A panicking test thread must not hide what was recorded from the others.
        self.items
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn wakes_on_a_later_push_and_times_out_otherwise() {
        let recorded = Arc::new(Recorded::<u32>::default());
        let writer = recorded.clone();
        let pusher = tokio::spawn(async move {
            tokio::task::yield_now().await;
            writer.push(1);
            writer.push(7);
        });
        let found = recorded
            .wait_for("a seven", |items| items.iter().position(|&i| i == 7))
            .await
            .expect("the seven arrives");
        assert_eq!(found, 1);
        pusher.await.expect("pusher");
        let missing = recorded
            .wait_for_within(Duration::from_millis(20), "a nine", |items| {
                items.contains(&9).then_some(())
            })
            .await;
        let message = missing.expect_err("no nine").to_string();
        assert!(message.contains("no a nine"), "{message}");
        assert!(message.contains("[1, 7]"), "{message}");
        recorded.clear();
        assert!(recorded.snapshot().is_empty());
    }
}
