//! The interactive prompt: multi-line statements ended by `;`, history, timing, and a few
//! backslash commands as in psql.

use std::time::Instant;

use anyhow::Result;
use kura_engine::Session;
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;

use crate::render::{Output, print_output};

const HELP: &str = "\
  \\q            quit
  \\timing       toggle statement timing
  \\dt           list tables
  \\dn           list schemas
  \\?            this help
SQL statements end with ';'. Time travel: SELECT * FROM t VERSION AS OF 3;";

pub async fn run(session: &mut Session, mut out: Output) -> Result<()> {
    let mut editor = DefaultEditor::new()?;
    let history = std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".kura_history"));
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    println!("kura {} — type \\? for help, \\q to quit.", env!("CARGO_PKG_VERSION"));
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() { "kura=> " } else { "kura-> " };
        let line = match editor.readline(prompt) {
            Ok(l) => l,
            Err(ReadlineError::Interrupted) => {
                buffer.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        let trimmed = line.trim();
        if buffer.is_empty() && trimmed.starts_with('\\') {
            let _ = editor.add_history_entry(trimmed);
            let sql = match trimmed {
                "\\q" => break,
                "\\?" | "\\h" => {
                    println!("{HELP}");
                    continue;
                }
                "\\timing" => {
                    out.timing = !out.timing;
                    println!("Timing is {}.", if out.timing { "on" } else { "off" });
                    continue;
                }
                "\\dt" => "SELECT table_schema AS schema, table_name AS name, table_type AS type FROM information_schema.tables WHERE table_catalog = 'kura' AND table_schema <> 'information_schema' ORDER BY 1, 2",
                "\\dn" => "SELECT schema_name AS name FROM information_schema.schemata WHERE catalog_name = 'kura' ORDER BY 1",
                other => {
                    println!("invalid command {other}; try \\?");
                    continue;
                }
            };
            execute(session, sql, &out).await;
            continue;
        }
        if !buffer.is_empty() {
            buffer.push('\n');
        }
        buffer.push_str(&line);
        if !trimmed.ends_with(';') {
            continue;
        }
        let _ = editor.add_history_entry(buffer.as_str());
        let sql = std::mem::take(&mut buffer);
        execute(session, &sql, &out).await;
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    Ok(())
}

async fn execute(session: &Session, sql: &str, out: &Output) {
    let statements = match kura_engine::parse_sql(sql) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ERROR: {e}");
            return;
        }
    };
    for stmt in statements {
        let started = Instant::now();
        let result = match session.execute(stmt).await {
            Ok(output) => print_output(output, out).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            eprintln!("ERROR: {e}");
            return;
        }
        if out.timing {
            println!("Time: {:.3} ms", started.elapsed().as_secs_f64() * 1e3);
        }
    }
}
