//! The fault campaign: Inkwire across hosts (`scripts/netcluster.sh`: PostgreSQL, two brokers on
//! one storage, two command services, two projectors, two gateways and nginx, each in its own
//! network namespace with its own address) while `inkwire stress` writes comments through nginx
//! and keeps subscribers on both gateways, resuming from their cursors when a connection drops.
//! A seeded schedule cuts links (both ways and one way), makes a node lose packets or crawl,
//! pauses processes past their leases and session timeouts, kills and restarts any service, the
//! database and a broker. Then everything heals, and the checker asks:
//!
//! - every subscriber got every acknowledged comment of its post once and in order (stress's
//!   accounting, across resumes);
//! - every acknowledged comment is in the read tables, and no comment is there twice (a write
//!   retried behind the client's back would be);
//! - no refusal was a 500: a write refused during a fault got a stable code;
//! - the read tables agree with the log: a fresh projector group, rebuilt from the log into a
//!   fresh database, holds the same comments.
//!
//! Needs root and `ip`/`nft` (network namespaces): elsewhere it says so and passes nothing off
//! as tested. Not in the default run while the bug it found is open (docs/reliability.md). `INKWIRE_CAMPAIGN_SEED` and `INKWIRE_CAMPAIGN_SECONDS` replay or lengthen a run
//! (scripts/campaign.sh); the schedule is printed with its seed.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A small seeded generator (xorshift64*): the same seed, the same schedule.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, of: &[&'a str]) -> &'a str {
        of[usize::try_from(self.below(of.len() as u64)).unwrap_or(0)]
    }
}

struct Bed {
    dir: PathBuf,
    env: std::collections::HashMap<String, String>,
}

impl Bed {
    fn nc(&self, args: &[&str]) -> std::process::Output {
        Command::new(repo().join("scripts/netcluster.sh"))
            .args(args)
            .env("NC_DIR", &self.dir)
            .env("INKWIRE_BIN", env!("CARGO_BIN_EXE_inkwire"))
            .stdin(Stdio::null())
            .output()
            .expect("netcluster.sh runs")
    }

    fn must(&self, args: &[&str]) {
        let out = self.nc(args);
        assert!(
            out.status.success(),
            "netcluster.sh {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `sql` through psql in the client's namespace, on `database`: its rows, `|`-separated;
    /// `None` when psql fails (the database or its tables are not there yet).
    fn try_sql(&self, database: &str, sql: &str) -> Option<String> {
        let pg = std::env::var("INKWIRE_PG_BIN").expect("INKWIRE_PG_BIN");
        let url = self.env["NC_DATABASE_URL"].replace("/inkwire", &format!("/{database}"));
        let out = self.nc(&[
            "exec",
            "client",
            &format!("{pg}/psql"),
            &url,
            "-v",
            "ON_ERROR_STOP=1",
            "-Atc",
            sql,
        ]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// [`Bed::try_sql`], which must succeed.
    fn sql(&self, database: &str, sql: &str) -> String {
        self.try_sql(database, sql)
            .unwrap_or_else(|| panic!("{sql} failed on {database}"))
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        let _ = self.nc(&["down"]);
    }
}

/// One fault of the schedule: what it did and how it was undone.
struct Fault {
    name: String,
    apply: Vec<Vec<String>>,
    undo: Vec<Vec<String>>,
    hold: Duration,
}

fn cmd(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| (*p).to_owned()).collect()
}

/// The next fault, drawn from every class the campaign knows.
fn draw(rng: &mut Rng) -> Fault {
    let gw = rng.pick(&["gw1", "gw2"]);
    let command = rng.pick(&["cmd1", "cmd2"]);
    let proj = rng.pick(&["proj1", "proj2"]);
    let broker = rng.pick(&["kafka1", "kafka2"]);
    let hold = Duration::from_secs(3 + rng.below(4));
    // Pauses outlast the relay's lease (10 s) and the consumer group's session (10 s).
    let long = Duration::from_secs(12 + rng.below(3));
    let heal = vec![cmd(&["heal"])];
    match rng.below(10) {
        0 => Fault {
            name: format!("partition {gw} from both brokers"),
            apply: vec![cmd(&["partition", gw, "kafka1", "kafka2"])],
            undo: heal,
            hold,
        },
        1 => Fault {
            name: format!("partition {command} -> pg, one way"),
            apply: vec![cmd(&["partition", command, "pg", "oneway"])],
            undo: heal,
            hold,
        },
        2 => Fault {
            name: format!("pause {proj} past its session"),
            apply: vec![cmd(&["pause", proj])],
            undo: vec![cmd(&["resume", proj])],
            hold: long,
        },
        3 => Fault {
            name: format!("pause {command} past its lease"),
            apply: vec![cmd(&["pause", command])],
            undo: vec![cmd(&["resume", command])],
            hold: long,
        },
        4 => Fault {
            name: format!("kill -9 {gw}, then start it"),
            apply: vec![cmd(&["kill", gw])],
            undo: vec![cmd(&["start", gw])],
            hold,
        },
        5 => Fault {
            name: format!("kill -9 {proj}, then start it"),
            apply: vec![cmd(&["kill", proj])],
            undo: vec![cmd(&["start", proj])],
            hold,
        },
        6 => Fault {
            name: format!("kill -9 {broker}, then start it"),
            apply: vec![cmd(&["kill", broker])],
            undo: vec![cmd(&["start", broker])],
            hold,
        },
        7 => Fault {
            name: "kill -9 PostgreSQL, then start it".into(),
            apply: vec![cmd(&["kill", "pg"])],
            undo: vec![cmd(&["start", "pg"])],
            hold,
        },
        8 => Fault {
            name: format!("30% packet loss at {command}"),
            apply: vec![cmd(&["loss", command, "30"])],
            undo: heal,
            hold,
        },
        _ => Fault {
            name: format!("{command}'s link at 64 kbit/s"),
            apply: vec![cmd(&["slow", command, "64"])],
            undo: heal,
            hold,
        },
    }
}

fn namespaces_allowed() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root".into());
    }
    let probe = Command::new("ip")
        .args(["netns", "add", "inkw-probe"])
        .output()
        .map_err(|e| format!("no `ip`: {e}"))?;
    if !probe.status.success() {
        return Err(String::from_utf8_lossy(&probe.stderr).into_owned());
    }
    let _ = Command::new("ip")
        .args(["netns", "del", "inkw-probe"])
        .output();
    Ok(())
}

// Parked, not passed off as green: seed 7 (90 s) finds an open bug, see docs/reliability.md
// ("Found, not yet fixed"). scripts/campaign.sh runs it.
#[test]
#[ignore = "finds an open bug (docs/reliability.md): run by scripts/campaign.sh"]
fn a_seeded_campaign_of_network_and_process_faults_loses_nothing() {
    if let Err(why) = namespaces_allowed() {
        eprintln!(
            "SKIPPED the fault campaign: network namespaces are not available here ({why}); it needs root and iproute2"
        );
        return;
    }
    let seed: u64 = std::env::var("INKWIRE_CAMPAIGN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_205);
    let seconds: u64 = std::env::var("INKWIRE_CAMPAIGN_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(70);
    eprintln!("fault campaign: seed {seed}, {seconds} s of load");
    let dir = common::TempDir::new();
    // INKWIRE_CAMPAIGN_DIR keeps the services' logs, the stress report and the schedule.
    let kept = std::env::var_os("INKWIRE_CAMPAIGN_DIR").map(PathBuf::from);
    let root = kept.clone().unwrap_or_else(|| dir.0.clone());
    let mut bed = Bed {
        dir: root.join("nc"),
        env: Default::default(),
    };
    bed.must(&["up"]);
    let env = std::fs::read_to_string(bed.dir.join("env")).expect("env");
    bed.env = env
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
        .collect();

    // The load: comments through nginx, subscribers on both gateways that resume.
    let report_dir = root.join("report");
    let mut stress = Command::new("ip");
    stress
        .args([
            "netns",
            "exec",
            "inkw-client",
            env!("CARGO_BIN_EXE_inkwire"),
            "stress",
        ])
        .args([
            "--url",
            &bed.env["NC_URL"],
            "--allow-remote",
            "--resume",
            "--keep",
        ])
        .args([
            "--posts",
            "4",
            "--subscribers",
            "16",
            "--writers",
            "4",
            "--rate",
            "8",
        ])
        .args(["--queries-per-sec", "2", "--seconds", &seconds.to_string()])
        .arg("--report-dir")
        .arg(&report_dir)
        .env("INKWIRE_STRESS_USERNAME", &bed.env["NC_USERNAME"])
        .env("INKWIRE_STRESS_PASSWORD", &bed.env["NC_PASSWORD"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    for gw in bed.env["NC_GATEWAYS"].split_whitespace() {
        stress.args(["--subscribe-url", gw]);
    }
    let mut stress = stress.spawn().expect("inkwire stress starts");

    // The schedule, while the load runs: a fault, held, undone, a pause to recover, the next.
    let mut rng = Rng(seed.max(1));
    let started = Instant::now();
    let mut schedule = Vec::new();
    std::thread::sleep(Duration::from_secs(8));
    while started.elapsed() + Duration::from_secs(20) < Duration::from_secs(seconds)
        && stress.try_wait().ok().flatten().is_none()
    {
        let fault = draw(&mut rng);
        let at = started.elapsed();
        for step in &fault.apply {
            bed.must(&step.iter().map(String::as_str).collect::<Vec<_>>());
        }
        std::thread::sleep(fault.hold);
        for step in &fault.undo {
            bed.must(&step.iter().map(String::as_str).collect::<Vec<_>>());
        }
        eprintln!(
            "  {:>5.1} s  {} ({:.0} s)",
            at.as_secs_f64(),
            fault.name,
            fault.hold.as_secs_f64()
        );
        schedule.push(json!({
            "at_s": at.as_secs_f64(),
            "fault": fault.name,
            "held_s": fault.hold.as_secs_f64(),
        }));
        std::thread::sleep(Duration::from_secs(4));
    }
    bed.must(&["heal"]);
    let status = stress.wait().expect("stress ends");
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(report_dir.join("report.json")).expect("stress report"),
    )
    .expect("report JSON");
    std::fs::write(
        report_dir.join("schedule.json"),
        serde_json::to_string_pretty(&json!({ "seed": seed, "faults": schedule })).expect("json"),
    )
    .expect("schedule written");
    eprintln!(
        "fault campaign: {} faults; acked {} of {}, refused {:?}; deliveries {}; resumes {}",
        schedule.len(),
        report["comments_acked"],
        report["comments_sent"],
        report["comments_refused_by_reason"],
        report["deliveries"],
        report["resumes"]
    );
    check(&bed, &report, status.success());
}

fn check(bed: &Bed, report: &Value, stress_ok: bool) {
    // Subscribers: nothing lost, repeated or out of order, across every resume.
    let deliveries = &report["deliveries"];
    assert_eq!(deliveries["lost"], 0, "{report}");
    assert_eq!(deliveries["duplicated"], 0, "{report}");
    assert_eq!(deliveries["out_of_order"], 0, "{report}");
    assert!(stress_ok, "inkwire stress failed: {report}");
    assert!(
        report["comments_acked"].as_u64().unwrap_or(0) > 0,
        "{report}"
    );
    // Refusals carry a code; none is a server error.
    for (reason, _) in report["comments_refused_by_reason"]
        .as_object()
        .expect("reasons")
    {
        assert!(
            !reason.contains("INTERNAL") && !reason.contains("500"),
            "a write was refused with a server error: {reason}"
        );
    }

    // Every acknowledged comment is in the read tables, once; no comment is there twice.
    let acked: Vec<&str> = report["acked_ids"]
        .as_array()
        .expect("acked ids")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let list = acked
        .iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(",");
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let present: usize = bed
            .sql(
                "inkwire",
                &format!("SELECT count(*) FROM rm_comments WHERE id IN ({list})"),
            )
            .parse()
            .expect("count");
        if present == acked.len() {
            break;
        }
        assert!(
            Instant::now() < until,
            "{} acknowledged comments are not in the read tables 60 s after the campaign",
            acked.len() - present
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let twice = bed.sql(
        "inkwire",
        "SELECT body FROM rm_comments WHERE body LIKE 'stress comment %' GROUP BY body HAVING count(*) > 1",
    );
    assert!(twice.is_empty(), "comments written twice: {twice}");

    // The read tables agree with the log: a fresh group rebuilds them into a fresh database.
    bed.sql("inkwire", "CREATE DATABASE rebuilt");
    let url = bed.env["NC_DATABASE_URL"].replace("/inkwire", "/rebuilt");
    let mut projector = Command::new("ip")
        .args([
            "netns",
            "exec",
            "inkw-proj1",
            env!("CARGO_BIN_EXE_inkwire"),
            "projection-service",
        ])
        .env("INKWIRE_DATABASE_URL", &url)
        .env("INKWIRE_KAFKA_BROKERS", &bed.env["NC_BROKERS"])
        .env("INKWIRE_TOPIC", "inkwire.posts")
        .env("INKWIRE_GROUP", "campaign-rebuild")
        .env("INKWIRE_LISTEN", "10.88.0.31:8090")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .expect("rebuild projector");
    let query = "SELECT id, post_id, parent_id, status, post_version FROM rm_comments ORDER BY id";
    let live = bed.sql("inkwire", query);
    let until = Instant::now() + Duration::from_secs(90);
    let mut rebuilt = String::new();
    while Instant::now() < until {
        std::thread::sleep(Duration::from_secs(1));
        // The rebuild's tables exist once its migrations ran.
        rebuilt = bed.try_sql("rebuilt", query).unwrap_or_default();
        if rebuilt == live {
            break;
        }
    }
    let _ = projector.kill();
    let _ = projector.wait();
    assert!(
        rebuilt == live,
        "the read tables differ from a rebuild from the log: {} rows live, {} rebuilt",
        live.lines().count(),
        rebuilt.lines().count()
    );
}
