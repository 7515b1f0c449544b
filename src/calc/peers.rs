//! Who holds the calculator server's TCP connections: a count per peer
//! address (capped, so that one host cannot take every slot) and, for the
//! connections being served, whether each is idle, so that a full server
//! can reclaim the longest-idle connection of the address holding the most
//! and hand its slot to a newcomer from another address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, oneshot};
use tokio_util::sync::CancellationToken;

/// Every connection accepted and not yet closed, serving or waiting for a
/// slot.
#[derive(Debug)]
pub struct Peers {
    max_per_address: usize,
    epoch: Instant,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    per_address: HashMap<IpAddr, usize>,
    serving: HashMap<u64, Arc<Slot>>,
}

/// A connection being served, as the reclaimer sees it.
#[derive(Debug)]
pub struct Slot {
    address: IpAddr,
    /// Milliseconds since the epoch, plus one, since the connection went
    /// idle; 0 while a request is in progress.
    idle_since: AtomicU64,
    /// Fires when the server wants the slot back (the connection closes at
    /// once if idle, else when its request is answered).
    pub reclaimed: CancellationToken,
    /// Who gets the slot once this connection has closed.
    handoff: Mutex<Option<oneshot::Sender<OwnedSemaphorePermit>>>,
}

impl Slot {
    /// Marks the connection idle (no request in progress) or busy.
    pub fn set_idle(&self, idle: bool, peers: &Peers) {
        let value = if idle {
            peers.epoch.elapsed().as_millis() as u64 + 1
        } else {
            0
        };
        self.idle_since.store(value, Ordering::Relaxed);
    }

    /// Gives `permit` to the newcomer this connection was reclaimed for,
    /// if any (else it returns to the pool when dropped).
    pub fn hand_over(&self, permit: OwnedSemaphorePermit) {
        let to = self.handoff.lock().ok().and_then(|mut h| h.take());
        if let Some(to) = to {
            let _ = to.send(permit);
        }
    }
}

/// One accepted connection's place in [`Peers`]; dropping it releases it.
#[derive(Debug)]
pub struct Entry {
    peers: Arc<Peers>,
    id: u64,
    address: IpAddr,
}

impl Drop for Entry {
    fn drop(&mut self) {
        let Ok(mut inner) = self.peers.inner.lock() else {
            return;
        };
        inner.serving.remove(&self.id);
        if let Some(n) = inner.per_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                inner.per_address.remove(&self.address);
            }
        }
    }
}

impl Peers {
    pub fn new(max_per_address: usize) -> Arc<Peers> {
        Arc::new(Peers {
            max_per_address: max_per_address.max(1),
            epoch: Instant::now(),
            inner: Mutex::new(Inner::default()),
        })
    }

    /// Counts a connection from `address`, or `Err` with how many it holds
    /// already when that is the cap.
    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Result<Entry, usize> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let held = inner.per_address.entry(address).or_insert(0);
        if *held >= self.max_per_address {
            return Err(*held);
        }
        *held += 1;
        inner.next += 1;
        Ok(Entry {
            peers: Arc::clone(self),
            id: inner.next,
            address,
        })
    }

    /// The connection of `entry` is being served now (it holds a slot).
    pub fn serving(&self, entry: &Entry) -> Arc<Slot> {
        let slot = Arc::new(Slot {
            address: entry.address,
            idle_since: AtomicU64::new(0),
            reclaimed: CancellationToken::new(),
            handoff: Mutex::new(None),
        });
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.serving.insert(entry.id, Arc::clone(&slot));
        slot
    }

    /// The server is full and a connection from `address` waits: asks the
    /// longest-idle connection of the address holding the most connections
    /// (another address, holding more than `address` does) to close, and
    /// returns where its slot will arrive. `None`: no such connection (the
    /// newcomer waits for a slot as before; a host is never evicted to let
    /// in another connection of its own).
    pub fn reclaim_for(&self, address: IpAddr) -> Option<oneshot::Receiver<OwnedSemaphorePermit>> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let own = inner.per_address.get(&address).copied().unwrap_or(0);
        let victim = inner
            .serving
            .values()
            .filter(|s| s.address != address && !s.reclaimed.is_cancelled())
            .filter_map(|s| {
                let idle = s.idle_since.load(Ordering::Relaxed);
                let held = inner.per_address.get(&s.address).copied().unwrap_or(0);
                (idle != 0 && held > own).then_some((held, std::cmp::Reverse(idle), s))
            })
            .max_by_key(|(held, idle, _)| (*held, *idle))
            .map(|(_, _, s)| Arc::clone(s))?;
        drop(inner);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut h) = victim.handoff.lock() {
            *h = Some(tx);
        }
        victim.reclaimed.cancel();
        Some(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn one_address_is_capped_and_released_on_drop() {
        let peers = Peers::new(2);
        let a = peers.admit(ip("10.0.0.1")).expect("first");
        let _b = peers.admit(ip("10.0.0.1")).expect("second");
        assert_eq!(peers.admit(ip("10.0.0.1")).map(|_| ()), Err(2));
        let _other = peers.admit(ip("10.0.0.2")).expect("another address");
        drop(a);
        peers.admit(ip("10.0.0.1")).expect("room again");
    }

    #[test]
    fn the_heaviest_address_gives_up_its_longest_idle_connection() {
        let peers = Peers::new(10);
        let hog: Vec<Entry> = (0..3)
            .map(|_| peers.admit(ip("10.0.0.1")).expect("hog"))
            .collect();
        let slots: Vec<Arc<Slot>> = hog.iter().map(|e| peers.serving(e)).collect();
        let light = peers.admit(ip("10.0.0.2")).expect("light");
        let light_slot = peers.serving(&light);
        light_slot.set_idle(true, &peers);
        let _newcomer = peers.admit(ip("10.0.0.3")).expect("newcomer");
        // Busy connections are not reclaimed, nor those of an address
        // holding no more than the newcomer's.
        assert!(peers.reclaim_for(ip("10.0.0.3")).is_none());
        slots[1].set_idle(true, &peers);
        assert!(peers.reclaim_for(ip("10.0.0.3")).is_some());
        assert!(slots[1].reclaimed.is_cancelled());
        assert!(!light_slot.reclaimed.is_cancelled());
        // Never for a connection of the same address.
        slots[2].set_idle(true, &peers);
        assert!(peers.reclaim_for(ip("10.0.0.1")).is_none());
    }
}
