//! Progress bars for long loads, drawn only when stderr is a terminal.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressStyle};
use kura_engine::ProgressSink;

/// Draws one bar per running operation.
pub struct TerminalProgress {
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl TerminalProgress {
    /// A sink that draws on stderr if it is a terminal, and does nothing otherwise.
    pub fn new() -> Arc<dyn ProgressSink> {
        Arc::new(Self { bars: Mutex::new(HashMap::new()) })
    }
}

impl ProgressSink for TerminalProgress {
    fn update(&self, label: &str, done: u64, total: Option<u64>) {
        if !crate::render::stderr_is_terminal() {
            return;
        }
        let mut bars = self.bars.lock().expect("poisoned");
        let bar = bars.entry(label.to_string()).or_insert_with(|| {
            let bar = match total {
                Some(t) => ProgressBar::new(t),
                None => ProgressBar::new_spinner(),
            };
            // Loads count bytes; a linkage counts record pairs.
            let template = if label.starts_with("linkage") {
                "{msg:34} {bar:30} {human_pos}/{human_len} {per_sec} eta {eta}"
            } else {
                "{msg:30} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
            };
            bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
            bar.set_message(label.to_string());
            bar
        });
        bar.set_position(done);
    }

    fn finish(&self, label: &str) {
        if let Some(bar) = self.bars.lock().expect("poisoned").remove(label) {
            bar.finish_and_clear();
        }
    }
}
