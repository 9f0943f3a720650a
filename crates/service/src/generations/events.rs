//! The in-process job event hub: a streaming request subscribes to a generation before
//! queueing it, and the worker of this process that runs the job publishes its audio chunk
//! by chunk, so that the first sentence can be sent while the rest is still synthesized.
//! Workers in other processes publish nothing; subscribers then fall back to the stored
//! audio once the job has finished (see [`Subscription::is_claimed`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use resonance_domain::GenerationId;
use tokio::sync::mpsc;

/// What a subscriber hears about one job, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum JobEvent {
    /// Samples at the engine's rate that follow the previous ones; together they are
    /// exactly the stored audio.
    Audio(Vec<f32>),
    /// The job succeeded and its audio is stored; nothing follows.
    Succeeded,
    /// The job failed with this reason for the user; nothing follows.
    Failed(String),
}

type Senders = Arc<Mutex<HashMap<GenerationId, mpsc::UnboundedSender<JobEvent>>>>;

/// Held by the server's state and its in-process workers; cheap to clone.
#[derive(Clone, Default)]
pub struct JobEvents {
    senders: Senders,
}

impl JobEvents {
    /// Subscribes to the events of the generation `id`, which is not queued yet.
    pub fn subscribe(&self, id: &GenerationId) -> Subscription {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.lock().insert(id.clone(), sender);
        Subscription {
            id: id.clone(),
            senders: self.senders.clone(),
            receiver,
        }
    }

    /// For the worker that claimed `id`: where to publish its events, if someone listens.
    pub fn claim(&self, id: &GenerationId) -> Option<Publisher> {
        self.lock().remove(id).map(|sender| Publisher { sender })
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<GenerationId, mpsc::UnboundedSender<JobEvent>>> {
        self.senders
            .lock()
            .expect("the job event map is never poisoned")
    }
}

/// One job's events; unsubscribes when dropped.
pub struct Subscription {
    id: GenerationId,
    senders: Senders,
    receiver: mpsc::UnboundedReceiver<JobEvent>,
}

impl Subscription {
    /// The next event; `None` once the publisher is gone (the job ended or its worker lost
    /// it) or, while [`is_claimed`](Self::is_claimed) is false, never.
    pub async fn next(&mut self) -> Option<JobEvent> {
        self.receiver.recv().await
    }

    /// Whether a worker of this process has taken the job; while not, a worker elsewhere
    /// may run it and only the database tells when it has finished.
    pub fn is_claimed(&self) -> bool {
        !self
            .senders
            .lock()
            .expect("the job event map is never poisoned")
            .contains_key(&self.id)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Ok(mut senders) = self.senders.lock() {
            senders.remove(&self.id);
        }
    }
}

/// The worker's end of a subscription. Sending never blocks; a subscriber that went away
/// is ignored.
pub struct Publisher {
    sender: mpsc::UnboundedSender<JobEvent>,
}

impl Publisher {
    pub fn publish(&self, event: JobEvent) {
        let _ = self.sender.send(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_claiming_worker_reaches_the_subscriber() {
        let events = JobEvents::default();
        let id = GenerationId::new();
        let mut subscription = events.subscribe(&id);
        assert!(!subscription.is_claimed());
        let publisher = events.claim(&id).expect("someone listens");
        assert!(subscription.is_claimed());
        assert!(events.claim(&id).is_none(), "a job is claimed once");
        publisher.publish(JobEvent::Audio(vec![0.5; 3]));
        publisher.publish(JobEvent::Succeeded);
        drop(publisher);
        assert_eq!(
            subscription.next().await,
            Some(JobEvent::Audio(vec![0.5; 3]))
        );
        assert_eq!(subscription.next().await, Some(JobEvent::Succeeded));
        assert_eq!(subscription.next().await, None);
    }

    #[test]
    fn dropping_the_subscription_unsubscribes() {
        let events = JobEvents::default();
        let id = GenerationId::new();
        drop(events.subscribe(&id));
        assert!(events.claim(&id).is_none());
    }
}
