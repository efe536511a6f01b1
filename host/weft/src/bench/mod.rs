//! `weft bench`: Weft's costs against baselines measured in the same run (raw wasmtime,
//! native axum), so every change can be judged by ratios rather than by absolute numbers
//! from a noisy shared machine. Each scenario alternates its two sides in rounds.
//!
//! | id | measures | baseline |
//! |---|---|---|
//! | B1 | one lifecycle hook on a fresh instance, host path included | `InstancePre` + new `Store` + the same call, minimal host |
//! | B2 | `GET /tenants/{ctx}/apps/hello/whoami` through the whole stack under load | native axum handler, same JWT check, same JSON |
//! | B3 | a large pull through an app's data entry | native axum streaming the same bytes |
//! | B4 | DPS flows through an app's hooks, durable SQLite, concurrency 8 | — |
//! | B5 | B2 while hello v1/v2 are activated alternately | B2 without swaps |
//! | B6 | 10,000 tenants enabled, then idle: RSS | — |
//!
//! Timing never decides a test: [`tests`] only checks every scenario runs and yields numbers.

mod api;
mod env;
mod flows;
mod hook;
mod load;
mod measure;
mod pull;
mod tenants;

use anyhow::bail;
use std::path::PathBuf;
use std::time::Duration;

/// Keep-alive connections of the HTTP load generator by default: enough to keep both
/// server threads busy on a 2-core machine without measuring queueing alone.
pub const DEFAULT_CONNECTIONS: usize = 16;

/// Tenants B6 enables (the figure).
pub const DEFAULT_TENANTS: usize = 10_000;

/// Bytes B3 pulls by default: large enough for a steady rate, small enough for a minute.
pub const DEFAULT_PULL_BYTES: u64 = 256 << 20;

/// Bytes B3 pulls with `--full` (the figure).
pub const FULL_PULL_BYTES: u64 = 1 << 30;

/// Arguments of `weft bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Longer runs: more rounds everywhere, a 1 GiB pull in B3.
    #[arg(long)]
    pub full: bool,
    /// Run only these scenarios (comma-separated ids, e.g. `B1,B3`).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Concurrent keep-alive connections of the load generator (B2, B5).
    #[arg(long, default_value_t = DEFAULT_CONNECTIONS)]
    pub connections: usize,
    /// Tenants B6 creates and enables.
    #[arg(long, default_value_t = DEFAULT_TENANTS)]
    pub tenants: usize,
    /// Bytes B3 pulls (default 256 MiB, 1 GiB with `--full`).
    #[arg(long)]
    pub pull_bytes: Option<u64>,
    /// Also write the table as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Keep Weft's store in this database instead of SQLite in a temporary directory, e.g.
    /// `postgres://postgres@127.0.0.1:5432/test` (a fresh schema per run, dropped after): the
    /// database's own work then happens outside the host process, as in the issue's
    /// PostgreSQL reference figure for B4.
    #[arg(long)]
    pub store_url: Option<String>,
}

/// How long and how often each scenario runs.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) full: bool,
    /// B1: rounds, and calls per side per round.
    pub(crate) hook_rounds: usize,
    pub(crate) hook_batch: usize,
    /// B2/B5: rounds, and seconds of load per side per round.
    pub(crate) api_rounds: usize,
    pub(crate) api_round: Duration,
    pub(crate) api_warmup: Duration,
    pub(crate) connections: usize,
    /// B2: sequential operations per component in the cost breakdown.
    pub(crate) breakdown_ops: usize,
    /// B3: pulls per side and their size.
    pub(crate) pull_rounds: usize,
    pub(crate) pull_bytes: u64,
    /// B4: seconds of provider flows, then of consumer flows.
    pub(crate) flow_phase: Duration,
    pub(crate) flow_workers: usize,
    /// B5: time between two activations while swapping.
    pub(crate) swap_interval: Duration,
    /// B6: tenants, and whether the host may run as a child `weft serve`.
    pub(crate) tenants: usize,
    pub(crate) child_host: bool,
    /// The store's URL; `None` is SQLite in the data directory.
    pub(crate) store_url: Option<String>,
}

impl Plan {
    fn from_args(args: &BenchArgs) -> Plan {
        let full = args.full;
        Plan {
            full,
            hook_rounds: if full { 60 } else { 20 },
            hook_batch: if full { 1_000 } else { 500 },
            api_rounds: if full { 10 } else { 4 },
            api_round: Duration::from_secs(if full { 5 } else { 2 }),
            api_warmup: Duration::from_secs(1),
            connections: args.connections.max(1),
            breakdown_ops: if full { 2_000 } else { 500 },
            pull_rounds: if full { 7 } else { 15 },
            pull_bytes: args.pull_bytes.unwrap_or(if full {
                FULL_PULL_BYTES
            } else {
                DEFAULT_PULL_BYTES
            }),
            flow_phase: Duration::from_secs(if full { 30 } else { 8 }),
            flow_workers: 8,
            swap_interval: Duration::from_millis(100),
            tenants: args.tenants,
            child_host: true,
            store_url: args.store_url.clone(),
        }
    }

    /// A few iterations of everything: proves the scenarios run, measures nothing.
    #[cfg(test)]
    fn smoke() -> Plan {
        Plan {
            full: false,
            hook_rounds: 2,
            hook_batch: 5,
            api_rounds: 1,
            api_round: Duration::from_millis(300),
            api_warmup: Duration::from_millis(100),
            connections: 2,
            breakdown_ops: 5,
            pull_rounds: 1,
            pull_bytes: 1 << 20,
            flow_phase: Duration::from_millis(300),
            flow_workers: 2,
            swap_interval: Duration::from_millis(50),
            tenants: 5,
            child_host: false,
            store_url: None,
        }
    }
}

/// A pass/miss decision, or why none can be made.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Verdict {
    Pass,
    Miss,
    /// No verdict: the scenario could not run fully (the text says why).
    NotAvailable(String),
}

impl Verdict {
    fn of(ok: bool) -> Verdict {
        if ok { Verdict::Pass } else { Verdict::Miss }
    }

    fn label(&self) -> &str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Miss => "MISS",
            Verdict::NotAvailable(_) => "n/a",
        }
    }
}

/// One line of the result table, plus the notes printed under it.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Row {
    pub(crate) id: &'static str,
    pub(crate) scenario: String,
    /// Weft's side: median (or rate) first, then p99.
    pub(crate) weft: String,
    pub(crate) baseline: String,
    pub(crate) ratio: String,
    pub(crate) target: String,
    pub(crate) verdict: Verdict,
    /// Raw numbers for the JSON output.
    pub(crate) figures: serde_json::Value,
    pub(crate) notes: Vec<String>,
}

/// Scenario ids in run order.
const SCENARIOS: [&str; 6] = ["B1", "B2", "B3", "B4", "B5", "B6"];

fn selected(only: &[String]) -> anyhow::Result<Vec<&'static str>> {
    if only.is_empty() {
        return Ok(SCENARIOS.to_vec());
    }
    let mut out = Vec::new();
    for want in only {
        let want = want.trim().to_ascii_uppercase();
        match SCENARIOS.iter().find(|s| **s == want) {
            Some(s) if !out.contains(s) => out.push(*s),
            Some(_) => {}
            None => bail!(
                "--only: unknown scenario {want:?} (known: {})",
                SCENARIOS.join(",")
            ),
        }
    }
    out.sort_by_key(|s| SCENARIOS.iter().position(|x| x == s));
    Ok(out)
}

/// Runs `weft bench`: the selected scenarios, then the table.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    crate::logging::init(&crate::logging::LogConfig {
        format: crate::logging::LogFormat::Text,
        level: "warn".into(),
    });
    let plan = Plan::from_args(&args);
    let scenarios = selected(&args.only)?;
    println!(
        "weft bench ({} mode, {} CPUs): {}",
        if plan.full { "full" } else { "default" },
        std::thread::available_parallelism().map_or(0, usize::from),
        scenarios.join(", ")
    );
    if cfg!(debug_assertions) {
        println!(
            "WARNING: this is a debug build; run `cargo run --release -p weft -- bench` for real figures"
        );
    }
    let rows = run_plan(&plan, &scenarios, true).await?;
    print_table(&rows);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&rows)?)?;
        println!("\nJSON written to {}", path.display());
    }
    Ok(())
}

/// Runs scenarios; a scenario that fails to run becomes an `n/a` row instead of ending
/// the whole run.
async fn run_plan(plan: &Plan, scenarios: &[&str], verbose: bool) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let needs_env = scenarios.iter().any(|s| *s != "B1");
    let env = if needs_env {
        Some(env::Env::start(plan.store_url.as_deref()).await?)
    } else {
        None
    };
    for id in scenarios {
        if verbose {
            println!("running {id} …");
        }
        let started = std::time::Instant::now();
        let outcome = match (*id, env.as_ref()) {
            ("B1", _) => hook::run(plan).await,
            ("B2", Some(env)) => api::run_b2(plan, env).await,
            ("B3", Some(env)) => pull::run(plan, env).await,
            ("B4", Some(env)) => flows::run(plan, env).await,
            ("B5", Some(env)) => api::run_b5(plan, env).await,
            ("B6", Some(env)) => tenants::run(plan, env).await,
            (other, _) => Err(anyhow::anyhow!("no runner for {other}")),
        };
        let row = outcome.unwrap_or_else(|e| failed_row(id, &e));
        if verbose {
            println!(
                "  {id} done in {:.1} s: {} | {} | ratio {} | {}",
                started.elapsed().as_secs_f64(),
                row.weft,
                row.baseline,
                row.ratio,
                row.verdict.label()
            );
        }
        rows.push(row);
    }
    if let Some(env) = env {
        env.shutdown().await;
    }
    Ok(rows)
}

fn failed_row(id: &str, err: &anyhow::Error) -> Row {
    let id = SCENARIOS
        .iter()
        .find(|s| **s == id)
        .copied()
        .unwrap_or("B?");
    Row {
        id,
        scenario: "(failed to run)".into(),
        weft: "-".into(),
        baseline: "-".into(),
        ratio: "-".into(),
        target: "-".into(),
        verdict: Verdict::NotAvailable(format!("{err:#}")),
        figures: serde_json::Value::Null,
        notes: vec![format!("error: {err:#}")],
    }
}

fn print_table(rows: &[Row]) {
    let header = [
        "id",
        "scenario",
        "weft (p50 / p99)",
        "baseline (p50 / p99)",
        "ratio",
        "target",
        "result",
    ];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.id.to_string(),
                r.scenario.clone(),
                r.weft.clone(),
                r.baseline.clone(),
                r.ratio.clone(),
                r.target.clone(),
                r.verdict.label().to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cols: &[String]| {
        let padded: Vec<String> = cols
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("| {} |", padded.join(" | "))
    };
    println!();
    println!("{}", line(&header.map(String::from)));
    println!(
        "|{}|",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("|")
    );
    for row in &cells {
        println!("{}", line(row));
    }
    for r in rows {
        if r.notes.is_empty() && !matches!(r.verdict, Verdict::NotAvailable(_)) {
            continue;
        }
        println!("\n{} notes:", r.id);
        if let Verdict::NotAvailable(why) = &r.verdict
            && !r.notes.iter().any(|n| n.contains(why.as_str()))
        {
            println!("  - no verdict: {why}");
        }
        for n in &r.notes {
            println!("  - {n}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_selects_known_scenarios_in_order() {
        assert_eq!(
            selected(&["b3".into(), "B1".into(), "b3".into()]).unwrap(),
            vec!["B1", "B3"]
        );
        assert_eq!(selected(&[]).unwrap(), SCENARIOS.to_vec());
        assert!(selected(&["B9".into()]).is_err());
    }

    /// Every scenario runs for a handful of iterations and yields figures (no timing is
    /// asserted: the machine is shared and noisy).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_scenario_runs_and_reports_numbers() {
        let plan = Plan::smoke();
        let rows = run_plan(&plan, &SCENARIOS, false).await.unwrap();
        print_table(&rows);
        assert_eq!(rows.len(), SCENARIOS.len());
        for row in &rows {
            let failed = matches!(&row.verdict, Verdict::NotAvailable(why) if why.contains("error"))
                || row.scenario == "(failed to run)";
            assert!(!failed, "{} did not run: {:?}", row.id, row.notes);
            assert!(
                !row.figures.is_null(),
                "{} produced no figures: {row:?}",
                row.id
            );
        }
        let b1 = &rows[0].figures;
        assert!(b1["weft_p50_us"].as_f64().unwrap() > 0.0);
        assert!(b1["raw_p50_us"].as_f64().unwrap() > 0.0);
        let b2 = &rows[1].figures;
        assert!(b2["weft_ok"].as_u64().unwrap() > 0, "{b2}");
        assert_eq!(b2["weft_failed"].as_u64().unwrap(), 0, "{b2}");
        assert!(b2["native_ok"].as_u64().unwrap() > 0, "{b2}");
        let b3 = &rows[2].figures;
        assert_eq!(b3["bytes"].as_u64().unwrap(), 1 << 20);
        let b4 = &rows[3].figures;
        assert!(b4["provider_flows"].as_u64().unwrap() > 0, "{b4}");
        assert!(b4["consumer_flows"].as_u64().unwrap() > 0, "{b4}");
        let b5 = &rows[4].figures;
        assert_eq!(b5["swap_failed"].as_u64().unwrap(), 0, "{b5}");
        assert!(b5["swaps"].as_u64().unwrap() > 0, "{b5}");
        let b6 = &rows[5].figures;
        assert_eq!(b6["tenants"].as_u64().unwrap(), 5);
        assert!(b6["rss_after_bytes"].as_u64().unwrap() > 0);
    }
}
