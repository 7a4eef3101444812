//! Where a job's Redis work goes: `INFO commandstats` deltas (calls and server time per
//! command, script-internal commands included) and a `MONITOR` capture that separates the
//! commands a client sent (round trips, at most) from the ones scripts ran inside Redis.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::BenchError;

/// Per-command `calls` and `usec` from `INFO commandstats`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommandStats(pub BTreeMap<String, (u64, u64)>);

impl CommandStats {
    /// Parses lines `cmdstat_<name>:calls=N,usec=N,...`.
    pub fn parse(text: &str) -> CommandStats {
        let mut m = BTreeMap::new();
        for line in text.lines() {
            let Some((name, rest)) = line
                .trim_end()
                .strip_prefix("cmdstat_")
                .and_then(|l| l.split_once(':'))
            else {
                continue;
            };
            let field = |k: &str| {
                rest.split(',')
                    .find_map(|kv| kv.strip_prefix(k))
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            m.insert(name.to_string(), (field("calls="), field("usec=")));
        }
        CommandStats(m)
    }

    pub async fn read(conn: &mut redis::aio::MultiplexedConnection) -> Result<Self, BenchError> {
        let text: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(conn)
            .await?;
        Ok(Self::parse(&text))
    }

    /// `self - before`, commands with no new calls dropped.
    pub fn since(&self, before: &CommandStats) -> CommandStats {
        let mut m = BTreeMap::new();
        for (k, (c, u)) in &self.0 {
            let (c0, u0) = before.0.get(k).copied().unwrap_or((0, 0));
            if *c > c0 {
                m.insert(k.clone(), (c - c0, u.saturating_sub(u0)));
            }
        }
        CommandStats(m)
    }

    /// The `top` commands by server time: (name, calls per job, µs per job).
    pub fn top_per_job(&self, jobs: usize, top: usize) -> Vec<(String, f64, f64)> {
        let j = jobs.max(1) as f64;
        let mut v: Vec<_> = self
            .0
            .iter()
            .map(|(k, (c, u))| (k.clone(), *c as f64 / j, *u as f64 / j))
            .collect();
        v.sort_by(|a, b| b.2.total_cmp(&a.2));
        v.truncate(top);
        v
    }
}

/// `redis-cli monitor` writing into a file until stopped.
pub struct MonitorCapture {
    child: tokio::process::Child,
    path: PathBuf,
}

impl MonitorCapture {
    /// Starts `redis-cli -p <port> monitor > path`.
    pub fn start(port: u16, path: &Path) -> Result<MonitorCapture, BenchError> {
        let file = std::fs::File::create(path)?;
        let child = tokio::process::Command::new("redis-cli")
            .args(["-p", &port.to_string(), "monitor"])
            .stdout(Stdio::from(file))
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| BenchError::Setup(format!("redis-cli (ships with redis-server): {e}")))?;
        Ok(MonitorCapture {
            child,
            path: path.to_path_buf(),
        })
    }

    /// Stops the capture and returns its text.
    pub async fn stop(mut self) -> Result<String, BenchError> {
        let _ = self.child.kill().await;
        Ok(std::fs::read_to_string(&self.path)?)
    }
}

/// A `MONITOR` capture summarised per job.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoundTrips {
    pub jobs: usize,
    /// Commands sent by clients (an upper bound of round trips: pipelines and MULTI blocks
    /// share one), by label (`COMMAND <first key pattern>`).
    pub client: BTreeMap<String, u64>,
    /// Commands run inside scripts, by the label of the script call that ran them.
    pub in_scripts: BTreeMap<String, u64>,
}

impl RoundTrips {
    /// Parses `MONITOR` lines: `<time> [<db> <addr>] "CMD" "arg" ...`; scripts' own commands
    /// show `lua` as the address and directly follow their `EVALSHA`/`EVAL` line.
    pub fn parse(text: &str, jobs: usize, ignore: &[&str]) -> RoundTrips {
        let mut r = RoundTrips {
            jobs,
            ..Default::default()
        };
        let mut current_script = String::from("?");
        for line in text.lines() {
            let Some(open) = line.find('[') else { continue };
            let Some(close) = line[open..].find(']') else {
                continue;
            };
            let source = &line[open + 1..open + close];
            let args = quoted_args(&line[open + close + 1..]);
            let Some(cmd) = args.first().map(|c| c.to_uppercase()) else {
                continue;
            };
            if ignore.contains(&cmd.as_str()) {
                continue;
            }
            if source.ends_with("lua") {
                *r.in_scripts.entry(current_script.clone()).or_default() += 1;
                continue;
            }
            let key = if cmd == "EVALSHA" || cmd == "EVAL" {
                args.get(3)
            } else {
                args.get(1)
            };
            let label = format!("{cmd} {}", key.map(|k| pattern(k)).unwrap_or_default());
            if cmd == "EVALSHA" || cmd == "EVAL" {
                current_script = label.clone();
            }
            *r.client.entry(label).or_default() += 1;
        }
        r
    }

    pub fn client_per_job(&self) -> f64 {
        self.client.values().sum::<u64>() as f64 / self.jobs.max(1) as f64
    }

    pub fn in_scripts_per_job(&self) -> f64 {
        self.in_scripts.values().sum::<u64>() as f64 / self.jobs.max(1) as f64
    }
}

/// The arguments of a MONITOR line (each in double quotes, with backslash escapes).
fn quoted_args(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut arg = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        arg.push(n);
                    }
                }
                '"' => break,
                _ => arg.push(c),
            }
        }
        out.push(arg);
    }
    out
}

/// A key with its ids blanked, so one label covers every job: `:`-separated parts that look
/// like ids (long hex/digit runs) become `#`, other digit runs `#` too.
pub fn pattern(key: &str) -> String {
    key.split(':')
        .map(|part| {
            let idish = part.len() >= 8
                && part
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == '-' || c == '_');
            if idish {
                return "#".to_string();
            }
            let mut s = String::new();
            let mut in_digits = false;
            for c in part.chars() {
                if c.is_ascii_digit() {
                    if !in_digits {
                        s.push('#');
                    }
                    in_digits = true;
                } else {
                    s.push(c);
                    in_digits = false;
                }
            }
            s
        })
        .collect::<Vec<_>>()
        .join(":")
}

impl fmt::Display for RoundTrips {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let j = self.jobs.max(1) as f64;
        writeln!(
            f,
            "MONITOR over {} jobs: {:.1} client commands per job (upper bound of round trips), {:.1} more inside scripts",
            self.jobs,
            self.client_per_job(),
            self.in_scripts_per_job()
        )?;
        let mut v: Vec<_> = self.client.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1));
        for (label, n) in v {
            let inner = self.in_scripts.get(label).copied().unwrap_or(0);
            if inner > 0 {
                writeln!(
                    f,
                    "  {:>6.2}/job  {label}  (+{:.1} inside)",
                    *n as f64 / j,
                    inner as f64 / j
                )?;
            } else {
                writeln!(f, "  {:>6.2}/job  {label}", *n as f64 / j)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commandstats_and_deltas() {
        let a = CommandStats::parse(
            "# Commandstats\r\ncmdstat_get:calls=2,usec=10,usec_per_call=5.00\r\n",
        );
        let b = CommandStats::parse("cmdstat_get:calls=5,usec=40,usec_per_call=8.00\r\ncmdstat_evalsha:calls=3,usec=300,usec_per_call=100.00\r\n");
        let d = b.since(&a);
        assert_eq!(d.0["get"], (3, 30));
        assert_eq!(d.0["evalsha"], (3, 300));
        let top = d.top_per_job(3, 1);
        assert_eq!(top[0].0, "evalsha");
        assert!((top[0].2 - 100.0).abs() < 1e-9);
    }

    #[test]
    fn monitor_lines_split_client_and_script_commands() {
        let text = r#"OK
1.0 [0 127.0.0.1:5000] "EVALSHA" "abc" "2" "mqb:{c:bench}:job:sku-000001" "x"
1.1 [0 lua] "HGET" "mqb:{c:bench}:job:sku-000001" "state"
1.2 [0 lua] "HSET" "mqb:{c:bench}:job:sku-000001" "state" "admitted"
1.3 [0 127.0.0.1:5000] "XADD" "q:{submit}:stream" "*" "m" "a \"quoted\" b"
1.4 [0 127.0.0.1:5001] "INFO" "stats"
"#;
        let r = RoundTrips::parse(text, 1, &["INFO"]);
        assert_eq!(r.client_per_job(), 2.0);
        assert_eq!(r.in_scripts_per_job(), 2.0);
        assert_eq!(r.client["EVALSHA mqb:{c:bench}:job:sku-#"], 1);
        assert_eq!(r.in_scripts["EVALSHA mqb:{c:bench}:job:sku-#"], 2);
        assert_eq!(quoted_args(r#" "a \"b\"" "c""#), vec!["a \"b\"", "c"]);
        assert_eq!(
            pattern("P:{t:kkiai}:tasks:0f3a9c2e77"),
            "P:{t:kkiai}:tasks:#"
        );
    }
}
