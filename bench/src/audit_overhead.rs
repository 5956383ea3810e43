//! What the audit trail costs: the same small queries over the PostgreSQL protocol against
//! servers that differ only in their audit setting; part of `bench/audit.sh`.
//!
//! `audit_overhead --queries 10000 --rounds 5 --clients 1 NAME=CONNINFO...` runs `--queries`
//! statements per server, split into `--rounds` rounds; each round visits the servers in a
//! rotating order so none always runs on a warmer machine. Prints one JSON object per server:
//! `{"server", "clients", "queries", "seconds", "ms_per_query"}`.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use tokio_postgres::NoTls;

/// The `i`-th small statement: a point lookup, a small aggregate, a constant; literals vary so
/// every statement is planned and run, not answered from a cache.
fn statement(i: usize) -> String {
    match i % 4 {
        0 => format!("SELECT * FROM bench.visits WHERE visit_id = {}", i % 10_000),
        1 => format!("SELECT count(*), avg(cost) FROM bench.visits WHERE ward = 'w{}'", i % 10),
        2 => format!("SELECT ward, max(cost) FROM bench.visits WHERE visit_id < {} GROUP BY ward", i % 500 + 10),
        _ => format!("SELECT {i} AS n"),
    }
}

async fn run(conninfo: &str, clients: usize, from: usize, count: usize) -> Result<f64> {
    let mut conns = Vec::new();
    for _ in 0..clients {
        let (client, connection) = tokio_postgres::connect(conninfo, NoTls).await.context("connect")?;
        tokio::spawn(connection);
        conns.push(client);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (k, c) in conns.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut i = from + k;
            while i < from + count {
                c.simple_query(&statement(i)).await?;
                i += clients;
            }
            Ok::<(), tokio_postgres::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(started.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> Result<()> {
    let (mut queries, mut rounds, mut clients) = (10_000usize, 5usize, 1usize);
    let mut servers = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--queries" => queries = args.next().context("--queries needs a value")?.parse()?,
            "--rounds" => rounds = args.next().context("--rounds needs a value")?.parse()?,
            "--clients" => clients = args.next().context("--clients needs a value")?.parse()?,
            other => match other.split_once('=') {
                Some((name, conninfo)) => servers.push((name.to_string(), conninfo.to_string())),
                None => bail!("expected NAME=CONNINFO, got {other}"),
            },
        }
    }
    // Warm up every server (plans, file footers, connections).
    for (_, conninfo) in &servers {
        run(conninfo, clients, 0, 200).await?;
    }
    let per_round = queries / rounds;
    let mut seconds = vec![0.0; servers.len()];
    for r in 0..rounds {
        for k in 0..servers.len() {
            let s = (r + k) % servers.len();
            seconds[s] += run(&servers[s].1, clients, r * per_round, per_round).await?;
        }
    }
    for ((name, _), secs) in servers.iter().zip(seconds) {
        let n = per_round * rounds;
        println!(
            "{}",
            serde_json::json!({"server": name, "clients": clients, "queries": n, "seconds": secs, "ms_per_query": secs * 1e3 / n as f64 * clients as f64})
        );
    }
    Ok(())
}
