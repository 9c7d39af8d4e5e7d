//! The server: one accept thread, and one thread per open connection (capped;
//! over the cap a client gets 503 and is closed). Shutdown stops accepting,
//! closes idle connections, and waits for the requests being answered.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::http::conn::{self, Shared};
use crate::http::errors::ApiError;
use crate::http::open::{Open, Refused};

/// How long the accept thread waits for a refused (over the cap) client's request.
const BUSY_LINGER: Duration = Duration::from_millis(50);

/// The running server.
pub(crate) struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts accepting on `listener`.
    pub fn start(listener: TcpListener, shared: Shared) -> std::io::Result<Server> {
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(shared);
        let (s, sh) = (stop.clone(), shared.clone());
        let acceptor = thread::Builder::new()
            .name("jobq-http-accept".into())
            .spawn(move || accept_loop(&listener, &s, &sh))?;
        Ok(Server {
            addr,
            stop,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, closes idle connections, and waits until the requests
    /// being answered are answered and their connections closed.
    pub fn shutdown(&mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        let _ = acceptor.join();
        self.shared.open.close_all();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept_loop(listener: &TcpListener, stop: &AtomicBool, shared: &Arc<Shared>) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let client = match conn {
            Ok(c) => c,
            Err(e) => {
                log::warn!("accept failed: {e}");
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if let Err(e) = admit(client, shared) {
            log::warn!("could not serve a connection: {e}");
        }
    }
}

/// Registers the connection and starts its thread, or answers 503 when full.
fn admit(client: TcpStream, shared: &Arc<Shared>) -> std::io::Result<()> {
    client.set_nodelay(true)?;
    client.set_write_timeout(Some(shared.limits.read_timeout))?;
    let id = match shared.open.admit(client.try_clone()?) {
        Ok(id) => id,
        Err(Refused::Full) => {
            let busy = ApiError::new(503, "too_many_connections", "too many open connections")
                .with_header("Retry-After", "1");
            conn::refuse(shared, &client, &busy, BUSY_LINGER);
            return Ok(());
        }
        Err(Refused::Stopping) => return Ok(()),
    };
    let sh = shared.clone();
    let spawned = thread::Builder::new()
        .name("jobq-http-conn".into())
        .spawn(move || {
            let _leave = Leave(&sh.open, id);
            conn::serve(&sh, id, &client);
        });
    if let Err(e) = spawned {
        shared.open.leave(id);
        return Err(e);
    }
    Ok(())
}

/// Forgets a connection when its thread ends, however it ends.
struct Leave<'a>(&'a Open, u64);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.leave(self.1);
    }
}
