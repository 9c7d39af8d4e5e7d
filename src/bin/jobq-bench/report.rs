//! Results: one row per measured figure, printed as a table or as JSON.

use serde::Serialize;

/// Whether bigger or smaller numbers are better for a figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    /// Throughput: more is better.
    Higher,
    /// Latency or memory: less is better.
    Lower,
}

/// One measured figure of jobq, its raw baseline (if any) and its target.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The workload, e.g. `drain 100000 no-op, 4 workers, NORMAL`.
    pub name: String,
    /// The unit of `jobq` and `raw`, e.g. `jobs/s` or `ms`.
    pub unit: &'static str,
    /// jobq's figure (median of the runs).
    pub jobq: f64,
    /// The raw rusqlite baseline's figure, when there is one.
    pub raw: Option<f64>,
    /// `jobq / raw`, for every kind of figure (below 1 is better for latency).
    pub ratio: Option<f64>,
    /// The target, in words (`>= 0.8x raw`, `<= 0.5 ms`).
    pub target: Option<String>,
    /// Whether the target is met.
    pub pass: Option<bool>,
    /// Which way is better.
    pub better: Better,
    /// Every run's jobq figure.
    pub runs: Vec<f64>,
}

impl Row {
    /// A throughput row with no baseline and no target yet.
    pub fn new(name: impl Into<String>, unit: &'static str, runs: Vec<f64>) -> Row {
        Row {
            name: name.into(),
            unit,
            jobq: median(&runs),
            raw: None,
            ratio: None,
            target: None,
            pass: None,
            better: Better::Higher,
            runs,
        }
    }

    /// Marks a row where smaller is better (latency, memory).
    pub fn lower(mut self) -> Row {
        self.better = Better::Lower;
        self
    }

    /// Sets the raw baseline and the ratio jobq / raw.
    pub fn raw(mut self, raw: f64) -> Row {
        self.raw = Some(raw);
        self.ratio = (raw > 0.0).then(|| self.jobq / raw);
        self
    }

    /// A target on the ratio to raw: at least `min` x.
    pub fn min_ratio(mut self, min: f64) -> Row {
        self.target = Some(format!(">= {min}x raw"));
        self.pass = self.ratio.map(|r| r >= min);
        self
    }

    /// A target on the figure itself: at most `max` (in the row's unit).
    pub fn at_most(mut self, max: f64) -> Row {
        self.target = Some(format!("<= {max} {}", self.unit));
        self.pass = Some(self.jobq <= max);
        self
    }

    /// A target on the figure itself: at least `min` (in the row's unit).
    pub fn at_least(mut self, min: f64) -> Row {
        self.target = Some(format!(">= {min} {}", self.unit));
        self.pass = Some(self.jobq >= min);
        self
    }
}

/// The median of `xs` (0 for none).
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The `p`-th percentile (0-100) of sorted `xs`, nearest rank.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn number(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// Prints the rows as an aligned text table.
pub fn print_table(rows: &[Row]) {
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(8).max(8);
    println!(
        "{:<width$}  {:>10}  {:>10}  {:>6}  {:<7}  {:<16}  result",
        "workload", "jobq", "raw", "ratio", "unit", "target"
    );
    for r in rows {
        let raw = r.raw.map(number).unwrap_or_else(|| "-".into());
        let ratio = r
            .ratio
            .map(|x| format!("{x:.2}"))
            .unwrap_or_else(|| "-".into());
        let pass = match r.pass {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "",
        };
        println!(
            "{:<width$}  {:>10}  {:>10}  {:>6}  {:<7}  {:<16}  {pass}",
            r.name,
            number(r.jobq),
            raw,
            ratio,
            r.unit,
            r.target.as_deref().unwrap_or("-"),
        );
    }
}

/// Prints the rows as one JSON document with the run's settings.
pub fn print_json(rows: &[Row], settings: serde_json::Value) {
    let doc = serde_json::json!({ "settings": settings, "results": rows });
    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
}
