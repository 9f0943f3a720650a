//! A fresh, empty PostgreSQL database for each test.
//!
//! With `DATABASE_URL` set, each [`TestPostgres`] is a new database on that server, dropped
//! again with the handle. Otherwise the first test of the process starts one throwaway
//! cluster from the installed server binaries (as the `postgres` user when running as root,
//! since `initdb` refuses root), in memory (`/dev/shm`) when there is room, listening on
//! 127.0.0.1 on a free port with durability off; every test then creates its own database
//! there. A small supervisor process stops the
//! cluster and deletes its directory once the test process has exited, however it exits.

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

/// One test's database; `url()` is a `postgres://` URL for it.
pub struct TestPostgres {
    url: String,
    /// Set when the database lives on the `DATABASE_URL` server and must be dropped after.
    on_external_server: Option<ExternalDatabase>,
}

struct ExternalDatabase {
    admin_url: String,
    name: String,
}

impl TestPostgres {
    pub async fn new() -> Result<Self> {
        let name = format!("resonance_test_{:016x}", rand::random::<u64>());
        match std::env::var("DATABASE_URL") {
            Ok(admin_url) if !admin_url.is_empty() => {
                create_database(&admin_url, &name)
                    .await
                    .context("creating a test database on the DATABASE_URL server")?;
                Ok(Self {
                    url: with_database(&admin_url, &name)?,
                    on_external_server: Some(ExternalDatabase { admin_url, name }),
                })
            }
            _ => {
                let cluster = tokio::task::spawn_blocking(Cluster::get).await??;
                create_database(&cluster.url("postgres"), &name)
                    .await
                    .context("creating a test database on the throwaway cluster")?;
                Ok(Self {
                    url: cluster.url(&name),
                    on_external_server: None,
                })
            }
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Drops the database now, ending every connection to it: for tests of what
    /// happens when the database goes away.
    pub async fn drop_database_now(&self) -> Result<()> {
        let name = self
            .url
            .rsplit('/')
            .next()
            .and_then(|path| path.split('?').next())
            .context("test database URL has no database name")?;
        drop_database(&with_database(&self.url, "postgres")?, name).await
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let Some(database) = self.on_external_server.take() else {
            return;
        };
        // Drop may run inside the test's runtime, which cannot block on a future: use a
        // thread with its own runtime.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(drop_database(&database.admin_url, &database.name))
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("could not drop a test database: {error:#}"),
            Err(_) => eprintln!("could not drop a test database: the dropping thread panicked"),
        }
    }
}

async fn create_database(admin_url: &str, name: &str) -> Result<()> {
    let mut conn = PgConnection::connect(admin_url).await?;
    // `name` is generated here: lowercase letters, digits and underscores only.
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}

async fn drop_database(admin_url: &str, name: &str) -> Result<()> {
    let mut conn = PgConnection::connect(admin_url).await?;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await?;
    conn.close().await?;
    Ok(())
}

/// `url` with its database (path) replaced by `name`, keeping credentials and parameters.
fn with_database(url: &str, name: &str) -> Result<String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| anyhow!("DATABASE_URL is not a postgres:// URL"))?;
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let query = tail.find('?').map_or("", |at| &tail[at..]);
    Ok(format!("{scheme}://{authority}/{name}{query}"))
}

/// Stops the server and removes the cluster once the test process has exited: it reads its
/// standard input, whose writing end only the test process holds, until end of file.
/// $1 is the server's pid, $2 the cluster's directory. The wait ends when the server has
/// removed its pid file (clean shutdown) or is gone, or after 30 s.
const SUPERVISOR_SCRIPT: &str = r#"
read -r _ignored
kill -INT "$1" 2>/dev/null
tries=0
while [ -e "$2/data/postmaster.pid" ] && kill -0 "$1" 2>/dev/null && [ "$tries" -lt 300 ]; do
    sleep 0.1
    tries=$((tries + 1))
done
rm -rf "$2"
"#;

/// The process's throwaway cluster.
struct Cluster {
    port: u16,
    /// Kept open for the life of the process: the supervisor cleans up when it closes.
    _supervisor_stdin: ChildStdin,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();

impl Cluster {
    /// Starts the cluster on first use; every later call gets the same one (or the same error).
    fn get() -> Result<&'static Cluster> {
        CLUSTER
            .get_or_init(|| Cluster::start().map_err(|error| format!("{error:#}")))
            .as_ref()
            .map_err(|error| anyhow!("cannot start a throwaway PostgreSQL cluster: {error}"))
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    fn start() -> Result<Cluster> {
        let bin = server_binaries(
            std::env::var_os("RESONANCE_PG_BIN").map(PathBuf::from),
            Path::new("/usr/lib/postgresql"),
        )?;
        let owner = cluster_owner()?;
        let dir = tempfile::Builder::new()
            .prefix("resonance-testkit-pg-")
            .tempdir_in(cluster_parent_dir())
            .context("creating the cluster's directory")?;
        if let Some(owner) = owner {
            std::os::unix::fs::chown(dir.path(), Some(owner.uid), Some(owner.gid))
                .context("giving the cluster's directory to the postgres user")?;
        }
        let data = dir.path().join("data");

        let initdb = as_owner(Command::new(bin.join("initdb")), owner)
            .arg("--pgdata")
            .arg(&data)
            .args([
                "--username=postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ])
            .current_dir(dir.path())
            .output()
            .context("running initdb")?;
        if !initdb.status.success() {
            bail!(
                "initdb failed ({}): {}",
                initdb.status,
                String::from_utf8_lossy(&initdb.stderr)
            );
        }

        let port = free_port()?;
        let log_path = dir.path().join("postgres.log");
        let log = File::create(&log_path).context("creating the server log")?;
        let mut server = as_owner(Command::new(bin.join("postgres")), owner)
            .arg("-D")
            .arg(&data)
            .arg("-p")
            .arg(port.to_string())
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "unix_socket_directories=",
                "-c",
                "max_connections=300",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group, so that a terminal's Ctrl-C reaches only the tests.
            .process_group(0)
            .spawn()
            .context("starting postgres")?;

        // From here on the supervisor owns the directory and removes it.
        let dir = dir.keep();
        let supervisor = as_owner(Command::new("sh"), owner)
            .arg("-c")
            .arg(SUPERVISOR_SCRIPT)
            .arg("testkit-postgres-supervisor")
            .arg(server.id().to_string())
            .arg(&dir)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn();
        let mut supervisor = match supervisor {
            Ok(supervisor) => supervisor,
            Err(error) => {
                let _ = server.kill();
                let _ = server.wait();
                let _ = std::fs::remove_dir_all(&dir);
                return Err(error).context("starting the cluster's supervisor");
            }
        };
        let supervisor_stdin = supervisor
            .stdin
            .take()
            .expect("the supervisor's stdin is piped");

        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = server.try_wait()? {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                bail!("postgres exited ({status}) while starting:\n{log}");
            }
            let ready = Command::new(bin.join("pg_isready"))
                .args(["--quiet", "--host=127.0.0.1", "--username=postgres"])
                .arg(format!("--port={port}"))
                .status()
                .context("running pg_isready")?;
            if ready.success() {
                break;
            }
            if Instant::now() > deadline {
                let _ = server.kill();
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                bail!("postgres did not accept connections within 60 s:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Cluster {
            port,
            _supervisor_stdin: supervisor_stdin,
        })
    }
}

/// The directory holding `initdb`, `postgres` and `pg_isready`: `chosen` (from
/// `RESONANCE_PG_BIN`) if given, else the newest `<installed>/<version>/bin`.
fn server_binaries(chosen: Option<PathBuf>, installed: &Path) -> Result<PathBuf> {
    let has_binaries = |dir: &Path| {
        ["initdb", "postgres", "pg_isready"]
            .iter()
            .all(|binary| dir.join(binary).is_file())
    };
    if let Some(dir) = chosen {
        if !has_binaries(&dir) {
            bail!(
                "RESONANCE_PG_BIN={} does not hold initdb, postgres and pg_isready",
                dir.display()
            );
        }
        return Ok(dir);
    }
    let newest = std::fs::read_dir(installed)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            has_binaries(&bin).then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version);
    match newest {
        Some((_, bin)) => Ok(bin),
        None => bail!(
            "PostgreSQL server binaries (initdb, postgres, pg_isready) not found in \
             {}/<version>/bin: install the PostgreSQL server, set RESONANCE_PG_BIN to their \
             directory, or set DATABASE_URL to a server where tests may create databases",
            installed.display()
        ),
    }
}

/// Where to put the cluster: in memory (`/dev/shm`) when it has room, since every test's
/// `CREATE DATABASE` writes a copy of the template database; else the temporary directory.
fn cluster_parent_dir() -> PathBuf {
    const ROOM_NEEDED: u64 = 1 << 30;
    let shm = Path::new("/dev/shm");
    // SAFETY: statvfs only writes into the zeroed struct it is given; the path is a valid
    // C string.
    let room = unsafe {
        let mut stats: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c"/dev/shm".as_ptr(), &mut stats) == 0 {
            // Narrower than u64 on 32-bit targets.
            #[allow(clippy::useless_conversion)]
            let room = u64::from(stats.f_bavail).saturating_mul(u64::from(stats.f_frsize));
            room
        } else {
            0
        }
    };
    if shm.is_dir() && room >= ROOM_NEEDED {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

#[derive(Clone, Copy)]
struct Owner {
    uid: u32,
    gid: u32,
}

/// The user to run the cluster as: `postgres` when this process is root, else this user.
fn cluster_owner() -> Result<Option<Owner>> {
    // SAFETY: geteuid cannot fail and has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    // SAFETY: the name is a valid C string; the returned record is read at once, before any
    // other passwd lookup of this process could overwrite it (this runs once, under a lock).
    let entry = unsafe { libc::getpwnam(c"postgres".as_ptr()) };
    if entry.is_null() {
        bail!(
            "running as root, which initdb refuses, and there is no `postgres` user to run it as"
        );
    }
    // SAFETY: checked non-null above.
    let (uid, gid) = unsafe { ((*entry).pw_uid, (*entry).pw_gid) };
    Ok(Some(Owner { uid, gid }))
}

fn as_owner(mut command: Command, owner: Option<Owner>) -> Command {
    if let Some(owner) = owner {
        command.uid(owner.uid).gid(owner.gid);
    }
    command
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_newest_complete_server_or_says_what_is_missing() {
        let installed = tempfile::tempdir().unwrap();
        let error = server_binaries(None, installed.path()).unwrap_err();
        assert!(error.to_string().contains("not found in"), "{error}");
        assert!(error.to_string().contains("DATABASE_URL"), "{error}");

        let install = |version: &str, binaries: &[&str]| {
            let bin = installed.path().join(version).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            for binary in binaries {
                std::fs::write(bin.join(binary), b"").unwrap();
            }
            bin
        };
        let complete = ["initdb", "postgres", "pg_isready"];
        install("9", &complete);
        let v14 = install("14", &complete);
        install("16", &["initdb", "postgres"]);
        assert_eq!(server_binaries(None, installed.path()).unwrap(), v14);

        let incomplete = installed.path().join("16").join("bin");
        let error = server_binaries(Some(incomplete), installed.path()).unwrap_err();
        assert!(error.to_string().contains("RESONANCE_PG_BIN"), "{error}");
    }

    #[test]
    fn with_database_replaces_only_the_database() {
        assert_eq!(
            with_database(
                "postgres://u:p%2Fw@db.example:5433/app?sslmode=disable",
                "t1"
            )
            .unwrap(),
            "postgres://u:p%2Fw@db.example:5433/t1?sslmode=disable"
        );
        assert_eq!(
            with_database("postgresql://localhost", "t2").unwrap(),
            "postgresql://localhost/t2"
        );
        assert!(with_database("localhost:5432", "t3").is_err());
    }
}
