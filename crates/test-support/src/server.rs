//! [`RedisServer`]: one real `redis-server` process on a free port.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::resp::{Connection, Reply};
use crate::tls::IssuedCert;

/// How long a server may take to answer its first PING.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);
/// Read/write timeout of harness commands.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

static NEXT_ID: AtomicU32 = AtomicU32::new(0);

/// Path of the `redis-server` binary: `$NILECARE_REDIS_SERVER` or the first on `PATH`.
///
/// # Panics
/// When no binary is found, with instructions to install one.
pub fn redis_server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("NILECARE_REDIS_SERVER") {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("redis-server"))
            .find(|candidate| candidate.is_file())
    });
    match found {
        Some(path) => path,
        None => panic!(
            "redis-server was not found on PATH. The NileCare tests start real Redis servers.\n\
             Install it:  sudo apt-get install redis-server   (Debian/Ubuntu)\n\
             \x20            brew install redis                  (macOS)\n\
             or point NILECARE_REDIS_SERVER at a redis-server binary. scripts/test installs it \
             with apt-get when it can."
        ),
    }
}

/// A free TCP port on 127.0.0.1 (bound, then released). `accept` filters candidates.
pub(crate) fn free_port(accept: impl Fn(u16) -> bool) -> u16 {
    for _ in 0..200 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("cannot bind a free port on 127.0.0.1: {e}"));
        if accept(port) {
            return port;
        }
    }
    panic!("no acceptable free port found after 200 tries")
}

pub(crate) fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Options for [`RedisServer`]; start with [`RedisServer::builder`].
#[derive(Clone, Debug, Default)]
pub struct RedisServerBuilder {
    password: Option<String>,
    user: Option<(String, String)>,
    tls: Option<IssuedCert>,
    args: Vec<String>,
    cluster_bus_port: bool,
    config: Option<String>,
}

impl RedisServerBuilder {
    /// Require this password (`--requirepass`); [`RedisServer::url`] then includes it.
    #[must_use]
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Serve TLS too, with a certificate for `127.0.0.1` and `localhost` issued by `ca`:
    /// [`RedisServer::url`] becomes `rediss://` on the TLS port (the harness keeps a plain port
    /// for its own commands). Clients must trust [`TestCa::pem`](crate::TestCa::pem).
    #[must_use]
    pub fn tls(mut self, ca: &crate::TestCa) -> Self {
        self.tls = Some(ca.issue(&["127.0.0.1", "localhost"]));
        self
    }

    /// An ACL user with this password and every permission (`--user`); [`RedisServer::url`]
    /// then logs in as it (`redis://user:password@...`).
    #[must_use]
    pub fn acl_user(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.user = Some((user.into(), password.into()));
        self
    }

    /// An extra `redis-server` argument, e.g. `.arg("--maxmemory").arg("10mb")`.
    #[must_use]
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Starts the server with a configuration file holding `text` (written into the server's
    /// directory, writable: Sentinel rewrites its file).
    pub(crate) fn config_file(mut self, text: impl Into<String>) -> Self {
        self.config = Some(text.into());
        self
    }

    /// Pick a port whose cluster bus port (port + 10000) is free too.
    pub(crate) fn cluster_node(mut self) -> Self {
        self.cluster_bus_port = true;
        self.args.extend(
            [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
            ]
            .map(String::from),
        );
        self
    }

    /// Spawns the server and waits until it answers PING.
    ///
    /// # Panics
    /// When `redis-server` is missing or does not come up (the panic shows its log).
    pub fn start(self) -> RedisServer {
        let binary = redis_server_binary();
        let mut last_log = String::new();
        // A port can be taken between probing and binding; retry with another one.
        for _ in 0..5 {
            let cluster = self.cluster_bus_port;
            let port = free_port(|p| !cluster || (p <= 55_535 && port_is_free(p + 10_000)));
            let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("nilecare-redis-{}-{id}-{port}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
            let tls_port = self
                .tls
                .as_ref()
                .map(|_| free_port(|p| p != port && port_is_free(p)));
            let mut server = RedisServer {
                binary: binary.clone(),
                port,
                dir,
                password: self.password.clone(),
                user: self.user.clone(),
                tls: self.tls.clone().zip(tls_port),
                args: self.args.clone(),
                config: self.config.clone(),
                child: None,
            };
            match server.spawn_and_wait() {
                Ok(()) => return server,
                Err(log) => last_log = log,
            }
        }
        panic!("redis-server did not start after 5 attempts; last log:\n{last_log}")
    }
}

/// A real `redis-server` on a free port of 127.0.0.1, with persistence off
/// (`--save "" --appendonly no`: a restart loses the data, like a crash would).
///
/// Killed on drop, also when the test panics. Fault injection: [`kill`](Self::kill),
/// [`restart`](Self::restart) (same port), [`pause`](Self::pause) / [`resume`](Self::resume)
/// (SIGSTOP/SIGCONT: the server keeps its connections open but stops answering).
///
/// ```no_run
/// let server = nilecare_test_support::RedisServer::start();
/// let url = server.url(); // redis://127.0.0.1:<port>
/// # let _ = url;
/// ```
#[derive(Debug)]
pub struct RedisServer {
    binary: PathBuf,
    port: u16,
    dir: PathBuf,
    password: Option<String>,
    user: Option<(String, String)>,
    tls: Option<(IssuedCert, u16)>,
    args: Vec<String>,
    /// A configuration file's text, passed as the first argument.
    config: Option<String>,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server with default options.
    ///
    /// # Panics
    /// When `redis-server` is missing (with install instructions) or does not come up.
    pub fn start() -> Self {
        Self::builder().start()
    }

    /// Options (password, extra arguments).
    pub fn builder() -> RedisServerBuilder {
        RedisServerBuilder::default()
    }

    /// `redis://[:password@]127.0.0.1:<port>`; `rediss://` on the TLS port for a
    /// [`tls`](RedisServerBuilder::tls) server; `user:password@` for an
    /// [`acl_user`](RedisServerBuilder::acl_user).
    pub fn url(&self) -> String {
        let (scheme, port) = match &self.tls {
            Some((_, tls_port)) => ("rediss", *tls_port),
            None => ("redis", self.port),
        };
        match (&self.user, &self.password) {
            (Some((user, p)), _) => format!("{scheme}://{user}:{p}@127.0.0.1:{port}"),
            (None, Some(p)) => format!("{scheme}://:{p}@127.0.0.1:{port}"),
            (None, None) => format!("{scheme}://127.0.0.1:{port}"),
        }
    }

    /// The TLS port of a [`tls`](RedisServerBuilder::tls) server.
    pub fn tls_port(&self) -> Option<u16> {
        self.tls.as_ref().map(|(_, port)| *port)
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `true` while the process runs (also while paused).
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The server's working directory (log, cluster config).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }

    /// Kills the process (SIGKILL) and waits for it to exit. Data is gone; connections break.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), "-CONT"); // a stopped process must not linger
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server if it runs, then starts it again on the same port and waits for PING.
    ///
    /// # Panics
    /// When the server does not come back (the panic shows its log).
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn_and_wait() {
                Ok(()) => return,
                Err(log) if Instant::now() >= deadline => {
                    panic!("redis-server did not restart on port {}:\n{log}", self.port)
                }
                Err(_) => thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Freezes the process with SIGSTOP: TCP connections stay open, nothing is answered.
    pub fn pause(&self) {
        if let Some(child) = &self.child {
            signal(child.id(), "-STOP");
        }
    }

    /// Resumes a paused process with SIGCONT.
    pub fn resume(&self) {
        if let Some(child) = &self.child {
            signal(child.id(), "-CONT");
        }
    }

    /// Runs one command over a fresh connection and returns the reply, e.g.
    /// `server.command(&["DBSIZE"])`. For harness setup and assertions, not for the code under test.
    ///
    /// # Panics
    /// When the server cannot be reached or does not answer within 5 s.
    pub fn command<S: AsRef<[u8]>>(&self, args: &[S]) -> Reply {
        self.try_command(args)
            .unwrap_or_else(|e| panic!("command on redis-server {} failed: {e}", self.addr()))
    }

    /// How many times the server ran `command` (lower case, e.g. `"evalsha"`) since it started
    /// or since [`reset_stats`](Self::reset_stats), from `INFO commandstats`.
    ///
    /// # Panics
    /// When the server cannot be reached or answers something else than the `INFO` text.
    pub fn command_calls(&self, command: &str) -> u64 {
        let info = self
            .command(&["INFO", "commandstats"])
            .as_text()
            .unwrap_or_else(|| panic!("INFO commandstats on {} answered no text", self.addr()));
        let prefix = format!("cmdstat_{command}:calls=");
        info.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|rest| rest.split(',').next())
            .map_or(0, |n| {
                n.parse()
                    .unwrap_or_else(|_| panic!("unreadable INFO line for {command}: {n}"))
            })
    }

    /// Zeroes the server's statistics (`CONFIG RESETSTAT`), e.g. before counting
    /// [`command_calls`](Self::command_calls).
    ///
    /// # Panics
    /// When the server cannot be reached.
    pub fn reset_stats(&self) {
        self.command(&["CONFIG", "RESETSTAT"]);
    }

    pub(crate) fn try_command<S: AsRef<[u8]>>(&self, args: &[S]) -> std::io::Result<Reply> {
        let mut conn = Connection::open(&self.addr(), COMMAND_TIMEOUT)?;
        if let Some(p) = &self.password {
            conn.command(&["AUTH", p.as_str()])?;
        }
        conn.command(args)
    }

    /// Starts the process and waits for PING; on failure returns the log and leaves nothing running.
    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let log = self.dir.join("redis.log");
        let _ = fs::remove_file(&log);
        let mut cmd = Command::new(&self.binary);
        if let Some(text) = &self.config {
            let file = self.dir.join("redis.conf");
            // Written once: Sentinel keeps what it learned (the current primary) in its file,
            // and a restarted sentinel must read it back.
            if !file.exists() {
                fs::write(&file, text).map_err(|e| format!("write config: {e}"))?;
            }
            cmd.arg(&file);
        }
        cmd.arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&log)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(p) = &self.password {
            cmd.args(["--requirepass", p]);
        }
        if let Some((user, password)) = &self.user {
            let password = format!(">{password}");
            cmd.args(["--user", user, "on", &password, "~*", "&*", "+@all"]);
        }
        if let Some((cert, tls_port)) = &self.tls {
            let (cert_file, key_file) = (self.dir.join("server.crt"), self.dir.join("server.key"));
            fs::write(&cert_file, &cert.cert_pem).map_err(|e| format!("write cert: {e}"))?;
            fs::write(&key_file, &cert.key_pem).map_err(|e| format!("write key: {e}"))?;
            cmd.arg("--tls-port")
                .arg(tls_port.to_string())
                .arg("--tls-cert-file")
                .arg(&cert_file)
                .arg("--tls-key-file")
                .arg(&key_file)
                .args(["--tls-auth-clients", "no"]);
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.binary.display()))?;
        self.child = Some(child);

        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if !self.is_running() {
                self.child = None;
                return Err(self.log());
            }
            if let Ok(Reply::Status(s)) = self.try_command(&["PING"]) {
                // Make sure the PONG came from our process, not from a server that won a race
                // for the same port.
                let pid = self.pid().unwrap_or_default();
                let ours = self
                    .try_command(&["INFO", "server"])
                    .ok()
                    .and_then(|r| r.as_text())
                    .is_some_and(|info| info.contains(&format!("process_id:{pid}\r\n")));
                if s == "PONG" && ours {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(format!(
                    "no PONG within {STARTUP_TIMEOUT:?}\n{}",
                    self.log()
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Sends a signal with the `kill` utility (keeps the crate free of `unsafe`).
fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(sig)
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
