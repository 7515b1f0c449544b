//! The one way an engine emits: [`Emit`], the sending end of a bounded
//! tokio channel whose reader is the printers (or a controller, or a plan
//! that collects or discards the events). A full queue makes the engine
//! wait rather than grow memory; a reader that went away tells the engine
//! to stop ([`Stopped`]) instead of panicking.

use tokio::sync::mpsc;

/// Where an engine sends its events of type `E`. Cloning it gives another
/// sender on the same channel; the reader sees the end of the events once
/// every clone is dropped.
#[derive(Debug)]
pub struct Emit<E> {
    /// `None`: the events go nowhere ([`Emit::discard`]).
    tx: Option<mpsc::Sender<E>>,
}

impl<E> Clone for Emit<E> {
    fn clone(&self) -> Self {
        Emit {
            tx: self.tx.clone(),
        }
    }
}

/// The reader of the events is gone: nothing the engine does now will be
/// seen, so it should stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no one reads the events any more")]
pub struct Stopped;

impl<E> Emit<E> {
    /// A channel holding up to `queue` events between the engine and its reader.
    pub fn channel(queue: usize) -> (Emit<E>, mpsc::Receiver<E>) {
        let (tx, rx) = mpsc::channel(queue);
        (Emit { tx: Some(tx) }, rx)
    }

    /// A sender whose events are dropped at once and that never stops the
    /// engine: for a caller that wants only the engine's returned report.
    pub fn discard() -> Emit<E> {
        Emit { tx: None }
    }

    /// Hands `event` to the reader, waiting while its queue is full.
    pub async fn send(&self, event: E) -> Result<(), Stopped> {
        match &self.tx {
            Some(tx) => tx.send(event).await.map_err(|_| Stopped),
            None => Ok(()),
        }
    }

    /// The reader is gone (the engine should wind down).
    pub fn is_stopped(&self) -> bool {
        self.tx.as_ref().is_some_and(mpsc::Sender::is_closed)
    }
}

impl<E> From<mpsc::Sender<E>> for Emit<E> {
    fn from(tx: mpsc::Sender<E>) -> Self {
        Emit { tx: Some(tx) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_gone_reader_stops_the_engine_and_discard_never_does() {
        let (emit, mut rx) = Emit::channel(1);
        assert_eq!(emit.send(1).await, Ok(()));
        assert_eq!(rx.recv().await, Some(1));
        drop(rx);
        assert!(emit.is_stopped());
        assert_eq!(emit.send(2).await, Err(Stopped));
        let nowhere = Emit::discard();
        assert_eq!(nowhere.send(3).await, Ok(()));
        assert!(!nowhere.is_stopped());
    }
}
