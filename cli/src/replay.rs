//! `inkwire replay <view>|--all`: rebuilds a read-model view from the start of the log beside the
//! live one and switches it live atomically (see `projection_service::rebuild`). A progress bar
//! with ETA on a terminal, then a summary per view; `--dry-run` only estimates.

use std::time::Duration;

use clap::{Args, ValueEnum};
use projection_service::projections::View;
use projection_service::rebuild::{self, Progress, RebuildOptions};
use tokio_util::sync::CancellationToken;

use crate::config::LogArgs;

/// A view on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ViewArg {
    /// Posts, tags and threaded comments.
    Posts,
    /// Users.
    Users,
}

impl From<ViewArg> for View {
    fn from(v: ViewArg) -> Self {
        match v {
            ViewArg::Posts => View::Posts,
            ViewArg::Users => View::Users,
        }
    }
}

/// Arguments of `inkwire replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The view to rebuild.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub view: Option<ViewArg>,
    /// Rebuild every view, one after the other.
    #[arg(long)]
    pub all: bool,
    /// Only report how many events a rebuild would read and how long it would take.
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON object per view instead of text.
    #[arg(long)]
    pub json: bool,
    /// The read-model database.
    #[command(flatten)]
    pub database: crate::config::DatabaseArgs,
    /// The log.
    #[command(flatten)]
    pub log: LogArgs,
    /// The live projectors' consumer group (the switch waits until the rebuild has caught up
    /// with it).
    #[arg(long, env = "INKWIRE_GROUP", default_value = projection_service::DEFAULT_GROUP)]
    pub group: String,
    /// How long the rebuild's lease holds without renewal: a killed rebuild can be resumed by
    /// another run after this long.
    #[arg(long, env = "INKWIRE_REPLAY_LEASE_SECONDS", default_value_t = 30)]
    pub lease_seconds: u64,
    /// Most records per transaction.
    #[arg(long, env = "INKWIRE_REPLAY_BATCH", default_value_t = 5000)]
    pub batch: usize,
    /// Discard an interrupted rebuild's progress instead of resuming it.
    #[arg(long)]
    pub restart: bool,
    /// Read at most this many events per second, to spare a busy production database.
    #[arg(long, env = "INKWIRE_REPLAY_MAX_RATE")]
    pub max_rate: Option<u32>,
}

/// Fewest events for which a rebuild's events/s is printed: below it, setting up the new
/// generation and switching it live take most of the time.
const MEANINGFUL_RATE_EVENTS: u64 = 10_000;

/// Runs `inkwire replay`.
///
/// # Errors
/// When the database or the log fails, another rebuild holds the view, or Ctrl-C stops it before
/// the switch (the live view is untouched in every case; the next run resumes).
pub async fn run(args: ReplayArgs, cancel: CancellationToken) -> anyhow::Result<()> {
    let db = args.database.open_existing(4).await?;
    // A dry run only reads: it migrates nothing either.
    if !args.dry_run {
        db.migrate().await?;
    }
    let log = args.database.log(&args.log, &db);
    let views: Vec<View> = match args.view {
        Some(v) => vec![v.into()],
        None => View::ALL.to_vec(),
    };
    for view in views {
        if args.dry_run {
            let e = rebuild::estimate(&db, &log, view, &args.group).await?;
            if args.json {
                println!("{}", serde_json::to_string(&e)?);
            } else {
                println!(
                    "{}: {} events in the log{}; estimated {:.1} s at {:.0} events/s ({})",
                    e.view,
                    e.events,
                    if e.resumable > 0 {
                        format!(", {} already rebuilt by an interrupted run", e.resumable)
                    } else {
                        String::new()
                    },
                    e.estimated_seconds,
                    e.events_per_second,
                    match e.rate_source {
                        "last-rebuild" => "the last rebuild's rate",
                        _ => "the log's bare read rate: a lower bound",
                    }
                );
            }
            continue;
        }
        let options = RebuildOptions {
            view,
            live_group: args.group.clone(),
            lease_ttl: Duration::from_secs(args.lease_seconds.max(1)),
            batch: args.batch.max(1),
            restart: args.restart,
            max_rate: args.max_rate,
        };
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg:>9} {bar:40} {pos}/{len} events {per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_message(view.name());
        let mut on_progress = |p: Progress| {
            bar.set_length(p.total);
            bar.set_position(p.done);
            if p.switching {
                bar.set_message(format!("{} (switching)", view.name()));
            }
        };
        let summary = rebuild::rebuild(&db, &log, &options, &mut on_progress, &cancel).await;
        bar.finish_and_clear();
        let summary = summary?;
        if args.json {
            println!("{}", serde_json::to_string(&summary)?);
        } else {
            // A rate over a few events measures the fixed cost (tables, lease, switch), not
            // the reading: it is shown only from a log long enough for it to mean something.
            let rate = if summary.events >= MEANINGFUL_RATE_EVENTS {
                format!("{:.0} events/s, ", summary.events_per_second)
            } else {
                String::new()
            };
            println!(
                "{}: rebuilt from {} events{} in {:.2} s ({rate}{} applied); generation {} is live",
                summary.view,
                summary.events,
                if summary.resumed_from > 0 {
                    format!(" (resumed after {})", summary.resumed_from)
                } else {
                    String::new()
                },
                summary.seconds,
                summary.applied,
                summary.generation
            );
        }
    }
    Ok(())
}
