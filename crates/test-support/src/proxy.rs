//! [`FaultProxy`]: a TCP proxy between a client and a server that can partition them without
//! killing anything: pass traffic, blackhole it (connections stay open, nothing arrives, as
//! when a network silently drops packets), or cut it (every connection closed, new ones closed
//! at once).

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

const PASS: u8 = 0;
const BLACKHOLE: u8 = 1;
const CUT: u8 = 2;

/// How often an idle pump looks at the mode.
const TICK: Duration = Duration::from_millis(10);

#[derive(Debug)]
struct State {
    mode: AtomicU8,
    /// Bumped by every cut: pumps of an older generation close their connection.
    generation: AtomicU64,
    stopped: AtomicBool,
}

/// A TCP proxy on a free port of 127.0.0.1 forwarding to `upstream`, with faults on demand.
/// Stopped (every connection closed) on drop.
///
/// ```no_run
/// let server = nilecare_test_support::RedisServer::start();
/// let proxy = nilecare_test_support::FaultProxy::start(&server.addr());
/// let url = proxy.url(); // give this to the instance to partition
/// proxy.blackhole();     // silent partition: connections open, nothing answered
/// proxy.heal();          // traffic flows again (what was sent meanwhile arrives now)
/// proxy.cut();           // every connection closed; reconnects closed at once until heal
/// # let _ = url;
/// ```
#[derive(Debug)]
pub struct FaultProxy {
    port: u16,
    state: Arc<State>,
}

impl FaultProxy {
    /// Starts forwarding a free local port to `upstream` (`host:port`).
    ///
    /// # Panics
    /// When no local port can be bound.
    pub fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("cannot bind the fault proxy: {e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("fault proxy listener: {e}"));
        let state = Arc::new(State {
            mode: AtomicU8::new(PASS),
            generation: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
        });
        let accept_state = state.clone();
        let upstream = upstream.to_owned();
        thread::spawn(move || accept_loop(&listener, &upstream, &accept_state));
        FaultProxy { port, state }
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `redis://127.0.0.1:<port>`: the upstream Redis seen through the proxy.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr())
    }

    /// Silent partition: connections stay open, nothing is forwarded either way (bytes wait
    /// as a partitioned network's retransmissions would), new connections are accepted and
    /// hang the same way.
    pub fn blackhole(&self) {
        self.state.mode.store(BLACKHOLE, Ordering::SeqCst);
    }

    /// Cuts every connection; connections made until [`heal`](Self::heal) are closed at once.
    pub fn cut(&self) {
        self.state.generation.fetch_add(1, Ordering::SeqCst);
        self.state.mode.store(CUT, Ordering::SeqCst);
    }

    /// Traffic flows again.
    pub fn heal(&self) {
        self.state.mode.store(PASS, Ordering::SeqCst);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.state.stopped.store(true, Ordering::SeqCst);
        self.state.generation.fetch_add(1, Ordering::SeqCst);
    }
}

fn accept_loop(listener: &TcpListener, upstream: &str, state: &Arc<State>) {
    while !state.stopped.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                if state.mode.load(Ordering::SeqCst) == CUT {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let generation = state.generation.load(Ordering::SeqCst);
                for (from, to) in [(&client, &server), (&server, &client)] {
                    let (Ok(from), Ok(to)) = (from.try_clone(), to.try_clone()) else {
                        continue;
                    };
                    let state = state.clone();
                    thread::spawn(move || pump(from, to, &state, generation));
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(TICK),
            Err(_) => thread::sleep(TICK),
        }
    }
}

/// Copies `from` to `to` while the mode allows; closes both when cut or stopped. Bytes read
/// just as a blackhole starts are held back and sent when it ends (as a partitioned network's
/// retransmissions would arrive), never before.
fn pump(mut from: TcpStream, mut to: TcpStream, state: &State, generation: u64) {
    let _ = from.set_read_timeout(Some(TICK));
    let mut buffer = [0u8; 16 * 1024];
    let mut held: Vec<u8> = Vec::new();
    loop {
        if state.generation.load(Ordering::SeqCst) != generation {
            break;
        }
        if state.mode.load(Ordering::SeqCst) == BLACKHOLE {
            thread::sleep(TICK);
            continue;
        }
        if !held.is_empty() {
            if to.write_all(&held).is_err() {
                break;
            }
            held.clear();
        }
        match from.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                if state.mode.load(Ordering::SeqCst) == BLACKHOLE {
                    held.extend_from_slice(&buffer[..n]);
                } else if to.write_all(&buffer[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
