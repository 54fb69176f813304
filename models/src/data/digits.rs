//! An embedded synthetic digit dataset, drawn by code instead of read from files.
//!
//! Each digit 0-9 is a few pen strokes (polylines and elliptic arcs) in a unit box, y pointing down. Every
//! image draws its own variant of the template: key points and radii are jittered, a smooth random
//! displacement field bends the strokes, a random affine map (rotation, per-axis scale, shear) tilts the
//! whole digit, which is then centred in a 28x28 image with a small random shift, drawn with a random pen
//! width and anti-aliased from the distance of each pixel to the nearest stroke segment. A little
//! background noise is added. As in MNIST, the digit fills roughly the central 20x20 pixels, 0 is
//! background and 255 full ink.

use rand_xoshiro::rand_core::{Rng as _, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use super::ImageSet;
use simdnn_layers::init::{shuffle, uniform};

/// Image side in pixels.
const SIDE: usize = 28;
/// Number of classes.
const CLASSES: usize = 10;
/// Pixels per unit of the template box before the random scale: a 1-unit-tall digit becomes 19 px, so
/// that even the largest scale (1.1) with rotation stays inside the image.
const BOX_PX: f32 = 19.0;
/// Half width, in pixels, of the soft edge of a stroke.
const EDGE: f32 = 0.75;

/// A point in template units or in pixels.
type Pt = [f32; 2];
/// A pen stroke: a polyline.
type Stroke = Vec<Pt>;

/// The embedded synthetic digits (28x28, 10 classes): `train_len` and `test_len` images, generated from
/// `seed`, test images generated independently of the train ones (different RNG stream).
///
/// Classes are balanced (label `i % 10`, then shuffled). The same seed always gives the same bytes; the
/// test set depends only on `seed` and `test_len`, not on `train_len`.
pub fn synthetic_digits(train_len: usize, test_len: usize, seed: u64) -> (ImageSet, ImageSet) {
    let base = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut test_rng = base.clone();
    // A jump moves 2^128 steps ahead: a stream that cannot overlap the train one.
    test_rng.jump();
    (generate(train_len, &mut Rand(base)), generate(test_len, &mut Rand(test_rng)))
}

/// Draws `len` balanced, shuffled digit images.
fn generate(len: usize, rng: &mut Rand) -> ImageSet {
    let mut labels: Vec<u8> = (0..len).map(|i| (i % CLASSES) as u8).collect();
    shuffle(&mut rng.0, &mut labels);
    let mut images = vec![0u8; len * SIDE * SIDE];
    let mut canvas = Canvas::new();
    for (img, &label) in images.chunks_exact_mut(SIDE * SIDE).zip(&labels) {
        draw_digit(label, rng, &mut canvas, img);
    }
    ImageSet { images, labels, rows: SIDE, cols: SIDE, classes: CLASSES }
}

/// Small helpers over the raw generator.
struct Rand(Xoshiro256PlusPlus);

impl Rand {
    /// Uniform in `[0, 1)`, from the top 24 bits (all an f32 mantissa holds).
    fn unit(&mut self) -> f32 {
        uniform(&mut self.0)
    }

    /// Uniform in `[lo, hi)`.
    fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }

    /// `v` moved by up to `amount` either way: the per-image jitter of a template value.
    fn jit(&mut self, v: f32, amount: f32) -> f32 {
        v + self.range(-amount, amount)
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f32) -> bool {
        self.unit() < p
    }
}

/// Points of an elliptic arc centred at `c` with radii `r`, from angle `a0` to `a1` in degrees (0 = +x,
/// 90 = +y = down, so increasing angles run clockwise on screen; `a1 < a0` runs the other way).
fn arc(c: Pt, r: Pt, a0: f32, a1: f32) -> Stroke {
    // About 10 degrees per segment: smooth at these sizes, and few segments to render.
    let steps = ((a1 - a0).abs() / 10.0).ceil().max(1.0) as usize;
    (0..=steps)
        .map(|i| {
            let a = (a0 + (a1 - a0) * i as f32 / steps as f32).to_radians();
            [c[0] + r[0] * a.cos(), c[1] + r[1] * a.sin()]
        })
        .collect()
}

/// The point at angle `a` (degrees) on the ellipse of [`arc`].
fn on_arc(c: Pt, r: Pt, a: f32) -> Pt {
    let a = a.to_radians();
    [c[0] + r[0] * a.cos(), c[1] + r[1] * a.sin()]
}

/// Linear interpolation between two points.
fn lerp(a: Pt, b: Pt, t: f32) -> Pt {
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t]
}

/// The strokes of one randomly varied instance of `digit`, in the unit box (y down).
///
/// Besides the small jitter of every key point and radius, most digits have a few styles (a 1 with or
/// without a flag, an open or closed 4, a flat-topped 3, ...), as handwriting does.
fn template(digit: u8, rng: &mut Rand) -> Vec<Stroke> {
    match digit {
        0 => {
            // Left and right halves get their own width: egg shapes and lopsided ovals.
            let (rx, ry) = (rng.range(0.2, 0.36), rng.range(0.4, 0.48));
            let (left, right) = ([rx * rng.range(0.8, 1.2), ry], [rx * rng.range(0.8, 1.2), ry]);
            let c = [0.5, 0.5];
            let mut s = arc(c, right, rng.jit(-95.0, 25.0), 90.0);
            s.extend(arc(c, left, 90.0, 270.0));
            // Sometimes the pen overshoots where it started, sometimes it leaves a small gap.
            s.extend(arc(c, right, -90.0, rng.range(-110.0, -30.0)).into_iter().skip(1));
            vec![s]
        }
        1 => {
            let top = [rng.jit(0.5, 0.12), rng.jit(0.03, 0.03)];
            let bottom = [rng.jit(0.5, 0.12), rng.jit(0.97, 0.03)];
            let mut mid = lerp(top, bottom, 0.5);
            mid[0] += rng.jit(0.0, 0.04);
            let mut main = vec![top, mid, bottom];
            if rng.chance(0.35) {
                // Flag at the top.
                main.insert(0, [top[0] - rng.range(0.1, 0.2), top[1] + rng.range(0.08, 0.2)]);
            }
            let mut strokes = vec![main];
            if rng.chance(0.12) {
                let w = rng.range(0.1, 0.2);
                strokes.push(vec![[bottom[0] - w, bottom[1]], [bottom[0] + w, bottom[1]]]);
            }
            strokes
        }
        2 => {
            let c = [rng.jit(0.5, 0.03), rng.jit(0.29, 0.03)];
            let r = [rng.range(0.22, 0.32), rng.range(0.2, 0.3)];
            // Ending the hook early gives a straighter, more angular neck.
            let mut s = arc(c, r, rng.jit(200.0, 20.0), rng.range(330.0, 395.0));
            let corner = [rng.jit(0.2, 0.06), rng.jit(0.95, 0.03)];
            let start = *s.last().unwrap_or(&c);
            // The diagonal bows a little, either way.
            let mut mid = lerp(start, corner, 0.5);
            mid[0] += rng.jit(0.0, 0.06);
            mid[1] += rng.jit(0.0, 0.04);
            s.push(mid);
            if rng.chance(0.25) {
                // A small loop at the bottom-left corner.
                let lr = rng.range(0.05, 0.1);
                s.extend(arc([corner[0] + lr, corner[1] - lr], [lr, lr], 180.0, -160.0));
            } else {
                s.push(corner);
            }
            let end = [rng.range(0.65, 0.9), rng.jit(0.96, 0.04)];
            // A slightly wavy base.
            let mut base_mid = lerp(corner, end, 0.5);
            base_mid[1] += rng.jit(0.0, 0.03);
            s.extend([base_mid, end]);
            vec![s]
        }
        3 => {
            let lower_c = [rng.jit(0.5, 0.03), rng.jit(0.71, 0.03)];
            let lower_r = [rng.range(0.23, 0.32), rng.range(0.22, 0.28)];
            let lower_end = rng.range(130.0, 170.0);
            if rng.chance(0.2) {
                // Flat top: a bar, a diagonal to the middle, then the lower bowl.
                let bar_y = rng.jit(0.04, 0.03);
                let mut s = vec![[rng.jit(0.24, 0.05), bar_y], [rng.jit(0.76, 0.05), bar_y + rng.jit(0.0, 0.03)]];
                s.push([rng.jit(0.42, 0.06), rng.jit(0.44, 0.03)]);
                s.extend(arc(lower_c, lower_r, rng.jit(-110.0, 15.0), lower_end));
                return vec![s];
            }
            let upper_c = [rng.jit(0.5, 0.04), rng.jit(0.27, 0.02)];
            let upper_r = [rng.range(0.19, 0.28), rng.range(0.2, 0.25)];
            let mut s = arc(upper_c, upper_r, rng.jit(205.0, 20.0), rng.jit(475.0, 15.0));
            s.extend(arc(lower_c, lower_r, rng.jit(-125.0, 15.0), lower_end));
            vec![s]
        }
        4 => {
            let bar_y = rng.jit(0.62, 0.07);
            let stem_x = rng.jit(0.66, 0.06);
            let right = [rng.range(0.78, 0.95), bar_y + rng.jit(0.0, 0.04)];
            let stem_top = [stem_x + rng.jit(0.0, 0.05), rng.range(0.0, 0.12)];
            let stem = vec![stem_top, [rng.jit(stem_x, 0.07), rng.range(0.92, 1.0)]];
            if rng.chance(0.55) {
                // Open top: a left stroke down, then across.
                let left = vec![[rng.jit(0.24, 0.07), rng.range(0.0, 0.1)], [rng.jit(0.16, 0.06), bar_y], right];
                vec![left, stem]
            } else {
                // Closed top: a diagonal from the top of the stem.
                let diag = vec![stem_top, [rng.jit(0.12, 0.05), bar_y], right];
                vec![diag, stem]
            }
        }
        5 => {
            let c = [rng.jit(0.48, 0.03), rng.jit(0.67, 0.04)];
            let r = [rng.range(0.24, 0.34), rng.range(0.22, 0.31)];
            let bar_left = [rng.jit(0.32, 0.06), rng.jit(0.03, 0.03)];
            let mut s = vec![bar_left];
            s.extend(arc(c, r, rng.jit(-140.0, 15.0), rng.range(120.0, 175.0)));
            let bar = vec![bar_left, [rng.range(0.68, 0.92), rng.jit(0.03, 0.04)]];
            vec![s, bar]
        }
        6 => {
            let loop_c = [rng.jit(0.48, 0.04), rng.jit(0.73, 0.03)];
            let loop_r = [rng.range(0.2, 0.32), rng.range(0.18, 0.28)];
            let join = on_arc(loop_c, loop_r, 180.0);
            // The back of the 6: from the top right, bowing up and left, down to the loop.
            let back_r = [rng.range(0.35, 0.55), rng.range(0.5, 0.7)];
            let back_c = [join[0] + back_r[0], join[1] - rng.range(0.0, 0.15)];
            let mut s = arc(back_c, back_r, rng.range(-95.0, -55.0), -180.0);
            s.extend(arc(loop_c, loop_r, 180.0, rng.jit(-150.0, 25.0)));
            vec![s]
        }
        7 => {
            let bar_l = [rng.jit(0.18, 0.06), rng.jit(0.04, 0.04)];
            let bar_r = [rng.jit(0.82, 0.05), rng.jit(0.04, 0.04)];
            let foot = [rng.range(0.28, 0.6), rng.range(0.93, 1.0)];
            let mut mid = lerp(bar_r, foot, 0.5);
            mid[0] += rng.jit(0.0, 0.06);
            let mut main = vec![bar_l, bar_r, mid, foot];
            if rng.chance(0.2) {
                // A short downward tick at the left end of the bar.
                main.insert(0, [bar_l[0] - 0.01, bar_l[1] + rng.range(0.08, 0.16)]);
            }
            let mut strokes = vec![main];
            if rng.chance(0.2) {
                let w = rng.range(0.12, 0.2);
                strokes.push(vec![[mid[0] - w, mid[1]], [mid[0] + w, mid[1] + rng.jit(0.0, 0.03)]]);
            }
            strokes
        }
        8 => {
            let upper_c = [rng.jit(0.5, 0.05), rng.jit(0.26, 0.02)];
            let lower_r = [rng.range(0.22, 0.32), rng.range(0.22, 0.27)];
            let k = rng.range(0.7, 1.0);
            let upper_r = [lower_r[0] * k * rng.range(0.9, 1.1), rng.range(0.19, 0.23)];
            let lower_c = [rng.jit(0.5, 0.03), upper_c[1] + upper_r[1] + lower_r[1] - 0.01];
            if rng.chance(0.5) {
                // Two loops stacked.
                let a = rng.jit(0.0, 40.0);
                vec![arc(upper_c, upper_r, a, a + 365.0), arc(lower_c, lower_r, a, a + 365.0)]
            } else {
                // One stroke whose two halves cross at the waist.
                let mut s = arc(upper_c, upper_r, rng.jit(-20.0, 15.0), -200.0);
                s.extend(arc(lower_c, lower_r, -40.0, rng.jit(215.0, 15.0)));
                s.extend(arc(upper_c, upper_r, 30.0, rng.range(-40.0, -10.0)));
                vec![s]
            }
        }
        _ => {
            // 9 (and anything else, which never occurs).
            let c = [rng.jit(0.47, 0.04), rng.jit(0.3, 0.03)];
            let r = [rng.range(0.2, 0.3), rng.range(0.19, 0.28)];
            let a0 = rng.jit(10.0, 15.0);
            // A sweep short of a full turn leaves the loop open at the lower left.
            let mut s = arc(c, r, a0, a0 - rng.range(320.0, 370.0));
            s.push(on_arc(c, r, a0));
            let foot = [rng.jit(c[0] + r[0] - 0.05, 0.08), rng.range(0.93, 1.0)];
            if rng.chance(0.3) {
                // Stem that curls to the left at the bottom.
                let curl_c = [foot[0] - 0.12, foot[1] - 0.14];
                s.push([foot[0], foot[1] - 0.14]);
                s.extend(arc(curl_c, [0.12, 0.14], 0.0, 140.0));
            } else {
                let mut mid = lerp(on_arc(c, r, a0), foot, 0.5);
                mid[0] += rng.jit(0.0, 0.04);
                s.extend([mid, foot]);
            }
            vec![s]
        }
    }
}

/// A smooth random displacement of the unit box: two low-frequency sine waves per axis.
struct Wobble {
    /// Per wave: amplitude, x and y frequency (rad per unit), phase; first two for x, last two for y.
    waves: [[f32; 4]; 4],
}

impl Wobble {
    fn new(rng: &mut Rand) -> Self {
        let mut waves = [[0.0; 4]; 4];
        for w in &mut waves {
            let angle = rng.range(0.0, std::f32::consts::TAU);
            let freq = rng.range(2.5, 6.0);
            *w = [rng.range(0.0, 0.04), freq * angle.cos(), freq * angle.sin(), rng.range(0.0, std::f32::consts::TAU)];
        }
        Wobble { waves }
    }

    fn apply(&self, p: Pt) -> Pt {
        let wave = |w: &[f32; 4]| w[0] * (w[1] * p[0] + w[2] * p[1] + w[3]).sin();
        [p[0] + wave(&self.waves[0]) + wave(&self.waves[1]), p[1] + wave(&self.waves[2]) + wave(&self.waves[3])]
    }
}

/// Per-pixel squared distance to the nearest stroke, reused between images.
struct Canvas {
    dist2: Vec<f32>,
}

impl Canvas {
    fn new() -> Self {
        Canvas { dist2: vec![f32::INFINITY; SIDE * SIDE] }
    }

    /// Lowers the distance of the pixels within `reach` of segment `a`-`b` (pixel centres at i + 0.5).
    fn segment(&mut self, a: Pt, b: Pt, reach: f32) {
        let (ab_x, ab_y) = (b[0] - a[0], b[1] - a[1]);
        let len2 = ab_x * ab_x + ab_y * ab_y;
        let span = |lo: f32, hi: f32| {
            let first = (lo - reach - 0.5).floor().max(0.0) as usize;
            let last = ((hi + reach + 0.5).ceil().max(0.0) as usize).min(SIDE);
            first..last
        };
        let cols = span(a[0].min(b[0]), a[0].max(b[0]));
        for row in span(a[1].min(b[1]), a[1].max(b[1])) {
            let py = row as f32 + 0.5;
            for col in cols.clone() {
                let px = col as f32 + 0.5;
                let (ap_x, ap_y) = (px - a[0], py - a[1]);
                let t = if len2 > 0.0 { ((ap_x * ab_x + ap_y * ab_y) / len2).clamp(0.0, 1.0) } else { 0.0 };
                let (dx, dy) = (ap_x - t * ab_x, ap_y - t * ab_y);
                let d2 = &mut self.dist2[row * SIDE + col];
                *d2 = d2.min(dx * dx + dy * dy);
            }
        }
    }
}

/// Renders one random instance of `digit` into `out` (28x28 bytes).
fn draw_digit(digit: u8, rng: &mut Rand, canvas: &mut Canvas, out: &mut [u8]) {
    let mut strokes = template(digit, rng);

    // Bend the strokes, then map them to pixels with a random affine transform.
    let wobble = Wobble::new(rng);
    let theta = rng.range(-12.0f32, 12.0).to_radians();
    let (sx, sy) = (rng.range(0.85, 1.1) * BOX_PX, rng.range(0.85, 1.1) * BOX_PX);
    let shear = rng.range(-0.2, 0.2);
    let (sin, cos) = theta.sin_cos();
    // rotation * shear * scale, applied to template coordinates.
    let m = [[cos * sx, (cos * shear - sin) * sy], [sin * sx, (sin * shear + cos) * sy]];
    let (mut lo, mut hi) = ([f32::INFINITY; 2], [f32::NEG_INFINITY; 2]);
    for p in strokes.iter_mut().flatten() {
        let [x, y] = wobble.apply(*p);
        *p = [m[0][0] * x + m[0][1] * y, m[1][0] * x + m[1][1] * y];
        for axis in 0..2 {
            lo[axis] = lo[axis].min(p[axis]);
            hi[axis] = hi[axis].max(p[axis]);
        }
    }
    // Centre the bounding box (as MNIST centres its 20x20 box), plus a small random shift.
    let half = SIDE as f32 / 2.0;
    let shift =
        [half + rng.range(-2.0, 2.0) - (lo[0] + hi[0]) / 2.0, half + rng.range(-2.0, 2.0) - (lo[1] + hi[1]) / 2.0];

    let radius = rng.range(0.8, 1.9);
    canvas.dist2.fill(f32::INFINITY);
    for stroke in &strokes {
        for seg in stroke.windows(2) {
            let a = [seg[0][0] + shift[0], seg[0][1] + shift[1]];
            let b = [seg[1][0] + shift[0], seg[1][1] + shift[1]];
            canvas.segment(a, b, radius + EDGE);
        }
    }

    let peak = rng.range(0.88, 1.0) * 255.0;
    let noise = rng.range(0.0, 24.0);
    let outer2 = (radius + EDGE) * (radius + EDGE);
    // Four pixels per draw: the noise takes 16 random bits each.
    for (px4, d2_4) in out.chunks_mut(4).zip(canvas.dist2.chunks(4)) {
        let bits = rng.0.next_u64();
        for (k, (px, &d2)) in px4.iter_mut().zip(d2_4).enumerate() {
            let ink = if d2 >= outer2 {
                0.0
            } else {
                // Smoothstep from full ink at radius - EDGE to none at radius + EDGE: the anti-aliased edge.
                let t = ((radius + EDGE - d2.sqrt()) * (0.5 / EDGE)).clamp(0.0, 1.0);
                t * t * (3.0 - 2.0 * t) * peak
            };
            // Mostly faint speckle: u^4 keeps nearly all of it near zero.
            let u = ((bits >> (16 * k)) & 0xFFFF) as f32 * (1.0 / 65536.0);
            let speck = noise * (u * u) * (u * u);
            // Both terms are >= 0, so adding 0.5 and truncating rounds; `as` saturates at 255.
            *px = (ink + speck + 0.5) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean(bytes: &[u8]) -> f64 {
        bytes.iter().map(|&b| f64::from(b)).sum::<f64>() / bytes.len() as f64
    }

    #[test]
    fn shapes_and_lengths() {
        let (train, test) = synthetic_digits(30, 17, 1);
        assert_eq!((train.len(), train.rows, train.cols, train.classes), (30, 28, 28, 10));
        assert_eq!((test.len(), test.rows, test.cols, test.classes), (17, 28, 28, 10));
        assert_eq!(train.images.len(), 30 * 784);
        assert_eq!(test.image(16).len(), 784);
        let (empty, _) = synthetic_digits(0, 0, 1);
        assert!(empty.is_empty());
    }

    #[test]
    fn deterministic_from_seed() {
        let (a_train, a_test) = synthetic_digits(200, 100, 42);
        let (b_train, b_test) = synthetic_digits(200, 100, 42);
        assert_eq!(a_train.images, b_train.images);
        assert_eq!(a_train.labels, b_train.labels);
        assert_eq!(a_test.images, b_test.images);
        assert_eq!(a_test.labels, b_test.labels);
        let (c_train, c_test) = synthetic_digits(200, 100, 43);
        assert_ne!(a_train.images, c_train.images);
        assert_ne!(a_test.images, c_test.images);
    }

    #[test]
    fn test_split_is_independent_of_train() {
        let (train, test) = synthetic_digits(100, 100, 7);
        assert_ne!(train.images, test.images, "test must come from another stream");
        let (_, test_again) = synthetic_digits(500, 100, 7);
        assert_eq!(test.images, test_again.images, "test set must not depend on train_len");
    }

    #[test]
    fn classes_are_balanced_and_shuffled() {
        let (train, test) = synthetic_digits(1000, 205, 3);
        assert_eq!(train.class_counts(), vec![100; 10]);
        let counts = test.class_counts();
        assert!(counts.iter().all(|&c| c == 20 || c == 21), "{counts:?}");
        let in_order = train.labels.iter().enumerate().filter(|&(i, &l)| usize::from(l) == i % 10).count();
        assert!(in_order < 300, "labels look unshuffled: {in_order} of 1000 in i % 10 order");
    }

    #[test]
    fn pixel_statistics_look_like_mnist() {
        let (train, _) = synthetic_digits(2000, 0, 11);
        let m = mean(&train.images);
        assert!((0.08 * 255.0..0.30 * 255.0).contains(&m), "mean pixel {m}");
        for i in 0..train.len() {
            let img = train.image(i);
            assert!(img.iter().any(|&p| p >= 200), "image {i} has no solid ink");
            // Ink stays inside the image: the 2-pixel border is nearly empty (MNIST's 20x20 box + shift).
            let border_ink: u32 = (0..SIDE * SIDE)
                .filter(|&k| {
                    let (r, c) = (k / SIDE, k % SIDE);
                    r < 1 || c < 1 || r >= SIDE - 1 || c >= SIDE - 1
                })
                .map(|k| u32::from(img[k] > 128))
                .sum();
            assert!(border_ink <= 6, "image {i} (digit {}) touches the edge: {border_ink} px", train.labels[i]);
            let ink_px = img.iter().filter(|&&p| p > 128).count();
            assert!((20..400).contains(&ink_px), "image {i} (digit {}) has {ink_px} ink pixels", train.labels[i]);
        }
    }

    #[test]
    fn images_vary_within_a_class() {
        let (train, _) = synthetic_digits(200, 0, 5);
        for digit in 0..10u8 {
            let members: Vec<&[u8]> =
                (0..train.len()).filter(|&i| train.labels[i] == digit).map(|i| train.image(i)).collect();
            for (k, a) in members.iter().enumerate() {
                for b in &members[k + 1..] {
                    let diff = a.iter().zip(b.iter()).filter(|(x, y)| x.abs_diff(**y) > 64).count();
                    assert!(diff > 20, "two images of digit {digit} nearly identical ({diff} px differ)");
                }
            }
        }
    }

    #[test]
    fn nearest_class_mean_beats_chance_but_is_not_perfect() {
        let (train, test) = synthetic_digits(3000, 1000, 9);
        let mut sums = vec![[0f32; SIDE * SIDE]; 10];
        for i in 0..train.len() {
            for (s, &p) in sums[usize::from(train.labels[i])].iter_mut().zip(train.image(i)) {
                *s += f32::from(p);
            }
        }
        let counts = train.class_counts();
        for (s, &n) in sums.iter_mut().zip(&counts) {
            s.iter_mut().for_each(|v| *v /= n as f32);
        }
        let correct = (0..test.len())
            .filter(|&i| {
                let img = test.image(i);
                let dist = |m: &[f32; SIDE * SIDE]| -> f32 {
                    m.iter().zip(img).map(|(&a, &b)| (a - f32::from(b)).powi(2)).sum()
                };
                let best = (0..10).min_by(|&a, &b| dist(&sums[a]).total_cmp(&dist(&sums[b])));
                best == Some(usize::from(test.labels[i]))
            })
            .count();
        let acc = correct as f64 / test.len() as f64;
        // MNIST scores about 82 % with this classifier; the jitter should keep it well below 100 %.
        assert!((0.5..0.97).contains(&acc), "nearest-class-mean accuracy {acc}");
    }
}
