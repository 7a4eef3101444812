//! What the benchmarks measure: Redis `INFO` counters, a process's CPU time and RSS.

use std::collections::HashMap;
use std::time::Duration;

use crate::BenchError;

/// Counters read from one `INFO` call (sections `stats`, `memory`, `cpu`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RedisInfo {
    /// `total_commands_processed` (every command since start; the `INFO` call itself counts).
    pub commands: u64,
    /// `used_memory` in bytes.
    pub used_memory: u64,
    /// `used_cpu_user + used_cpu_sys` of the server, in seconds.
    pub cpu_s: f64,
}

impl RedisInfo {
    /// Parses the text of an `INFO` answer. Missing fields read as 0.
    pub fn parse(text: &str) -> RedisInfo {
        let fields: HashMap<&str, &str> = text
            .lines()
            .filter_map(|l| l.trim_end_matches('\r').split_once(':'))
            .collect();
        let num = |k: &str| fields.get(k).and_then(|v| v.parse::<f64>().ok());
        RedisInfo {
            commands: num("total_commands_processed").unwrap_or(0.0) as u64,
            used_memory: num("used_memory").unwrap_or(0.0) as u64,
            cpu_s: num("used_cpu_user").unwrap_or(0.0) + num("used_cpu_sys").unwrap_or(0.0),
        }
    }

    /// Reads the server's counters.
    pub async fn read(
        conn: &mut redis::aio::MultiplexedConnection,
    ) -> Result<RedisInfo, BenchError> {
        let text: String = redis::cmd("INFO")
            .arg("stats")
            .arg("memory")
            .arg("cpu")
            .query_async(conn)
            .await?;
        Ok(RedisInfo::parse(&text))
    }
}

/// Opens a plain connection for `INFO` and housekeeping (not one the measured side uses).
pub async fn info_conn(url: &str) -> Result<redis::aio::MultiplexedConnection, BenchError> {
    let client = redis::Client::open(url)?;
    Ok(client.get_multiplexed_async_connection().await?)
}

/// CPU time and memory of one process at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcSample {
    /// User + system CPU time, milliseconds.
    pub cpu_ms: f64,
    /// Resident set size, KiB (`VmRSS`).
    pub rss_kib: u64,
    /// Peak resident set size, KiB (`VmHWM`).
    pub hwm_kib: u64,
}

impl ProcSample {
    /// Reads `/proc/<pid>/stat` (utime, stime in clock ticks) and `/proc/<pid>/status`.
    pub fn read(pid: u32) -> Result<ProcSample, BenchError> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        Self::parse(&stat, &status, clock_ticks())
            .ok_or_else(|| BenchError::Measure(format!("cannot parse /proc/{pid}/stat")))
    }

    /// The current process (same source as [`ProcSample::read`]).
    pub fn own() -> Result<ProcSample, BenchError> {
        Self::read(std::process::id())
    }

    /// Parses the two files; `None` when `stat` has too few fields.
    pub fn parse(stat: &str, status: &str, ticks_per_s: f64) -> Option<ProcSample> {
        // The command name (field 2) may contain spaces and parentheses: fields are counted
        // after its closing parenthesis, where field 3 (state) comes first.
        let rest = &stat[stat.rfind(')')? + 1..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let utime: f64 = f.get(11)?.parse().ok()?;
        let stime: f64 = f.get(12)?.parse().ok()?;
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Some(ProcSample {
            cpu_ms: (utime + stime) * 1000.0 / ticks_per_s,
            rss_kib: kib("VmRSS:"),
            hwm_kib: kib("VmHWM:"),
        })
    }
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions; it only reads a constant of the system.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// `<mount point> (<type>)` of the filesystem holding `path`: the longest mount point of
/// `/proc/mounts` that contains it (`unknown` when that cannot be read).
pub fn filesystem_of(path: &std::path::Path) -> String {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_dev, at, kind) = (f.next()?, f.next()?, f.next()?);
            path.starts_with(at)
                .then(|| (at.to_string(), kind.to_string()))
        })
        .max_by_key(|(at, _)| at.len())
        .map_or_else(
            || "unknown".to_string(),
            |(at, kind)| format!("{at} ({kind})"),
        )
}

/// CPU time of this process from `getrusage` (microsecond resolution, unlike `/proc`'s ticks).
pub fn own_cpu() -> Duration {
    // SAFETY: `getrusage` fills the zeroed struct we own; RUSAGE_SELF is always valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    if rc != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The machine the figures come from: `nproc`, load averages, Redis version.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    pub nproc: usize,
    pub loadavg: String,
    pub redis_version: String,
}

impl Machine {
    /// Reads `/proc/loadavg` and asks the server for `redis_version`.
    pub async fn read(conn: &mut redis::aio::MultiplexedConnection) -> Machine {
        let text: String = redis::cmd("INFO")
            .arg("server")
            .query_async(conn)
            .await
            .unwrap_or_default();
        let redis_version = text
            .lines()
            .find_map(|l| l.trim_end().strip_prefix("redis_version:"))
            .unwrap_or("unknown")
            .to_string();
        let loadavg = std::fs::read_to_string("/proc/loadavg")
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "unknown".into());
        Machine {
            nproc: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            loadavg,
            redis_version,
        }
    }
}

impl std::fmt::Display for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "machine: nproc {}, load average {}, redis-server {}",
            self.nproc, self.loadavg, self.redis_version
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filesystem_of_names_the_longest_mount() {
        let root = filesystem_of(std::path::Path::new("/"));
        assert!(root.starts_with("/ ("), "{root}");
        let proc_fs = filesystem_of(std::path::Path::new("/proc/self"));
        assert_eq!(proc_fs, "/proc (proc)");
    }

    #[test]
    fn parses_info() {
        let i = RedisInfo::parse(
            "# Stats\r\ntotal_commands_processed:1234\r\n# Memory\r\nused_memory:1048576\r\nused_memory_human:1M\r\n# CPU\r\nused_cpu_sys:1.5\r\nused_cpu_user:2.25\r\n",
        );
        assert_eq!(i.commands, 1234);
        assert_eq!(i.used_memory, 1_048_576);
        assert!((i.cpu_s - 3.75).abs() < 1e-9);
    }

    #[test]
    fn parses_proc_stat_with_odd_names() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 3 0 1 2 3";
        let status = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        let s = ProcSample::parse(stat, status, 100.0).unwrap();
        assert_eq!(s.cpu_ms, 2000.0);
        assert_eq!(s.rss_kib, 1024);
        assert_eq!(s.hwm_kib, 2048);
        assert!(ProcSample::parse("1 (x) S", status, 100.0).is_none());
    }

    #[test]
    fn own_process_is_readable() {
        let s = ProcSample::own().unwrap();
        assert!(s.rss_kib > 0);
    }
}
