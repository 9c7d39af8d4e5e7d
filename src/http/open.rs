//! The open client connections: counted against the cap, marked busy while a
//! request is answered, closed at shutdown once idle; and the permits that cap
//! how many requests are answered at once.

use std::collections::HashMap;
use std::net::{Shutdown, TcpStream};
use std::sync::{Condvar, Mutex, MutexGuard};

/// One open connection.
struct Conn {
    /// A handle on the socket, to close it at shutdown.
    stream: TcpStream,
    /// A whole request was read and is being answered.
    busy: bool,
}

#[derive(Default)]
struct State {
    stopping: bool,
    next: u64,
    conns: HashMap<u64, Conn>,
}

/// Why a connection was not registered.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// As many connections as allowed are open.
    Full,
    /// The server is shutting down.
    Stopping,
}

/// The registry of open connections.
pub(crate) struct Open {
    max: usize,
    state: Mutex<State>,
    emptied: Condvar,
}

impl Open {
    /// A registry that admits at most `max` connections at once.
    pub fn new(max: usize) -> Open {
        Open {
            max: max.max(1),
            state: Mutex::default(),
            emptied: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a connection (keeping `handle` to close it at shutdown).
    ///
    /// # Errors
    /// [`Refused`] when full or shutting down.
    pub fn admit(&self, handle: TcpStream) -> Result<u64, Refused> {
        let mut s = self.lock();
        if s.stopping {
            return Err(Refused::Stopping);
        }
        if s.conns.len() >= self.max {
            return Err(Refused::Full);
        }
        s.next += 1;
        let id = s.next;
        let conn = Conn {
            stream: handle,
            busy: false,
        };
        s.conns.insert(id, conn);
        Ok(id)
    }

    /// Marks `id` busy before its request is answered; false when shutting
    /// down (the request is then dropped unanswered, never half done).
    pub fn begin(&self, id: u64) -> bool {
        let mut s = self.lock();
        if s.stopping {
            return false;
        }
        if let Some(c) = s.conns.get_mut(&id) {
            c.busy = true;
        }
        true
    }

    /// Marks `id` idle after its answer; false when shutting down.
    pub fn end(&self, id: u64) -> bool {
        let mut s = self.lock();
        if let Some(c) = s.conns.get_mut(&id) {
            c.busy = false;
        }
        !s.stopping
    }

    /// Whether shutdown has begun.
    pub fn stopping(&self) -> bool {
        self.lock().stopping
    }

    /// Forgets `id` once its thread is done with it.
    pub fn leave(&self, id: u64) {
        let mut s = self.lock();
        s.conns.remove(&id);
        if s.conns.is_empty() {
            self.emptied.notify_all();
        }
    }

    /// Refuses new connections and requests, closes the idle connections, and
    /// waits until the busy ones have answered and closed too.
    pub fn close_all(&self) {
        let mut s = self.lock();
        s.stopping = true;
        for c in s.conns.values().filter(|c| !c.busy) {
            let _ = c.stream.shutdown(Shutdown::Both);
        }
        while !s.conns.is_empty() {
            s = self.emptied.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// A counting semaphore: how many requests are answered at once.
pub(crate) struct Permits {
    free: Mutex<usize>,
    freed: Condvar,
}

/// A taken permit; dropping it gives it back.
pub(crate) struct Permit<'a>(&'a Permits);

impl Permits {
    /// `n` permits (at least 1).
    pub fn new(n: usize) -> Permits {
        Permits {
            free: Mutex::new(n.max(1)),
            freed: Condvar::new(),
        }
    }

    /// Waits for a free permit and takes it.
    pub fn take(&self) -> Permit<'_> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= 1;
        Permit(self)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        (client, l.accept().unwrap().0)
    }

    #[test]
    fn the_cap_refuses_and_a_leave_frees_a_slot() {
        let open = Open::new(1);
        let (_c1, s1) = pair();
        let (_c2, s2) = pair();
        let id = open.admit(s1).unwrap();
        assert_eq!(open.admit(s2.try_clone().unwrap()), Err(Refused::Full));
        open.leave(id);
        assert!(open.admit(s2).is_ok());
    }

    #[test]
    fn shutdown_closes_idle_connections_and_refuses_new_requests() {
        let open = std::sync::Arc::new(Open::new(4));
        let (mut idle_client, idle) = pair();
        let (_busy_client, busy) = pair();
        let idle_id = open.admit(idle).unwrap();
        let busy_id = open.admit(busy).unwrap();
        assert!(open.begin(busy_id));
        let closer = {
            let open = open.clone();
            std::thread::spawn(move || open.close_all())
        };
        let mut buf = [0u8; 1];
        assert_eq!(idle_client.read(&mut buf).unwrap(), 0, "idle one closed");
        assert!(!open.begin(idle_id), "no new request once stopping");
        assert!(!open.end(busy_id), "the busy one closes after its answer");
        open.leave(idle_id);
        open.leave(busy_id);
        closer.join().unwrap();
        let (_c, s) = pair();
        assert_eq!(open.admit(s), Err(Refused::Stopping));
    }

    #[test]
    fn permits_are_given_back() {
        let permits = Permits::new(1);
        drop(permits.take());
        let _again = permits.take();
        assert_eq!(*permits.free.lock().unwrap(), 0);
    }
}
