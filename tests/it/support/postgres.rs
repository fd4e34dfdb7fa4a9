//! A real PostgreSQL server (Debian's, installed by `make test`) on a
//! temporary directory and a free port, initialised with `initdb` and run
//! with `pg_ctl`; stopped and removed when dropped. As root, the server runs
//! as the `postgres` user (PostgreSQL refuses to run as root).

use super::{free_port, wait_until};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// `pg_ctl`'s arguments to stop the server at once.
const STOP: [&str; 4] = ["-m", "immediate", "-w", "stop"];

pub(crate) struct Postgres {
    pub(crate) port: u16,
    dir: PathBuf,
    as_postgres: bool,
}

/// Where Debian puts the server's programs.
fn pg_bin(name: &str) -> PathBuf {
    let versions = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
        .unwrap_or_default();
    versions
        .into_iter()
        .map(|v| v.join("bin").join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl Postgres {
    fn command(&self, program: &str) -> Command {
        let bin = pg_bin(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(bin);
            c
        } else {
            Command::new(bin)
        }
    }

    pub(crate) async fn start() -> Postgres {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("portico-pg-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("pg dir");
        let pg = Postgres {
            port,
            dir,
            as_postgres: is_root(),
        };
        if pg.as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&pg.dir)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown the data directory to postgres");
        }
        let data = pg.dir.join("data");
        let out = pg
            .command("initdb")
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .output()
            .expect("initdb not found: `make test` installs postgresql");
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        pg.run_server().await;
        pg
    }

    /// Starts the server on its data directory and port; waits until it
    /// accepts connections.
    async fn run_server(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log").display().to_string();
        self.pg_ctl(&["-o", &opts, "-l", &log, "-w", "-t", "60", "start"]);
        let port = self.port;
        wait_until("postgres accepts connections", Duration::from_secs(30), || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
        })
        .await;
    }

    /// Runs `pg_ctl -D <data> args`; panics with its error when it fails.
    fn pg_ctl(&self, args: &[&str]) {
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(args)
            .output()
            .expect("pg_ctl");
        assert!(
            out.status.success(),
            "pg_ctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server at once (its connections are cut), keeping its data.
    pub(crate) fn stop(&self) {
        self.pg_ctl(&STOP);
    }

    /// Starts the stopped server again, on the same port and data.
    pub(crate) async fn start_again(&self) {
        self.run_server().await;
    }

    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(STOP)
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
