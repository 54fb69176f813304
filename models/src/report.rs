//! What a family adds to a finished run besides its metrics: named values for the summary
//! and charts to draw (the command line renders them as PNG files).

/// One line of a chart: `(x, y)` points in increasing x.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// A one-panel line chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub lines: Vec<Line>,
    /// A logarithmic y axis (gradient norms over many decades).
    pub log_y: bool,
    /// Points only, never joined (node embeddings).
    pub scatter: bool,
}

/// A family's report on a finished run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// Summary values, e.g. `bits_per_char`, `naive_rmse`.
    pub values: Vec<(&'static str, f64)>,
    /// Charts and the file names to write them to, e.g. `forecast.png`.
    pub charts: Vec<(String, Chart)>,
}
