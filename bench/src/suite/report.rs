//! Results: JSON, CSV, a Markdown table and an SVG chart (bars per query, one colour per
//! system, log scale), written by the harness itself.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::systems::System;

/// One query's medians.
#[derive(Debug, Clone)]
pub struct QueryResult {
    pub suite: String,
    pub query: String,
    /// Median milliseconds per system that ran it.
    pub ms: BTreeMap<&'static str, f64>,
    pub rows: usize,
    /// `ok`, or what differed from DuckDB's answer, per checked system.
    pub checks: BTreeMap<&'static str, String>,
}

impl QueryResult {
    pub fn ratio(&self, a: System, b: System) -> Option<f64> {
        Some(self.ms.get(a.key())? / self.ms.get(b.key())?)
    }
}

pub fn geomean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.into_iter().fold((0.0, 0usize), |(s, n), v| (s + v.ln(), n + 1));
    (n > 0).then(|| (sum / n as f64).exp())
}

/// The ratios the issue's goal names, over a set of results.
pub fn goal_ratios(results: &[&QueryResult]) -> BTreeMap<&'static str, f64> {
    let mut out = BTreeMap::new();
    let pairs = [
        ("kura_vs_duckdb", System::Kura, System::DuckDb),
        ("kura_vs_datafusion", System::Kura, System::DataFusion),
        ("wire_vs_kura", System::KuraWire, System::Kura),
        ("datafusion_vs_duckdb", System::DataFusion, System::DuckDb),
    ];
    for (name, a, b) in pairs {
        if let Some(g) = geomean(results.iter().filter_map(|r| r.ratio(a, b))) {
            out.insert(name, g);
        }
    }
    out
}

pub fn csv(results: &[QueryResult], systems: &[System]) -> String {
    let mut s = String::from("suite,query,system,median_ms,rows,check\n");
    for r in results {
        for sys in systems {
            if let Some(ms) = r.ms.get(sys.key()) {
                let check = r.checks.get(sys.key()).map(String::as_str).unwrap_or("reference");
                let _ = writeln!(s, "{},{},{},{ms:.3},{},\"{}\"", r.suite, r.query, sys.key(), r.rows, check.replace('"', "'"));
            }
        }
    }
    s
}

fn fmt_ms(ms: Option<&f64>) -> String {
    ms.map(|v| if *v >= 100.0 { format!("{v:.0}") } else { format!("{v:.1}") }).unwrap_or_default()
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map(|v| format!("{v:.2}")).unwrap_or_default()
}

/// A Markdown table per suite, with geometric means.
pub fn markdown(results: &[QueryResult], suites: &[String]) -> String {
    let mut s = String::new();
    for suite in suites {
        let rs: Vec<&QueryResult> = results.iter().filter(|r| &r.suite == suite).collect();
        if rs.is_empty() {
            continue;
        }
        let _ = writeln!(s, "\n#### {suite}\n");
        let _ = writeln!(
            s,
            "| query | Kura ms | Kura wire ms | DataFusion ms | DuckDB ms | Kura / DuckDB | Kura / DataFusion | wire / Kura | answer |"
        );
        let _ = writeln!(s, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
        for r in &rs {
            let ok = r.checks.values().all(|c| c == "ok");
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.query,
                fmt_ms(r.ms.get("kura")),
                fmt_ms(r.ms.get("kura_wire")),
                fmt_ms(r.ms.get("datafusion")),
                fmt_ms(r.ms.get("duckdb")),
                fmt_ratio(r.ratio(System::Kura, System::DuckDb)),
                fmt_ratio(r.ratio(System::Kura, System::DataFusion)),
                fmt_ratio(r.ratio(System::KuraWire, System::Kura)),
                if ok { "= DuckDB" } else { "DIFFERS" },
            );
        }
        let g = goal_ratios(&rs);
        let _ = writeln!(
            s,
            "| geometric mean | | | | | {} | {} | {} | |",
            fmt_ratio(g.get("kura_vs_duckdb").copied()),
            fmt_ratio(g.get("kura_vs_datafusion").copied()),
            fmt_ratio(g.get("wire_vs_kura").copied()),
        );
    }
    s
}

const COLOURS: [(&str, &str); 4] =
    [("kura", "#c0392b"), ("kura_wire", "#e67e22"), ("datafusion", "#2980b9"), ("duckdb", "#7f8c8d")];

/// One panel per suite: grouped bars per query, milliseconds on a log scale.
pub fn svg(results: &[QueryResult], suites: &[String], systems: &[System], title: &str) -> String {
    let (left, right, top_margin, panel_h, gap) = (70.0, 20.0, 60.0, 260.0, 150.0);
    let max_queries = suites.iter().map(|s| results.iter().filter(|r| &r.suite == s).count()).max().unwrap_or(1);
    let group_w = 14.0 * systems.len() as f64 + 10.0;
    let width = left + right + group_w * max_queries as f64;
    let height = top_margin + suites.len() as f64 * (panel_h + gap) + 20.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(s, r#"<text x="{left}" y="20" font-size="14" font-weight="bold">{}</text>"#, escape(title));
    // Legend.
    let mut x = left;
    for sys in systems {
        let colour = COLOURS.iter().find(|(k, _)| *k == sys.key()).map(|(_, c)| *c).unwrap_or("black");
        let _ = writeln!(s, r#"<rect x="{x}" y="30" width="12" height="12" fill="{colour}"/>"#);
        let _ = writeln!(s, r#"<text x="{}" y="40">{}</text>"#, x + 16.0, escape(sys.label()));
        x += 16.0 + 7.0 * sys.label().len() as f64;
    }
    for (i, suite) in suites.iter().enumerate() {
        let rs: Vec<&QueryResult> = results.iter().filter(|r| &r.suite == suite).collect();
        let y0 = top_margin + i as f64 * (panel_h + gap) + 20.0;
        let all: Vec<f64> = rs.iter().flat_map(|r| r.ms.values().copied()).filter(|v| *v > 0.0).collect();
        if all.is_empty() {
            continue;
        }
        let lo = all.iter().copied().fold(f64::INFINITY, f64::min).log10().floor();
        let hi = all.iter().copied().fold(0.0, f64::max).log10().ceil().max(lo + 1.0);
        let y_of = |ms: f64| y0 + panel_h - (ms.log10() - lo) / (hi - lo) * panel_h;
        let _ = writeln!(s, r#"<text x="{left}" y="{}" font-size="13" font-weight="bold">{}</text>"#, y0 - 6.0, escape(suite));
        let mut e = lo;
        while e <= hi {
            let y = y_of(10f64.powf(e));
            let _ = writeln!(
                s,
                r##"<line x1="{left}" x2="{:.0}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                width - right,
                left - 6.0,
                y + 4.0,
                fmt_tick(10f64.powf(e))
            );
            e += 1.0;
        }
        let _ = writeln!(
            s,
            r#"<text x="14" y="{:.0}" transform="rotate(-90 14 {:.0})" text-anchor="middle">ms (log scale)</text>"#,
            y0 + panel_h / 2.0,
            y0 + panel_h / 2.0
        );
        for (q, r) in rs.iter().enumerate() {
            let gx = left + q as f64 * group_w + 5.0;
            for (k, sys) in systems.iter().enumerate() {
                let Some(ms) = r.ms.get(sys.key()) else { continue };
                let colour = COLOURS.iter().find(|(key, _)| *key == sys.key()).map(|(_, c)| *c).unwrap_or("black");
                let y = y_of(*ms);
                let _ = writeln!(
                    s,
                    r#"<rect x="{:.1}" y="{y:.1}" width="12" height="{:.1}" fill="{colour}"><title>{} {}: {ms:.1} ms</title></rect>"#,
                    gx + 14.0 * k as f64,
                    (y0 + panel_h - y).max(0.5),
                    escape(&r.query),
                    sys.key()
                );
            }
            let lx = gx + group_w / 2.0 - 5.0;
            let ly = y0 + panel_h + 8.0;
            let _ = writeln!(
                s,
                r#"<text x="{lx:.1}" y="{ly:.1}" transform="rotate(45 {lx:.1} {ly:.1})">{}</text>"#,
                escape(&r.query)
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

fn fmt_tick(v: f64) -> String {
    if v >= 1000.0 { format!("{:.0} s", v / 1000.0) } else if v >= 1.0 { format!("{v:.0} ms") } else { format!("{v} ms") }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
