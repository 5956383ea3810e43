//! Printing results the way psql does: aligned tables with a row count, or CSV.

use std::io::{IsTerminal, Write};

use comfy_table::{CellAlignment, ContentArrangement, Table, presets};
use futures::StreamExt;
use kura_engine::StatementOutput;
use kura_engine::datafusion::arrow::array::RecordBatch;
use kura_engine::datafusion::arrow::datatypes::{DataType, SchemaRef};
use kura_engine::datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

/// How to print.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// CSV instead of an aligned table.
    pub csv: bool,
    /// Print each statement's time.
    pub timing: bool,
}

pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

#[allow(dead_code)]
pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// Prints one statement's output to stdout.
pub async fn print_output(output: StatementOutput, how: &Output) -> kura_engine::Result<()> {
    match output {
        StatementOutput::Command { tag, .. } => {
            println!("{tag}");
            Ok(())
        }
        StatementOutput::CopyOut(mut copy) => {
            let mut out = std::io::stdout().lock();
            while let Some(chunk) = copy.rows.next().await {
                let _ = out.write_all(&chunk?);
            }
            Ok(())
        }
        StatementOutput::CopyIn(mut copy) => {
            // `COPY t FROM STDIN` in `kura sql` reads this process's standard input.
            let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(4);
            std::thread::spawn(move || {
                use std::io::Read as _;
                let mut stdin = std::io::stdin().lock();
                loop {
                    let mut buf = vec![0u8; 1 << 16];
                    match stdin.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            buf.truncate(n);
                            if tx.blocking_send(Ok(buf)).is_err() {
                                break;
                            }
                        }
                        Err(e) => {
                            let _ = tx.blocking_send(Err(e));
                            break;
                        }
                    }
                }
            });
            while let Some(chunk) = rx.recv().await {
                let chunk = chunk.map_err(|e| kura_engine::Error::Invalid(format!("cannot read standard input: {e}")))?;
                copy.send(chunk.into()).await;
            }
            let rows = copy.finish().await?;
            println!("COPY {rows}");
            Ok(())
        }
        StatementOutput::Rows(mut stream) => {
            let schema = stream.schema();
            if how.csv {
                let mut out = std::io::stdout().lock();
                let header: Vec<String> = schema.fields().iter().map(|f| csv_cell(f.name())).collect();
                let _ = writeln!(out, "{}", header.join(","));
                while let Some(batch) = stream.next().await {
                    let batch = batch.map_err(kura_engine::Error::from_datafusion)?;
                    for row in cells(&batch)? {
                        let line: Vec<String> = row.iter().map(|c| c.as_deref().map(csv_cell).unwrap_or_default()).collect();
                        let _ = writeln!(out, "{}", line.join(","));
                    }
                }
                return Ok(());
            }
            let mut batches = Vec::new();
            while let Some(batch) = stream.next().await {
                batches.push(batch.map_err(kura_engine::Error::from_datafusion)?);
            }
            print_table(&schema, &batches)
        }
    }
}

fn csv_cell(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) { format!("\"{}\"", v.replace('"', "\"\"")) } else { v.to_string() }
}

fn cells(batch: &RecordBatch) -> kura_engine::Result<Vec<Vec<Option<String>>>> {
    let options = FormatOptions::default();
    let formatters: Vec<_> = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<Result<_, _>>()
        .map_err(|e| kura_engine::Error::from_datafusion(e.into()))?;
    Ok((0..batch.num_rows())
        .map(|r| {
            formatters
                .iter()
                .zip(batch.columns())
                .map(|(f, c)| c.is_valid(r).then(|| f.value(r).to_string()))
                .collect()
        })
        .collect())
}

fn is_numeric(dt: &DataType) -> bool {
    dt.is_numeric()
}

/// Prints an aligned table followed by "(N rows)".
pub fn print_table(schema: &SchemaRef, batches: &[RecordBatch]) -> kura_engine::Result<()> {
    let mut table = Table::new();
    table.load_preset(presets::ASCII_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Disabled);
    table.set_header(schema.fields().iter().map(|f| f.name().clone()));
    let mut rows = 0usize;
    for batch in batches {
        for row in cells(batch)? {
            rows += 1;
            table.add_row(row.into_iter().map(|c| c.unwrap_or_default()));
        }
    }
    for (i, f) in schema.fields().iter().enumerate() {
        if is_numeric(f.data_type()) {
            if let Some(column) = table.column_mut(i) {
                column.set_cell_alignment(CellAlignment::Right);
            }
        }
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{table}");
    let _ = writeln!(out, "({rows} row{})", if rows == 1 { "" } else { "s" });
    Ok(())
}
