//! Training-curve charts written as PNG files.
//!
//! Everything is drawn from scratch on an RGB pixel buffer: anti-aliased thick lines, a 5x7 bitmap
//! font and "nice" (1-2-5) axis ticks. Only the `png` crate is used, for encoding.

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
    let canvas = render(title, points);
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
const TRAIN: Rgb = [31, 119, 180];
const TEST: Rgb = [230, 85, 13];

/// Lays out the whole chart.
fn render(title: &str, points: &[EpochPoint]) -> Canvas {
    let mut points = points.to_vec();
    points.sort_by_key(|p| p.epoch); // lines must run left to right
    let series =
        |f: fn(&EpochPoint) -> f64| -> Vec<(f64, f64)> { points.iter().map(|p| (p.epoch as f64, f(p))).collect() };
    let loss = [series(|p| p.train_loss), series(|p| p.test_loss)];
    let accuracy = [series(|p| 100.0 * p.train_accuracy), series(|p| 100.0 * p.test_accuracy)];

    let mut canvas = Canvas::new(WIDTH, HEIGHT);
    let title_x = (WIDTH as i64 - text_width(title)) / 2;
    canvas.text(title_x.max(4), 10, title, INK);
    let half = WIDTH as f64 / 2.0;
    Panel::new("loss", 0.0, half, &loss).draw(&mut canvas, &loss);
    Panel::new("accuracy %", half, half, &accuracy).draw(&mut canvas, &accuracy);
    canvas
}

/// Whether a value can be placed on an axis; the magnitude cap keeps all axis arithmetic finite.
fn plottable(v: f64) -> bool {
    v.is_finite() && v.abs() <= 1e300
}

/// A linear axis from `lo` to `hi` with ticks at the multiples of `step` inside that range.
#[derive(Debug)]
struct Axis {
    lo: f64,
    hi: f64,
    step: f64,
}

impl Axis {
    /// A value axis rounded outwards to whole steps, with about `target` ticks.
    fn values(data: impl Iterator<Item = f64>, target: usize) -> Axis {
        let (mut lo, mut hi) = min_max(data).unwrap_or((0.0, 1.0));
        if hi - lo <= 1e-9 * lo.abs().max(hi.abs()) {
            // A flat series still needs a visible range.
            let pad = if lo == 0.0 { 1.0 } else { 0.1 * lo.abs() };
            (lo, hi) = (lo - pad, hi + pad);
        }
        let step = nice_step((hi - lo) / target.max(1) as f64);
        Axis { lo: (lo / step).floor() * step, hi: (hi / step).ceil() * step, step }
    }

    /// An epoch axis spanning the data exactly, with whole-number ticks, at most `max_ticks` of them.
    fn epochs(data: impl Iterator<Item = f64>, max_ticks: usize) -> Axis {
        let (mut lo, mut hi) = min_max(data).unwrap_or((0.0, 1.0));
        if hi <= lo {
            (lo, hi) = (lo - 0.5, hi + 0.5); // a single epoch sits mid-panel
        }
        Axis { lo, hi, step: nice_step((hi - lo) / max_ticks.max(1) as f64).max(1.0) }
    }

    /// The tick positions (bounded in number whatever the range).
    fn ticks(&self) -> impl Iterator<Item = f64> + '_ {
        let first = (self.lo / self.step - 1e-9).ceil();
        let last = (self.hi / self.step + 1e-9).floor();
        let count = if last >= first { (last - first).min(100.0) as usize + 1 } else { 0 };
        (0..count).map(move |i| (first + i as f64) * self.step)
    }

    /// Where `v` falls between `lo` (0) and `hi` (1).
    fn fraction(&self, v: f64) -> f64 {
        (v - self.lo) / (self.hi - self.lo)
    }

    /// A tick label with just enough decimals for the step.
    fn label(&self, v: f64) -> String {
        if self.step >= 1e-4 && v.abs() < 1e7 {
            let decimals = (-(self.step.log10() + 1e-9).floor()).clamp(0.0, 6.0) as usize;
            format!("{:.*}", decimals, v + 0.0) // `+ 0.0` turns -0 into 0
        } else {
            format!("{v:.1e}")
        }
    }
}

/// The least and greatest plottable values, if any.
fn min_max(data: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    data.filter(|v| plottable(*v)).fold(None, |acc, v| match acc {
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

/// One chart panel: a framed plot area with its axes.
struct Panel<'a> {
    title: &'a str,
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
    /// Fits a panel into the horizontal strip `[x0, x0 + width)`, sizing the left margin to the y labels.
    fn new(title: &'a str, x0: f64, width: f64, series: &[Vec<(f64, f64)>; 2]) -> Panel<'a> {
        let (top, bottom) = (76.0, HEIGHT as f64 - 56.0);
        let values = series.iter().flatten().map(|p| p.1);
        let y = Axis::values(values, ((bottom - top) / 45.0) as usize);
        let widest = y.ticks().map(|v| text_width(&y.label(v))).max().unwrap_or(0);
        let (left, right) = (x0 + 24.0 + widest as f64, x0 + width - 20.0);

        let epochs = || series[0].iter().map(|p| p.0);
        let widest_epoch = epochs().map(|e| text_width(&format!("{e:.0}"))).max().unwrap_or(0);
        let max_ticks = ((right - left) / (widest_epoch as f64 + 16.0)) as usize;
        Panel { title, left, top, right, bottom, x: Axis::epochs(epochs(), max_ticks), y }
    }

    /// Maps a data point to pixel coordinates (non-finite for unplottable points).
    fn map(&self, (x, y): (f64, f64)) -> (f64, f64) {
        if !(plottable(x) && plottable(y)) {
            return (f64::NAN, f64::NAN);
        }
        let px = self.left + INSET + self.x.fraction(x) * (self.right - self.left - 2.0 * INSET);
        let py = self.bottom - INSET - self.y.fraction(y) * (self.bottom - self.top - 2.0 * INSET);
        (px, py)
    }

    fn draw(&self, c: &mut Canvas, series: &[Vec<(f64, f64)>; 2]) {
        self.draw_axes(c);
        for (points, colour) in series.iter().zip([TRAIN, TEST]) {
            self.draw_series(c, points, colour);
        }
        self.draw_header(c);
    }

    /// Grid, frame, tick marks and tick labels.
    fn draw_axes(&self, c: &mut Canvas) {
        let (l, t, r, b) = (self.left as i64, self.top as i64, self.right as i64, self.bottom as i64);
        let x_ticks: Vec<i64> = self.x.ticks().map(|v| self.map((v, self.y.lo)).0.round() as i64).collect();
        let y_ticks: Vec<i64> = self.y.ticks().map(|v| self.map((self.x.lo, v)).1.round() as i64).collect();
        for &x in &x_ticks {
            c.rect(x, t, x + 1, b, GRID);
        }
        for &y in &y_ticks {
            c.rect(l, y, r, y + 1, GRID);
        }
        c.frame(l, t, r, b, FRAME);

        for (&x, v) in x_ticks.iter().zip(self.x.ticks()) {
            c.rect(x, b, x + 1, b + 6, FRAME);
            let label = self.x.label(v);
            c.text(x - text_width(&label) / 2, b + 10, &label, INK);
        }
        for (&y, v) in y_ticks.iter().zip(self.y.ticks()) {
            c.rect(l - 6, y, l, y + 1, FRAME);
            let label = self.y.label(v);
            c.text(l - 10 - text_width(&label), y - 7, &label, INK);
        }
        c.text((l + r - text_width("epoch")) / 2, b + 32, "epoch", INK);
    }

    /// A polyline through the plottable points, broken at gaps, with a marker on each point unless they are too
    /// dense to tell apart.
    fn draw_series(&self, c: &mut Canvas, points: &[(f64, f64)], colour: Rgb) {
        let pixels: Vec<(f64, f64)> = points.iter().map(|&p| self.map(p)).collect();
        for pair in pixels.windows(2) {
            c.line(pair[0], pair[1], 2.2, colour);
        }
        if (self.right - self.left) >= 8.0 * pixels.len() as f64 {
            for &p in &pixels {
                c.line(p, p, 7.0, colour); // a zero-length thick line is a disc
            }
        }
    }

    /// Panel title on the left above the frame, legend on the right.
    fn draw_header(&self, c: &mut Canvas) {
        let y = self.top as i64 - 24;
        c.text(self.left as i64, y, self.title, INK);
        let mut x = self.right as i64;
        for (name, colour) in [("test", TEST), ("train", TRAIN)] {
            x -= text_width(name);
            c.text(x, y, name, INK);
            x -= 30;
            let mid = (y + 7) as f64;
            c.line((x as f64, mid), (x as f64 + 22.0, mid), 2.2, colour);
            c.line((x as f64 + 11.0, mid), (x as f64 + 11.0, mid), 7.0, colour);
            x -= 22;
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

    /// Decodes `path`, checks its size and colour type, and returns the pixels.
    fn decode(path: &Path) -> Vec<u8> {
        let bytes = fs::read(path).unwrap();
        let mut reader = png::Decoder::new(io::Cursor::new(bytes)).read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!((info.width, info.height), (WIDTH as u32, HEIGHT as u32));
        assert_eq!(info.color_type, png::ColorType::Rgb);
        pixels
    }

    /// Writes a chart of `points`, checks it decodes, that only the chart is left in the directory, and returns the
    /// pixels.
    fn round_trip(name: &str, points: &[EpochPoint]) -> Vec<u8> {
        let dir = scratch_dir(name);
        let path = dir.join("chart.png");
        write_training_plot(&path, "Test run", points).unwrap();
        let pixels = decode(&path);
        let left: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, ["chart.png"], "temporary file left behind");
        fs::remove_dir_all(&dir).unwrap();
        pixels
    }

    fn contains_colour(pixels: &[u8], colour: Rgb) -> bool {
        pixels.chunks_exact(3).any(|p| p == colour)
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
    }

    #[test]
    fn ticks_use_one_two_five_steps() {
        assert_eq!(nice_step(0.114), 0.2);
        assert_eq!(nice_step(0.3), 0.5);
        assert_eq!(nice_step(1.0), 1.0);
        assert_eq!(nice_step(7.0), 10.0);
        let axis = Axis::values([0.03, 0.6].into_iter(), 6);
        assert_eq!(
            axis.ticks().map(|v| axis.label(v)).collect::<Vec<_>>(),
            ["0.0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6"]
        );
        let epochs = Axis::epochs((1..=30).map(|e| e as f64), 8);
        assert_eq!(epochs.ticks().collect::<Vec<_>>(), [5.0, 10.0, 15.0, 20.0, 25.0, 30.0]);
        assert_eq!(Axis::epochs([4.0].into_iter(), 8).ticks().collect::<Vec<_>>(), [4.0]);
    }
}
