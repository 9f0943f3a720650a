//! The in-process job event hub: listeners subscribe to a generation, before it is queued
//! or at any time while the worker of this process runs it, and that worker publishes its
//! audio chunk by chunk, so that the first sentence can be heard while the rest is still
//! synthesized. A listener that joins late first gets everything published so far, then
//! the rest as it comes; the hub keeps a running job's samples for that and frees them when
//! the job ends. Workers in other processes publish nothing; subscribers then fall back to
//! the stored audio once the job has finished (see [`Subscription::is_claimed`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

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

struct Listener {
    id: u64,
    sender: mpsc::UnboundedSender<JobEvent>,
    claimed: Arc<AtomicBool>,
}

/// One job's listeners and, once this process's worker runs it, what it published so far.
#[derive(Default)]
struct Job {
    listeners: Vec<Listener>,
    /// The run of the worker that claimed the job; `None` while no worker of this process
    /// has.
    run: Option<u64>,
    published: Vec<f32>,
}

#[derive(Default)]
struct Hub {
    jobs: HashMap<GenerationId, Job>,
    next_id: AtomicU64,
}

impl Hub {
    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// Held by the server's state and its in-process workers; cheap to clone.
#[derive(Clone, Default)]
pub struct JobEvents {
    hub: Arc<Mutex<Hub>>,
}

impl JobEvents {
    /// Subscribes to the events of the generation `id`: one not queued yet, or one that
    /// this process's worker may be running (then the audio published so far comes first,
    /// as one piece).
    pub fn subscribe(&self, id: &GenerationId) -> Subscription {
        let (sender, receiver) = mpsc::unbounded_channel();
        let mut hub = lock(&self.hub);
        let listener = hub.next_id();
        let job = hub.jobs.entry(id.clone()).or_default();
        let claimed = Arc::new(AtomicBool::new(job.run.is_some()));
        if !job.published.is_empty() {
            let _ = sender.send(JobEvent::Audio(job.published.clone()));
        }
        job.listeners.push(Listener {
            id: listener,
            sender,
            claimed: claimed.clone(),
        });
        Subscription {
            id: id.clone(),
            listener,
            claimed,
            hub: self.hub.clone(),
            receiver,
        }
    }

    /// For the worker that claimed `id`: where to publish its events, for the listeners
    /// there are now and those that come while it runs.
    pub fn claim(&self, id: &GenerationId) -> Publisher {
        let mut hub = lock(&self.hub);
        let run = hub.next_id();
        let job = hub.jobs.entry(id.clone()).or_default();
        if job.run.is_some() {
            // A run this process lost: what its listeners heard cannot be continued.
            job.listeners.clear();
        }
        job.run = Some(run);
        job.published.clear();
        for listener in &job.listeners {
            listener.claimed.store(true, Ordering::Relaxed);
        }
        Publisher {
            id: id.clone(),
            run,
            hub: self.hub.clone(),
        }
    }

    /// How many jobs the hub holds anything for (listeners or published audio).
    pub fn jobs(&self) -> usize {
        lock(&self.hub).jobs.len()
    }

    /// How many subscriptions to `id` there are.
    pub fn listeners(&self, id: &GenerationId) -> usize {
        lock(&self.hub)
            .jobs
            .get(id)
            .map_or(0, |job| job.listeners.len())
    }
}

fn lock(hub: &Mutex<Hub>) -> MutexGuard<'_, Hub> {
    hub.lock().expect("the job event hub is never poisoned")
}

/// One job's events; unsubscribes when dropped (the job runs on).
pub struct Subscription {
    id: GenerationId,
    listener: u64,
    claimed: Arc<AtomicBool>,
    hub: Arc<Mutex<Hub>>,
    receiver: mpsc::UnboundedReceiver<JobEvent>,
}

impl Subscription {
    /// The next event; `None` once the publisher is gone (the job ended or its worker lost
    /// it) or, while [`is_claimed`](Self::is_claimed) is false, never.
    pub async fn next(&mut self) -> Option<JobEvent> {
        self.receiver.recv().await
    }

    /// Whether a worker of this process has taken the job since this subscription began;
    /// while not, a worker elsewhere may run it (or has already finished it) and only the
    /// database tells when it has finished.
    pub fn is_claimed(&self) -> bool {
        self.claimed.load(Ordering::Relaxed)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let Ok(mut hub) = self.hub.lock() else { return };
        if let Some(job) = hub.jobs.get_mut(&self.id) {
            job.listeners
                .retain(|listener| listener.id != self.listener);
            if job.run.is_none() && job.listeners.is_empty() {
                hub.jobs.remove(&self.id);
            }
        }
    }
}

/// The worker's end: sending never blocks, and a listener that went away is ignored. The
/// job's published audio is freed when it has succeeded or failed, or when this is
/// dropped (the worker lost the job; its listeners then hear nothing more).
pub struct Publisher {
    id: GenerationId,
    run: u64,
    hub: Arc<Mutex<Hub>>,
}

impl Publisher {
    pub fn publish(&self, event: JobEvent) {
        let mut hub = lock(&self.hub);
        let Some(job) = hub
            .jobs
            .get_mut(&self.id)
            .filter(|job| job.run == Some(self.run))
        else {
            return;
        };
        job.listeners
            .retain(|listener| listener.sender.send(event.clone()).is_ok());
        match event {
            JobEvent::Audio(samples) => job.published.extend_from_slice(&samples),
            JobEvent::Succeeded | JobEvent::Failed(_) => {
                // Later subscribers find the job finished in the database.
                hub.jobs.remove(&self.id);
            }
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let Ok(mut hub) = self.hub.lock() else { return };
        if hub
            .jobs
            .get(&self.id)
            .is_some_and(|job| job.run == Some(self.run))
        {
            hub.jobs.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn all(subscription: &mut Subscription) -> Vec<JobEvent> {
        let mut events = Vec::new();
        while let Some(event) = subscription.next().await {
            events.push(event);
        }
        events
    }

    #[tokio::test]
    async fn the_claiming_worker_reaches_the_subscriber() {
        let events = JobEvents::default();
        let id = GenerationId::new();
        let mut subscription = events.subscribe(&id);
        assert!(!subscription.is_claimed());
        let publisher = events.claim(&id);
        assert!(subscription.is_claimed());
        publisher.publish(JobEvent::Audio(vec![0.5; 3]));
        publisher.publish(JobEvent::Succeeded);
        assert!(subscription.is_claimed(), "a claim is never forgotten");
        drop(publisher);
        assert_eq!(
            all(&mut subscription).await,
            [JobEvent::Audio(vec![0.5; 3]), JobEvent::Succeeded]
        );
    }

    #[tokio::test]
    async fn a_late_listener_hears_what_was_published_then_the_rest() {
        let events = JobEvents::default();
        let id = GenerationId::new();
        let mut early = events.subscribe(&id);
        let publisher = events.claim(&id);
        publisher.publish(JobEvent::Audio(vec![0.1; 2]));
        publisher.publish(JobEvent::Audio(vec![0.2; 3]));
        let mut late = events.subscribe(&id);
        assert!(late.is_claimed());
        publisher.publish(JobEvent::Audio(vec![0.3]));
        let mut later = events.subscribe(&id);
        publisher.publish(JobEvent::Succeeded);
        drop(publisher);
        assert_eq!(
            all(&mut early).await,
            [
                JobEvent::Audio(vec![0.1; 2]),
                JobEvent::Audio(vec![0.2; 3]),
                JobEvent::Audio(vec![0.3]),
                JobEvent::Succeeded
            ]
        );
        assert_eq!(
            all(&mut late).await,
            [
                JobEvent::Audio(vec![0.1, 0.1, 0.2, 0.2, 0.2]),
                JobEvent::Audio(vec![0.3]),
                JobEvent::Succeeded
            ]
        );
        assert_eq!(
            all(&mut later).await,
            [
                JobEvent::Audio(vec![0.1, 0.1, 0.2, 0.2, 0.2, 0.3]),
                JobEvent::Succeeded
            ]
        );
    }

    #[tokio::test]
    async fn a_job_nobody_listened_to_can_be_joined_while_it_runs() {
        let events = JobEvents::default();
        let id = GenerationId::new();
        let publisher = events.claim(&id);
        publisher.publish(JobEvent::Audio(vec![0.5; 2]));
        let mut late = events.subscribe(&id);
        publisher.publish(JobEvent::Failed("the engine failed".into()));
        assert_eq!(
            all(&mut late).await,
            [
                JobEvent::Audio(vec![0.5; 2]),
                JobEvent::Failed("the engine failed".into())
            ]
        );
    }

    #[tokio::test]
    async fn a_finished_job_is_forgotten_and_a_listener_after_it_is_never_claimed() {
        let events = JobEvents::default();
        let id = GenerationId::new();
        let publisher = events.claim(&id);
        publisher.publish(JobEvent::Audio(vec![0.5; 2]));
        publisher.publish(JobEvent::Succeeded);
        assert_eq!(events.jobs(), 0, "the samples are freed");
        let after = events.subscribe(&id);
        drop(publisher);
        assert!(!after.is_claimed());
        drop(after);
        assert_eq!(events.jobs(), 0);
    }

    #[tokio::test]
    async fn a_lost_job_ends_its_listeners_streams_and_is_forgotten() {
        let events = JobEvents::default();
        let id = GenerationId::new();
        let publisher = events.claim(&id);
        let mut listener = events.subscribe(&id);
        publisher.publish(JobEvent::Audio(vec![0.5]));
        drop(publisher);
        assert_eq!(events.jobs(), 0);
        assert_eq!(all(&mut listener).await, [JobEvent::Audio(vec![0.5])]);
    }

    #[test]
    fn a_listener_leaving_neither_stops_the_job_nor_the_others() {
        let events = JobEvents::default();
        let id = GenerationId::new();
        let leaving = events.subscribe(&id);
        let staying = events.subscribe(&id);
        drop(leaving);
        let publisher = events.claim(&id);
        assert!(staying.is_claimed());
        assert_eq!(events.listeners(&id), 1);
        drop(staying);
        assert_eq!(events.listeners(&id), 0);
        publisher.publish(JobEvent::Audio(vec![0.5]));
        assert_eq!(events.jobs(), 1, "the running job keeps its audio");
    }

    #[test]
    fn dropping_the_only_subscription_of_a_waiting_job_forgets_it() {
        let events = JobEvents::default();
        let id = GenerationId::new();
        drop(events.subscribe(&id));
        assert_eq!(events.jobs(), 0);
    }
}
