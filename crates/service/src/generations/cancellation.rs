//! The in-process cancellation registry: a worker registers the job it runs, and a cancel
//! made in this process stops that worker at once rather than at its next heartbeat.
//! Workers in other processes still notice a cancel through their heartbeat.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use resonance_domain::GenerationId;
use tokio::sync::watch;

type Running = Arc<Mutex<HashMap<GenerationId, watch::Sender<bool>>>>;

/// Held by the server's state and its in-process workers; cheap to clone.
#[derive(Clone, Default)]
pub struct Cancellations {
    running: Running,
}

impl Cancellations {
    /// For the worker that runs `id`: resolves [`Registration::cancelled`] when the job is
    /// cancelled in this process, until the registration is dropped.
    pub fn register(&self, id: &GenerationId) -> Registration {
        let (sender, receiver) = watch::channel(false);
        self.lock().insert(id.clone(), sender);
        Registration {
            id: id.clone(),
            running: self.running.clone(),
            receiver,
        }
    }

    /// Tells the worker of this process running `id`, if any, to stop.
    pub fn cancel(&self, id: &GenerationId) {
        if let Some(sender) = self.lock().get(id) {
            let _ = sender.send(true);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<GenerationId, watch::Sender<bool>>> {
        self.running
            .lock()
            .expect("the cancellation map is never poisoned")
    }
}

/// A running job's entry in the registry; removed when dropped.
pub struct Registration {
    id: GenerationId,
    running: Running,
    receiver: watch::Receiver<bool>,
}

impl Registration {
    /// Resolves once the job is cancelled in this process; never otherwise.
    pub async fn cancelled(&mut self) {
        if self
            .receiver
            .wait_for(|cancelled| *cancelled)
            .await
            .is_err()
        {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut running) = self.running.lock()
            && running
                .get(&self.id)
                .is_some_and(|sender| sender.subscribe().same_channel(&self.receiver))
        {
            running.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_cancel_reaches_the_registered_job_only() {
        let cancellations = Cancellations::default();
        let id = GenerationId::new();
        let other = GenerationId::new();
        let mut running = cancellations.register(&id);
        let mut bystander = cancellations.register(&other);
        cancellations.cancel(&id);
        tokio::time::timeout(Duration::from_secs(1), running.cancelled())
            .await
            .expect("the cancelled job hears of it");
        let untouched =
            tokio::time::timeout(Duration::from_millis(50), bystander.cancelled()).await;
        assert!(untouched.is_err(), "another job is not cancelled");
    }

    #[test]
    fn a_finished_job_leaves_the_registry() {
        let cancellations = Cancellations::default();
        let id = GenerationId::new();
        drop(cancellations.register(&id));
        assert!(cancellations.lock().is_empty());
        cancellations.cancel(&id);
    }
}
