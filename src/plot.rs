//! Training-curve and general line charts written as PNG files.
//!
//! Everything is drawn from scratch on an RGB pixel buffer: anti-aliased thick lines, a 5x7 bitmap font and "nice"
//! (1-2-5, or powers of ten on a logarithmic axis) axis ticks. Only the `png` crate is used, for encoding.

use simdnn::models::checkpoint::write_atomic;
use std::io;
use std::path::Path;

/// One epoch's metrics, as plotted.
#[derive(Clone, Debug)]
pub struct EpochPoint {
    pub epoch: usize,
    pub train_loss: f64,
    pub test_loss: f64,
    /// Fraction in `[0, 1]`; plotted in percent.
    pub train_accuracy: f64,
    /// Fraction in `[0, 1]`; plotted in percent.
    pub test_accuracy: f64,
}

/// Draws loss (left panel) and accuracy (right panel) against the epoch, train and test as two coloured lines with
/// point markers, and writes the PNG atomically (a temporary file in the same directory, then rename).
///
/// Points whose value is NaN, infinite or of magnitude above 1e300 are left out; an empty `points` gives empty axes.
pub fn write_training_plot(path: &Path, title: &str, points: &[EpochPoint]) -> io::Result<()> {
    write_canvas(path, &render_training(title, points))
}

/// One line of a chart.
#[derive(Clone, Debug, Default)]
pub struct Series {
    pub label: String,
    /// `(x, y)` points joined in the order given (callers give increasing x); the line is broken at points that
    /// cannot be placed (NaN, infinite, magnitude above 1e300, or y <= 0 on a logarithmic axis).
    pub points: Vec<(f64, f64)>,
}

/// A chart of one panel: any number of series (up to 6 distinct colours, then they repeat), a legend, axis labels,
/// and optionally a logarithmic y axis.
#[derive(Clone, Debug, Default)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// Logarithmic y axis with ticks at powers of ten; points with y <= 0 are left out.
    pub log_y: bool,
    /// Points only, never joined (a scatter plot: node embeddings).
    pub scatter: bool,
}

/// Draws the chart and writes the PNG atomically (a temporary file in the same directory, then rename), as
/// [`write_training_plot`] does.
///
/// The image is 960 pixels wide and 420 high, taller when the legend needs more than one row. An empty series list
/// gives empty axes.
pub fn write_line_plot(path: &Path, chart: &LineChart) -> io::Result<()> {
    write_canvas(path, &render_line_chart(chart))
}

fn write_canvas(path: &Path, canvas: &Canvas) -> io::Result<()> {
    let png = encode_png(canvas.width, canvas.height, &canvas.pixels)?;
    write_atomic(path, &png)
}

const WIDTH: usize = 960;
const HEIGHT: usize = 420;
/// Text scale: the 5x7 font drawn with 2x2-pixel dots.
const SCALE: i64 = 2;

type Rgb = [u8; 3];
const WHITE: Rgb = [255, 255, 255];
const INK: Rgb = [30, 30, 30];
const FRAME: Rgb = [90, 90, 90];
const GRID: Rgb = [228, 228, 228];
const MINOR_GRID: Rgb = [242, 242, 242];
/// Series colours, used in turn; the training plot's train and test lines take the first two.
const PALETTE: [Rgb; 6] = [[31, 119, 180], [230, 85, 13], [44, 160, 44], [214, 39, 40], [148, 103, 189], [140, 86, 75]];
const TRAIN: Rgb = PALETTE[0];
const TEST: Rgb = PALETTE[1];

/// Frame top and the gap below the frame (for tick labels and the x label) when the legend takes one row.
const PANEL_TOP: f64 = 76.0;
const PANEL_FOOT: f64 = 56.0;

/// Lays out the training chart: two half-width panels sharing the epoch axis.
fn render_training(title: &str, points: &[EpochPoint]) -> Canvas {
    let mut points = points.to_vec();
    points.sort_by_key(|p| p.epoch); // lines must run left to right
    let series =
        |f: fn(&EpochPoint) -> f64| -> Vec<(f64, f64)> { points.iter().map(|p| (p.epoch as f64, f(p))).collect() };
    let loss = [series(|p| p.train_loss), series(|p| p.test_loss)];
    let accuracy = [series(|p| 100.0 * p.train_accuracy), series(|p| 100.0 * p.test_accuracy)];
    fn lines([train, test]: &[Vec<(f64, f64)>; 2]) -> Vec<Line<'_>> {
        vec![
            Line { label: "train", points: train, colour: TRAIN, scatter: false },
            Line { label: "test", points: test, colour: TEST, scatter: false },
        ]
    }

    let mut canvas = Canvas::new(WIDTH, HEIGHT);
    canvas.title(title);
    let half = WIDTH as f64 / 2.0;
    Panel::new(0.0, half, HEIGHT, "loss", "epoch", lines(&loss), false).draw(&mut canvas);
    Panel::new(half, half, HEIGHT, "accuracy %", "epoch", lines(&accuracy), false).draw(&mut canvas);
    canvas
}

/// Lays out a line chart: one full-width panel, moved down (and the image made taller) for each legend row past
/// the first.
fn render_line_chart(chart: &LineChart) -> Canvas {
    let (panel, height) = line_chart_panel(chart);
    let mut canvas = Canvas::new(WIDTH, height);
    canvas.title(&chart.title);
    panel.draw(&mut canvas);
    canvas
}

/// The panel of a line chart and the image height it needs.
fn line_chart_panel(chart: &LineChart) -> (Panel<'_>, usize) {
    let lines = (chart.series.iter().zip(PALETTE.iter().cycle()))
        .map(|(s, &colour)| Line { label: &s.label, points: &s.points, colour, scatter: chart.scatter })
        .collect();
    let mut panel = Panel::new(0.0, WIDTH as f64, HEIGHT, &chart.y_label, &chart.x_label, lines, chart.log_y);
    // The plot area keeps its height, so the axes computed above stay valid after the move.
    let extra = (panel.legend_rows().len().max(1) - 1) * LEGEND_ROW as usize;
    panel.top += extra as f64;
    panel.bottom += extra as f64;
    (panel, HEIGHT + extra)
}

/// Whether a value can be placed on a linear axis; the magnitude cap keeps all axis arithmetic finite.
fn plottable(v: f64) -> bool {
    v.is_finite() && v.abs() <= 1e300
}

/// An axis from `lo` to `hi` with ticks at the multiples of `step` inside that range.
///
/// A logarithmic axis works in decades: `lo`, `hi`, `step` and the tick positions are base-10 exponents.
#[derive(Debug)]
struct Axis {
    lo: f64,
    hi: f64,
    step: f64,
    log: bool,
}

/// Most tick labels on a logarithmic axis, however many decades it spans.
const MAX_LOG_TICKS: usize = 8;

impl Axis {
    /// A linear value axis rounded outwards to whole steps, with about `target` ticks.
    fn values(data: impl Iterator<Item = f64>, target: usize) -> Axis {
        let (mut lo, mut hi) = min_max(data.filter(|v| plottable(*v))).unwrap_or((0.0, 1.0));
        if hi - lo <= 1e-9 * lo.abs().max(hi.abs()) {
            // A flat series still needs a visible range.
            let pad = if lo == 0.0 { 1.0 } else { 0.1 * lo.abs() };
            (lo, hi) = (lo - pad, hi + pad);
        }
        let step = nice_step((hi - lo) / target.max(1) as f64);
        Axis { lo: (lo / step).floor() * step, hi: (hi / step).ceil() * step, step, log: false }
    }

    /// A logarithmic value axis spanning the whole decades that hold the positive finite data (at least one decade;
    /// two around a single power of ten), with ticks every 1, 2, 5, 10, ... decades, at most `target` of them
    /// (and never more than [`MAX_LOG_TICKS`]).
    fn log_values(data: impl Iterator<Item = f64>, target: usize) -> Axis {
        let exponents = data.filter(|v| *v > 0.0 && v.is_finite()).map(f64::log10);
        let (lo, hi) = min_max(exponents).unwrap_or((0.0, 1.0));
        // The tolerance keeps a power of ten whose logarithm is off by an ulp in its own decade.
        let (mut lo, mut hi) = ((lo + 1e-9).floor(), (hi - 1e-9).ceil());
        if hi <= lo {
            (lo, hi) = (lo - 1.0, hi + 1.0); // a single power of ten sits mid-panel
        }
        let target = target.clamp(1, MAX_LOG_TICKS) as f64;
        let mut step = nice_step((hi - lo) / target).max(1.0);
        let axis = |step| Axis { lo, hi, step, log: true };
        while axis(step).ticks().len() > MAX_LOG_TICKS {
            step = nice_step(step * 1.5); // the next 1-2-5 step
        }
        axis(step)
    }

    /// A linear axis spanning the data exactly, with at most about `max_ticks` ticks; whole-number ticks when all
    /// the data are whole numbers (epochs, step counts).
    fn span(data: impl Iterator<Item = f64>, max_ticks: usize) -> Axis {
        let data: Vec<f64> = data.filter(|v| plottable(*v)).collect();
        let whole = data.iter().all(|v| v.fract() == 0.0);
        let (mut lo, mut hi) = min_max(data.iter().copied()).unwrap_or((0.0, 1.0));
        if hi - lo <= 1e-9 * lo.abs().max(hi.abs()) {
            // A single x value sits mid-panel.
            let pad = if lo.abs() < 1e6 && (whole || lo == 0.0) { 0.5 } else { 0.1 * lo.abs() };
            (lo, hi) = (lo - pad, hi + pad);
        }
        let step = nice_step((hi - lo) / max_ticks.max(1) as f64);
        Axis { lo, hi, step: if whole { step.max(1.0) } else { step }, log: false }
    }

    /// Where `v` goes on the axis (its logarithm on a logarithmic axis), or NaN if it cannot be placed.
    fn position(&self, v: f64) -> f64 {
        let placeable = if self.log { v > 0.0 && v.is_finite() } else { plottable(v) };
        match (placeable, self.log) {
            (false, _) => f64::NAN,
            (true, true) => v.log10(),
            (true, false) => v,
        }
    }

    /// The tick positions (at most about a hundred whatever the range). A logarithmic axis of at most two decades
    /// also gets ticks at 2 and 5 times each power of ten.
    fn ticks(&self) -> Vec<f64> {
        let first = (self.lo / self.step - 1e-9).ceil();
        let last = (self.hi / self.step + 1e-9).floor();
        let count = if last >= first { (last - first).min(100.0) as usize + 1 } else { 0 };
        let ticks = (0..count).map(|i| (first + i as f64) * self.step);
        if self.log && self.step == 1.0 && self.hi - self.lo <= 2.0 {
            let within = |p: &f64| *p <= self.hi + 1e-9;
            ticks.flat_map(|p| [p, p + 2f64.log10(), p + 5f64.log10()]).filter(within).collect()
        } else {
            ticks.collect()
        }
    }

    /// Unlabelled positions between the ticks: on a logarithmic axis whose ticks skip decades, the skipped decades
    /// (when there are at most 64 of them, so the lines stay apart).
    fn minor_ticks(&self) -> Vec<f64> {
        if !self.log || self.step <= 1.0 || self.hi - self.lo > 64.0 {
            return Vec::new();
        }
        let decades = (self.lo.ceil() as i64)..=(self.hi.floor() as i64);
        decades.map(|e| e as f64).filter(|e| (e / self.step).fract() != 0.0).collect()
    }

    /// Where the position `p` falls between `lo` (0) and `hi` (1).
    fn fraction(&self, p: f64) -> f64 {
        (p - self.lo) / (self.hi - self.lo)
    }

    /// A tick label: on a linear axis with just enough decimals for the step; on a logarithmic axis plain numbers
    /// from 0.01 to 1000 and `1e-3`, `5e7` style beyond.
    fn label(&self, p: f64) -> String {
        if self.log {
            let exponent = (p + 1e-6).floor();
            let mantissa = 10f64.powf(p - exponent).round();
            if (-2.0..=3.0).contains(&exponent) {
                format!("{:.*}", (-exponent).max(0.0) as usize, mantissa * 10f64.powf(exponent))
            } else {
                format!("{mantissa}e{exponent}")
            }
        } else if self.step >= 1e-4 && p.abs() < 1e7 {
            let decimals = (-(self.step.log10() + 1e-9).floor()).clamp(0.0, 6.0) as usize;
            format!("{:.*}", decimals, p + 0.0) // `+ 0.0` turns -0 into 0
        } else {
            format!("{p:.1e}")
        }
    }
}

/// The least and greatest values, if any.
fn min_max(data: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    data.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// The smallest 1, 2 or 5 times a power of ten that is at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let multiple = [1.0, 2.0, 5.0].into_iter().find(|m| raw <= m * magnitude * (1.0 + 1e-9)).unwrap_or(10.0);
    multiple * magnitude
}

/// One plotted line: its legend label, data points and colour.
struct Line<'a> {
    label: &'a str,
    points: &'a [(f64, f64)],
    colour: Rgb,
    /// Markers only, not joined.
    scatter: bool,
}

/// A legend entry: a colour swatch (none for the note of entries left out) and its text.
struct LegendEntry {
    text: String,
    colour: Option<Rgb>,
}

impl LegendEntry {
    /// The swatch: a line with a marker, then a gap before the text.
    const SWATCH: i64 = 30;

    fn width(&self) -> i64 {
        text_width(&self.text) + if self.colour.is_some() { Self::SWATCH } else { 0 }
    }
}

/// Width of a legend row, entries separated by [`LEGEND_GAP`].
fn row_width(row: &[LegendEntry]) -> i64 {
    row.iter().map(LegendEntry::width).sum::<i64>() + LEGEND_GAP * (row.len() as i64 - 1).max(0)
}

const LEGEND_GAP: i64 = 22;
const LEGEND_ROW: i64 = 20;
/// Most legend rows; series past them are counted in a "+N more" note.
const MAX_LEGEND_ROWS: usize = 4;

/// One chart panel: a framed plot area with its axes, lines, y label and legend.
struct Panel<'a> {
    y_label: &'a str,
    x_label: &'a str,
    lines: Vec<Line<'a>>,
    /// Frame edges in pixels: left, top, right, bottom.
    left: f64,
    top: f64,
    right: f64,
    bottom: f64,
    x: Axis,
    y: Axis,
}

/// Gap between the frame and the outermost data, so markers are not cut by the frame.
const INSET: f64 = 10.0;

impl<'a> Panel<'a> {
    /// Fits a panel into the horizontal strip `[x0, x0 + width)` of an image `height` pixels high, sizing the left
    /// margin to the y labels and the x ticks to their labels.
    fn new(
        x0: f64,
        width: f64,
        height: usize,
        y_label: &'a str,
        x_label: &'a str,
        lines: Vec<Line<'a>>,
        log_y: bool,
    ) -> Panel<'a> {
        let (top, bottom) = (PANEL_TOP, height as f64 - PANEL_FOOT);
        let values = lines.iter().flat_map(|l| l.points.iter().map(|p| p.1));
        // Decade labels are short, so a logarithmic axis can take them a little closer together.
        let y = if log_y {
            Axis::log_values(values, ((bottom - top) / 36.0) as usize)
        } else {
            Axis::values(values, ((bottom - top) / 45.0) as usize)
        };
        let widest = y.ticks().into_iter().map(|p| text_width(&y.label(p))).max().unwrap_or(0);
        let (left, right) = (x0 + 24.0 + widest as f64, x0 + width - 20.0);

        // Fewer ticks until neighbouring labels have room between them.
        let xs = || lines.iter().flat_map(|l| l.points.iter().map(|p| p.0));
        let room = right - left - 2.0 * INSET;
        let mut max_ticks = (room / 40.0).max(1.0) as usize;
        let x = loop {
            let x = Axis::span(xs(), max_ticks);
            let widest = x.ticks().into_iter().map(|p| text_width(&x.label(p))).max().unwrap_or(0);
            if max_ticks <= 1 || room * x.step / (x.hi - x.lo) >= widest as f64 + 16.0 {
                break x;
            }
            max_ticks -= 1;
        };
        Panel { y_label, x_label, lines, left, top, right, bottom, x, y }
    }

    /// Pixel column of the x-axis position `p`.
    fn px(&self, p: f64) -> f64 {
        self.left + INSET + self.x.fraction(p) * (self.right - self.left - 2.0 * INSET)
    }

    /// Pixel row of the y-axis position `p`.
    fn py(&self, p: f64) -> f64 {
        self.bottom - INSET - self.y.fraction(p) * (self.bottom - self.top - 2.0 * INSET)
    }

    /// Maps a data point to pixel coordinates (non-finite for points that cannot be placed).
    fn map(&self, (x, y): (f64, f64)) -> (f64, f64) {
        let (x, y) = (self.x.position(x), self.y.position(y));
        if x.is_finite() && y.is_finite() {
            (self.px(x), self.py(y))
        } else {
            (f64::NAN, f64::NAN)
        }
    }

    fn draw(&self, c: &mut Canvas) {
        self.draw_axes(c);
        for line in &self.lines {
            self.draw_line(c, line);
        }
        self.draw_header(c);
    }

    /// Grid, frame, tick marks, tick labels and the x label.
    fn draw_axes(&self, c: &mut Canvas) {
        let (l, t, r, b) = (self.left as i64, self.top as i64, self.right as i64, self.bottom as i64);
        let x_ticks: Vec<(i64, f64)> = self.x.ticks().into_iter().map(|p| (self.px(p).round() as i64, p)).collect();
        let y_ticks: Vec<(i64, f64)> = self.y.ticks().into_iter().map(|p| (self.py(p).round() as i64, p)).collect();
        for &(x, _) in &x_ticks {
            c.rect(x, t, x + 1, b, GRID);
        }
        for y in self.y.minor_ticks().into_iter().map(|p| self.py(p).round() as i64) {
            c.rect(l, y, r, y + 1, MINOR_GRID);
            c.rect(l - 3, y, l, y + 1, FRAME);
        }
        for &(y, _) in &y_ticks {
            c.rect(l, y, r, y + 1, GRID);
        }
        c.frame(l, t, r, b, FRAME);

        for &(x, p) in &x_ticks {
            c.rect(x, b, x + 1, b + 6, FRAME);
            let label = self.x.label(p);
            c.text(x - text_width(&label) / 2, b + 10, &label, INK);
        }
        for &(y, p) in &y_ticks {
            c.rect(l - 6, y, l, y + 1, FRAME);
            let label = self.y.label(p);
            c.text(l - 10 - text_width(&label), y - 7, &label, INK);
        }
        c.text((l + r - text_width(self.x_label)) / 2, b + 32, self.x_label, INK);
    }

    /// A polyline through the points that can be placed, broken at the others, with a marker on each point unless
    /// they are too dense to tell apart.
    fn draw_line(&self, c: &mut Canvas, line: &Line) {
        let pixels: Vec<(f64, f64)> = line.points.iter().map(|&p| self.map(p)).collect();
        if !line.scatter {
            for pair in pixels.windows(2) {
                c.line(pair[0], pair[1], 2.2, line.colour);
            }
        }
        if line.scatter || (self.right - self.left) >= 8.0 * pixels.len() as f64 {
            for &p in &pixels {
                c.line(p, p, 7.0, line.colour); // a zero-length thick line is a disc
            }
        }
    }

    /// The legend packed into right-aligned rows (series in order, left to right, top to bottom) beside the y
    /// label; at most [`MAX_LEGEND_ROWS`], the last ending with a "+N more" note if series are left out.
    fn legend_rows(&self) -> Vec<Vec<LegendEntry>> {
        let room = (self.right - self.left) as i64 - text_width(self.y_label) - 24;
        let mut rows: Vec<Vec<LegendEntry>> = Vec::new();
        for (i, line) in self.lines.iter().enumerate() {
            let entry = LegendEntry { text: line.label.to_string(), colour: Some(line.colour) };
            if let Some(row) = rows.last_mut().filter(|row| row_width(row) + LEGEND_GAP + entry.width() <= room) {
                row.push(entry);
            } else if rows.len() < MAX_LEGEND_ROWS {
                rows.push(vec![entry]);
            } else {
                // No row left: end the last one with a count of the series left out, making room for it.
                if let Some(row) = rows.last_mut() {
                    let mut hidden = self.lines.len() - i;
                    loop {
                        let note = LegendEntry { text: format!("+{hidden} more"), colour: None };
                        if row.len() <= 1 || row_width(row) + LEGEND_GAP + note.width() <= room {
                            row.push(note);
                            break;
                        }
                        row.pop();
                        hidden += 1;
                    }
                }
                break;
            }
        }
        rows
    }

    /// The y label on the left just above the frame, the legend rows on the right, the last one level with it.
    fn draw_header(&self, c: &mut Canvas) {
        let base = self.top as i64 - 24;
        c.text(self.left as i64, base, self.y_label, INK);
        let rows = self.legend_rows();
        for (i, row) in rows.iter().enumerate() {
            let y = base - (rows.len() - 1 - i) as i64 * LEGEND_ROW;
            let mut x = self.right as i64 - row_width(row);
            for entry in row {
                if let Some(colour) = entry.colour {
                    let (x, mid) = (x as f64, (y + 7) as f64);
                    c.line((x, mid), (x + 22.0, mid), 2.2, colour);
                    c.line((x + 11.0, mid), (x + 11.0, mid), 7.0, colour);
                }
                let text_x = x + entry.width() - text_width(&entry.text);
                c.text(text_x, y, &entry.text, INK);
                x += entry.width() + LEGEND_GAP;
            }
        }
    }
}

/// An RGB8 pixel buffer; every drawing call clips to the image.
struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl Canvas {
    fn new(width: usize, height: usize) -> Canvas {
        Canvas { width, height, pixels: WHITE.repeat(width * height) }
    }

    /// Mixes `colour` into pixel (x, y) with opacity `alpha`.
    fn blend(&mut self, x: i64, y: i64, colour: Rgb, alpha: f64) {
        if x < 0 || y < 0 || x >= self.width as i64 || y >= self.height as i64 {
            return;
        }
        let i = (y as usize * self.width + x as usize) * 3;
        if let Some(pixel) = self.pixels.get_mut(i..i + 3) {
            for (old, new) in pixel.iter_mut().zip(colour) {
                *old = (*old as f64 + (new as f64 - *old as f64) * alpha).round() as u8;
            }
        }
    }

    fn set(&mut self, x: i64, y: i64, colour: Rgb) {
        self.blend(x, y, colour, 1.0);
    }

    /// Fills the half-open rectangle `[x0, x1) x [y0, y1)`.
    fn rect(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, colour: Rgb) {
        for y in y0.max(0)..y1.min(self.height as i64) {
            for x in x0.max(0)..x1.min(self.width as i64) {
                self.set(x, y, colour);
            }
        }
    }

    /// A one-pixel outline whose corners are `(x0, y0)` and `(x1, y1)`, both inclusive.
    fn frame(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, colour: Rgb) {
        self.rect(x0, y0, x1 + 1, y0 + 1, colour);
        self.rect(x0, y1, x1 + 1, y1 + 1, colour);
        self.rect(x0, y0, x0 + 1, y1 + 1, colour);
        self.rect(x1, y0, x1 + 1, y1 + 1, colour);
    }

    /// An anti-aliased segment `width` pixels thick with round caps; coverage falls off over the last pixel.
    fn line(&mut self, a: (f64, f64), b: (f64, f64), width: f64, colour: Rgb) {
        if ![a.0, a.1, b.0, b.1].iter().all(|v| v.is_finite()) {
            return;
        }
        let reach = width / 2.0 + 1.0;
        // Clamping in floating point keeps the integer loop bounds small whatever the input.
        let clamp_x = |v: f64| v.clamp(0.0, self.width as f64) as i64;
        let clamp_y = |v: f64| v.clamp(0.0, self.height as f64) as i64;
        let (x0, x1) = (clamp_x(a.0.min(b.0) - reach), clamp_x(a.0.max(b.0) + reach));
        let (y0, y1) = (clamp_y(a.1.min(b.1) - reach), clamp_y(a.1.max(b.1) + reach));
        for y in y0..=y1 {
            for x in x0..=x1 {
                let coverage = (width / 2.0 + 0.5 - segment_distance((x as f64, y as f64), a, b)).clamp(0.0, 1.0);
                if coverage > 0.0 {
                    self.blend(x, y, colour, coverage);
                }
            }
        }
    }

    /// The chart title, centred at the top.
    fn title(&mut self, title: &str) {
        let x = (self.width as i64 - text_width(title)) / 2;
        self.text(x.max(4), 10, title, INK);
    }

    /// Draws `text` with its top-left corner at (x, y).
    fn text(&mut self, x: i64, y: i64, text: &str, colour: Rgb) {
        for (i, ch) in text.chars().enumerate() {
            let left = x + i as i64 * GLYPH_ADVANCE * SCALE;
            if left >= self.width as i64 {
                break;
            }
            for (row, bits) in (0i64..).zip(glyph(ch)) {
                for col in 0..5 {
                    if bits & (0b10000 >> col) != 0 {
                        let (px, py) = (left + col * SCALE, y + row * SCALE);
                        self.rect(px, py, px + SCALE, py + SCALE, colour);
                    }
                }
            }
        }
    }
}

/// Distance from `p` to the segment `a`-`b`.
fn segment_distance(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let length2 = dx * dx + dy * dy;
    let t = if length2 > 0.0 { (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / length2).clamp(0.0, 1.0) } else { 0.0 };
    (p.0 - a.0 - t * dx).hypot(p.1 - a.1 - t * dy)
}

/// Horizontal distance from one glyph to the next, in font pixels (5 columns plus a gap).
const GLYPH_ADVANCE: i64 = 6;

/// Width in image pixels of `text` as drawn by [`Canvas::text`].
fn text_width(text: &str) -> i64 {
    let n = text.chars().count() as i64;
    (n * GLYPH_ADVANCE - 1).max(0) * SCALE
}

/// The 5x7 bitmap for `ch`, one byte per row, bit 4 the leftmost column. Letters share upper-case shapes;
/// characters without a glyph show as '?'.
fn glyph(ch: char) -> [u8; 7] {
    match ch.to_ascii_uppercase() {
        '0' => [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110],
        '1' => [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110],
        '2' => [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111],
        '3' => [0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110],
        '4' => [0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010],
        '5' => [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110],
        '6' => [0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110],
        '7' => [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000],
        '8' => [0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110],
        '9' => [0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100],
        'A' => [0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001],
        'B' => [0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110],
        'C' => [0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110],
        'D' => [0b11100, 0b10010, 0b10001, 0b10001, 0b10001, 0b10010, 0b11100],
        'E' => [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111],
        'F' => [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000],
        'G' => [0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111],
        'H' => [0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001],
        'I' => [0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110],
        'J' => [0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100],
        'K' => [0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001],
        'L' => [0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111],
        'M' => [0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001],
        'N' => [0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001],
        'O' => [0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110],
        'P' => [0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000],
        'Q' => [0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101],
        'R' => [0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001],
        'S' => [0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110],
        'T' => [0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100],
        'U' => [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110],
        'V' => [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100],
        'W' => [0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010],
        'X' => [0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001],
        'Y' => [0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100],
        'Z' => [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111],
        ' ' => [0; 7],
        '.' => [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b01100],
        ',' => [0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b00100, 0b01000],
        ':' => [0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b01100, 0b00000],
        '%' => [0b11000, 0b11001, 0b00010, 0b00100, 0b01000, 0b10011, 0b00011],
        '-' => [0b00000, 0b00000, 0b00000, 0b11111, 0b00000, 0b00000, 0b00000],
        '+' => [0b00000, 0b00100, 0b00100, 0b11111, 0b00100, 0b00100, 0b00000],
        '=' => [0b00000, 0b00000, 0b11111, 0b00000, 0b11111, 0b00000, 0b00000],
        '_' => [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b11111],
        '/' => [0b00000, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b00000],
        '(' => [0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00100, 0b00010],
        ')' => [0b01000, 0b00100, 0b00010, 0b00010, 0b00010, 0b00100, 0b01000],
        _ => [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b00000, 0b00100], // '?'
    }
}

/// Encodes the canvas as an 8-bit RGB PNG.
/// An 8-bit RGB PNG of `pixels` (`width * height * 3` bytes, row after row).
pub fn encode_png(width: usize, height: usize, pixels: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width as u32, height as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(pixels)?;
    writer.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::PathBuf;

    /// A fresh, empty scratch directory unique to this test.
    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("simdnn-plot-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Plausible curves: loss falling, accuracy rising.
    fn curve(epochs: usize) -> Vec<EpochPoint> {
        (1..=epochs)
            .map(|e| {
                let decay = (-(e as f64) / 3.0).exp();
                EpochPoint {
                    epoch: e,
                    train_loss: 0.03 + 0.6 * decay,
                    test_loss: 0.05 + 0.55 * decay,
                    train_accuracy: 0.995 - 0.05 * decay,
                    test_accuracy: 0.99 - 0.04 * decay,
                }
            })
            .collect()
    }

    /// Decodes `path` after checking the PNG signature, checks its size and colour type, and returns the pixels.
    fn decode(path: &Path, height: usize) -> Vec<u8> {
        let bytes = fs::read(path).unwrap();
        assert_eq!(bytes[..8], *b"\x89PNG\r\n\x1a\n", "PNG signature");
        let mut reader = png::Decoder::new(io::Cursor::new(bytes)).read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!((info.width, info.height), (WIDTH as u32, height as u32));
        assert_eq!(info.color_type, png::ColorType::Rgb);
        pixels
    }

    /// Runs `write` on a path in a fresh directory, checks the result decodes to an image `height` pixels high and
    /// that only it is left in the directory, and returns the pixels.
    fn round_trip_with(name: &str, height: usize, write: impl FnOnce(&Path) -> io::Result<()>) -> Vec<u8> {
        let dir = scratch_dir(name);
        let path = dir.join("chart.png");
        write(&path).unwrap();
        let pixels = decode(&path, height);
        let left: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, ["chart.png"], "temporary file left behind");
        fs::remove_dir_all(&dir).unwrap();
        pixels
    }

    /// Writes a training chart of `points` through [`round_trip_with`].
    fn round_trip(name: &str, points: &[EpochPoint]) -> Vec<u8> {
        round_trip_with(name, HEIGHT, |path| write_training_plot(path, "Test run", points))
    }

    /// Writes a line chart through [`round_trip_with`] and returns its panel too.
    fn round_trip_chart<'a>(name: &str, chart: &'a LineChart) -> (Vec<u8>, Panel<'a>) {
        let (panel, height) = line_chart_panel(chart);
        (round_trip_with(name, height, |path| write_line_plot(path, chart)), panel)
    }

    fn contains_colour(pixels: &[u8], colour: Rgb) -> bool {
        pixels.chunks_exact(3).any(|p| p == colour)
    }

    /// Whether `colour` shows strictly inside the panel's frame (so the legend swatches do not count).
    fn inside_frame(pixels: &[u8], panel: &Panel, colour: Rgb) -> bool {
        let (l, t, r, b) = (panel.left as usize, panel.top as usize, panel.right as usize, panel.bottom as usize);
        (t + 1..b).any(|y| (l + 1..r).any(|x| pixels[(y * WIDTH + x) * 3..][..3] == colour))
    }

    fn series(label: &str, points: impl IntoIterator<Item = (f64, f64)>) -> Series {
        Series { label: label.to_string(), points: points.into_iter().collect() }
    }

    #[test]
    fn writes_one_two_and_thirty_epochs() {
        for n in [1, 2, 30] {
            let pixels = round_trip(&format!("epochs{n}"), &curve(n));
            assert!(contains_colour(&pixels, TRAIN) && contains_colour(&pixels, TEST), "{n} epochs: series missing");
        }
    }

    #[test]
    fn skips_non_finite_values() {
        let mut points = curve(5);
        points[1].train_loss = f64::NAN;
        points[2].test_accuracy = f64::INFINITY;
        points[3].test_loss = f64::NEG_INFINITY;
        points[4].train_accuracy = f64::NAN;
        round_trip("nan", &points);
        let all_nan = EpochPoint { epoch: 3, train_loss: f64::NAN, test_loss: f64::NAN, ..points[1].clone() };
        round_trip("all-nan", &[all_nan]);
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        round_trip("empty", &[]);
        let flat = EpochPoint { epoch: 0, train_loss: 0.0, test_loss: 0.0, train_accuracy: 1.0, test_accuracy: 1.0 };
        round_trip("flat", &[flat.clone(), EpochPoint { epoch: 1, ..flat.clone() }]);
        let extreme = EpochPoint {
            epoch: usize::MAX,
            train_loss: f64::MAX,
            test_loss: -1e300,
            train_accuracy: 1e-320,
            test_accuracy: -f64::MIN_POSITIVE,
        };
        round_trip("extreme", &[flat.clone(), extreme]);
        let many: Vec<_> = (0..5000).map(|e| EpochPoint { epoch: e * 1000, ..flat.clone() }).collect();
        round_trip("many", &many);
    }

    #[test]
    fn missing_directory_is_an_error() {
        let dir = std::env::temp_dir().join(format!("simdnn-plot-{}-missing/none", std::process::id()));
        assert!(write_training_plot(&dir.join("chart.png"), "x", &curve(3)).is_err());
        assert!(write_training_plot(Path::new("/"), "x", &curve(3)).is_err());
        assert!(write_line_plot(&dir.join("chart.png"), &LineChart::default()).is_err());
    }

    #[test]
    fn ticks_use_one_two_five_steps() {
        assert_eq!(nice_step(0.114), 0.2);
        assert_eq!(nice_step(0.3), 0.5);
        assert_eq!(nice_step(1.0), 1.0);
        assert_eq!(nice_step(7.0), 10.0);
        let axis = Axis::values([0.03, 0.6].into_iter(), 6);
        assert_eq!(
            axis.ticks().into_iter().map(|v| axis.label(v)).collect::<Vec<_>>(),
            ["0.0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6"]
        );
        let epochs = Axis::span((1..=30).map(|e| e as f64), 8);
        assert_eq!(epochs.ticks(), [5.0, 10.0, 15.0, 20.0, 25.0, 30.0]);
        assert_eq!(Axis::span([4.0].into_iter(), 8).ticks(), [4.0]);
    }

    #[test]
    fn x_axis_takes_real_values() {
        let x = Axis::span([0.0, 0.35, 0.7].into_iter(), 8);
        assert_eq!((x.lo, x.hi, x.step), (0.0, 0.7, 0.1));
        assert_eq!(x.ticks().into_iter().map(|p| x.label(p)).collect::<Vec<_>>()[..3], ["0.0", "0.1", "0.2"]);
        let remaining = Axis::span([-1000.0, -1.0].into_iter(), 5);
        assert_eq!(remaining.ticks(), [-1000.0, -800.0, -600.0, -400.0, -200.0]);
        let single = Axis::span([2.5].into_iter(), 8);
        assert!(single.lo < 2.5 && single.hi > 2.5);
    }

    #[test]
    fn log_ticks_are_powers_of_ten() {
        let labels = |axis: &Axis| axis.ticks().into_iter().map(|p| axis.label(p)).collect::<Vec<_>>();
        let axis = Axis::log_values([1e-3, 0.5, 100.0].into_iter(), 6);
        assert_eq!(labels(&axis), ["1e-3", "0.01", "0.1", "1", "10", "100"]);
        // At most two decades: ticks at 1, 2 and 5 times the powers of ten.
        let axis = Axis::log_values([0.15, 0.8].into_iter(), 6);
        assert_eq!(labels(&axis), ["0.1", "0.2", "0.5", "1"]);
        // A single power of ten sits mid-axis; zero, negative and non-finite values are ignored.
        let axis = Axis::log_values([1.0, 0.0, -3.0, f64::NAN, f64::INFINITY].into_iter(), 6);
        assert_eq!((axis.lo, axis.hi), (-1.0, 1.0));
        assert_eq!(labels(&Axis::log_values([1e4, 2e4].into_iter(), 6)), ["1e4", "2e4", "5e4", "1e5"]);
        // Thirty-two decades of gradient norms: few, evenly spaced labels spanning the data's decades.
        let axis = Axis::log_values([1e-30, 3.0, 1e2].into_iter(), 6);
        assert_eq!((axis.lo, axis.hi), (-30.0, 2.0));
        assert_eq!(labels(&axis), ["1e-30", "1e-20", "1e-10", "1"]);
        let axis = Axis::log_values([1e-30, 1e2].into_iter(), 100);
        assert_eq!(labels(&axis), ["1e-30", "1e-25", "1e-20", "1e-15", "1e-10", "1e-5", "1"]);
        assert_eq!(axis.minor_ticks().len(), 33 - 7);
        // Even the whole range of f64 keeps to MAX_LOG_TICKS.
        let axis = Axis::log_values([f64::MIN_POSITIVE / 1e15, f64::MAX].into_iter(), 100);
        assert!((2..=MAX_LOG_TICKS).contains(&axis.ticks().len()), "{:?}", axis.ticks());
    }

    #[test]
    fn log_chart_of_twenty_decades() {
        let steps = 200;
        let t = |i: usize| i as f64 / (steps - 1) as f64;
        let chart = LineChart {
            title: "Gradient norms".into(),
            x_label: "step".into(),
            y_label: "norm".into(),
            series: vec![
                series("falling", (0..steps).map(|i| (i as f64, 10f64.powf(1.0 - 21.0 * t(i))))),
                series("rising", (0..steps).map(|i| (i as f64, 10f64.powf(-20.0 + 21.0 * t(i))))),
                // Zeros and negatives cannot be placed on a log axis: they break the line.
                series(
                    "steady",
                    (0..steps).map(|i| {
                        (i as f64, if i % 50 == 7 { 0.0 } else { 3e-8 * (i % 2) as f64 - 1e-9 * i as f64 + 2e-6 })
                    }),
                ),
            ],
            log_y: true,
            scatter: false,
        };
        let (pixels, panel) = round_trip_chart("log", &chart);
        assert_eq!((panel.y.lo, panel.y.hi), (-20.0, 1.0));
        assert!(panel.y.ticks().len() <= MAX_LOG_TICKS);
        for colour in &PALETTE[..3] {
            assert!(inside_frame(&pixels, &panel, *colour), "series colour {colour:?} missing");
        }
        assert!(!inside_frame(&pixels, &panel, PALETTE[3]));
    }

    #[test]
    fn linear_chart_with_a_gap() {
        let chart = LineChart {
            title: "Diffusion loss".into(),
            x_label: "T - t".into(),
            y_label: "mse".into(),
            series: vec![
                series("a", (0..12).map(|i| (0.5 * i as f64, (i as f64 * 0.7).sin()))),
                series("b", (0..12).map(|i| (0.5 * i as f64, if i == 5 { f64::NAN } else { 0.1 * i as f64 - 1.0 }))),
                series("c", [(0.25, 0.5), (2.75, -0.25), (5.25, 0.75)]),
            ],
            log_y: false,
            scatter: false,
        };
        let (pixels, panel) = round_trip_chart("linear", &chart);
        assert_eq!(panel.legend_rows().len(), 1);
        for colour in &PALETTE[..3] {
            assert!(inside_frame(&pixels, &panel, *colour), "series colour {colour:?} missing");
        }
        // The gap: nothing of series b's colour between its neighbours' pixel columns around x = 2.5.
        let (left, _) = panel.map((2.0, 0.0));
        let (right, _) = panel.map((3.0, 0.0));
        let b_colour = PALETTE[1];
        let column_has = |x: usize| {
            (panel.top as usize + 1..panel.bottom as usize).any(|y| pixels[(y * WIDTH + x) * 3..][..3] == b_colour)
        };
        assert!(column_has(left as usize) && column_has(right as usize));
        assert!(!((left as usize + 8)..(right as usize - 7)).any(column_has), "series b drawn across its NaN");
    }

    #[test]
    fn empty_chart_has_empty_axes() {
        let empty = LineChart::default();
        let (pixels, panel) = round_trip_chart("empty-chart", &empty);
        assert!(!PALETTE.iter().any(|colour| contains_colour(&pixels, *colour)));
        assert!(contains_colour(&pixels, FRAME) && !panel.x.ticks().is_empty());
        let log = LineChart {
            log_y: true,
            series: vec![series("nothing", [(1.0, 0.0), (f64::NAN, 1.0)])],
            ..LineChart::default()
        };
        let (pixels, panel) = round_trip_chart("empty-log", &log);
        assert!(!inside_frame(&pixels, &panel, PALETTE[0]));
        assert!(contains_colour(&pixels, PALETTE[0]), "legend swatch");
    }

    #[test]
    fn long_legends_wrap_and_colours_repeat() {
        let many = |n: usize| LineChart {
            title: "many".into(),
            series: (0..n)
                .map(|i| series(&format!("series number {i}"), [(0.0, i as f64), (1.0, i as f64 + 1.0)]))
                .collect(),
            ..LineChart::default()
        };
        let chart = many(9);
        let (pixels, panel) = round_trip_chart("wrap", &chart);
        let rows = panel.legend_rows();
        assert!(rows.len() > 1 && rows.iter().map(Vec::len).sum::<usize>() == 9);
        for colour in PALETTE {
            assert!(inside_frame(&pixels, &panel, colour));
        }
        let chart = many(500);
        let (_, panel) = round_trip_chart("overflow", &chart);
        let rows = panel.legend_rows();
        assert_eq!(rows.len(), MAX_LEGEND_ROWS);
        let shown = rows.iter().flatten().filter(|e| e.colour.is_some()).count();
        let note = &rows[MAX_LEGEND_ROWS - 1].last().unwrap().text;
        assert_eq!(*note, format!("+{} more", 500 - shown));
    }
}
