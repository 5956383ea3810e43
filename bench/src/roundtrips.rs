//! Round trips per second of a trivial query over the PostgreSQL protocol, with 1, 16 and 64
//! clients, against each server given; part of `bench/server.sh`.
//!
//! `roundtrips --seconds 5 --clients 1,16,64 [--query SQL] NAME=CONNINFO...` prints one JSON
//! object per line: `{"server": NAME, "query": SQL, "clients": N, "round_trips_per_s": X}`.
//! The default query is `SELECT 1`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio_postgres::NoTls;

async fn measure(conninfo: &str, query: &str, clients: usize, seconds: f64) -> Result<f64> {
    let mut conns = Vec::new();
    for _ in 0..clients {
        let (client, connection) = tokio_postgres::connect(conninfo, NoTls).await.context("connect")?;
        tokio::spawn(connection);
        conns.push(client);
    }
    // Warm up each connection once.
    for c in &conns {
        c.simple_query(query).await?;
    }
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in conns {
        let query = query.to_string();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                c.simple_query(&query).await?;
                n += 1;
            }
            Ok::<u64, tokio_postgres::Error>(n)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut seconds = 5.0;
    let mut clients = vec![1, 16, 64];
    let mut servers = Vec::new();
    let mut query = "SELECT 1".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--query" => query = args.next().context("--query needs a value")?,
            "--seconds" => seconds = args.next().context("--seconds needs a value")?.parse()?,
            "--clients" => {
                clients = args.next().context("--clients needs a value")?.split(',').map(str::parse).collect::<Result<_, _>>()?
            }
            other => match other.split_once('=') {
                Some((name, conninfo)) => servers.push((name.to_string(), conninfo.to_string())),
                None => bail!("expected NAME=CONNINFO, got {other}"),
            },
        }
    }
    for n in clients {
        // Alternate servers for each client count so neither always runs on a warmer machine.
        for (name, conninfo) in &servers {
            let rate = measure(conninfo, &query, n, seconds).await?;
            println!("{}", serde_json::json!({"server": name, "query": query, "clients": n, "round_trips_per_s": rate}));
        }
    }
    Ok(())
}
