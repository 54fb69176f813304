//! Weights trained elsewhere: the committed PyTorch fixtures (LeNet-5 in f32, SqueezeNet 1.1
//! in f16, made by scripts/make_fixtures.py) give PyTorch's logits; export and import round
//! trip; `simdnn infer`, `classify` and `show` work and fail with clear errors.

use simdnn::kernels::gemm::GemmConfig;
use simdnn::kernels::Isa;
use simdnn::layers::{Ctx, Feed, State};
use simdnn::models::checkpoint::Checkpoint;
use simdnn::models::registry::{self, Head};
use simdnn::models::weights::{save_weights, Weights};
use simdnn::models::zoo::Convention;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("simdnn-weights-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn simdnn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_simdnn")).args(args).env_remove("SIMDNN_ISA").output().expect("simdnn runs")
}

fn stderr(out: &Output) -> String {
    assert!(!out.status.success(), "should have failed; stdout: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// max |y - t| / max |t|: the error relative to the logits' scale.
fn relative_error(y: &[f32], t: &[f32]) -> f32 {
    assert_eq!(y.len(), t.len());
    let scale = t.iter().fold(0f32, |m, v| m.max(v.abs()));
    y.iter().zip(t).fold(0f32, |m, (a, b)| m.max((a - b).abs())) / scale
}

/// The logits of `model` for the fixture's input, on every instruction set this CPU has.
fn check_fixture(model: &str) {
    let entry = registry::find(model).unwrap();
    let weights = Weights::read(&fixture(&format!("{model}.safetensors"))).unwrap();
    let (options, shape) = weights.recorded(entry).unwrap();
    let io = Checkpoint::read(&fixture(&format!("{model}.io.safetensors"))).unwrap();
    let (x, expected) = (io.tensor("input").unwrap(), io.tensor("output").unwrap());
    let model = weights.build(entry, &options, &shape, x.shape()[0], Head::Logits).unwrap();
    for isa in Isa::available() {
        let ctx = Ctx::eval(GemmConfig::new(isa, 2).unwrap());
        let mut state = State::new();
        model.forward(&ctx, &mut state, &[("image", Feed::from(&x))]).unwrap();
        let y = model.output(&state, "logits").unwrap();
        assert_eq!(y.shape(), expected.shape());
        let err = relative_error(y.data(), expected.data());
        assert!(err <= 1e-4, "{} on {isa:?}: relative error {err:e}", entry.name);
    }
}

#[test]
fn lenet5_gives_pytorchs_logits() {
    check_fixture("lenet5");
}

#[test]
fn squeezenet1_1_gives_pytorchs_logits_from_half_precision_weights() {
    check_fixture("squeezenet1_1");
}

#[test]
fn export_then_import_gives_the_same_weights() {
    let entry = registry::find("resnet18").unwrap();
    let options = entry.options([]).unwrap();
    let shape = registry::Shape { in_channels: 3, classes: 5, input: (32, 32) };
    let mut model =
        entry.build(&options, &shape, 1, 7, simdnn::models::zoo::Convention::Torchvision, Head::Logits).unwrap();
    let path = scratch("roundtrip").join("resnet18.safetensors");
    save_weights(&path, entry, &options, &shape, &mut model).unwrap();
    let weights = Weights::read(&path).unwrap();
    assert_eq!(weights.recorded(entry).unwrap(), (options.clone(), shape));
    // Loaded as built (`Weights::build` would fold the batch norms for inference).
    let mut loaded = entry.build(&options, &shape, 1, 0, Convention::Torchvision, Head::Logits).unwrap();
    weights.load(&mut loaded).unwrap();
    let mut names = 0;
    model.params().visit(&mut |name, t| {
        names += 1;
        let id = loaded.params().id(name);
        let value = match id {
            Some(id) => loaded.params().value(id).data().to_vec(),
            None => loaded.params().buffer(loaded.params().buffer_id(name).unwrap()).data().to_vec(),
        };
        assert_eq!(value, t.data(), "{name}");
    });
    // torchvision's names, batch-norm statistics included.
    assert!(names > 100);
    assert!(loaded.params().buffer_id("layer1.0.bn1.running_var").is_some());
    assert!(loaded.params().id("layer4.1.conv2.weight").is_some() && loaded.params().id("fc.bias").is_some());
}

#[test]
fn infer_writes_pytorchs_logits() {
    let dir = scratch("infer");
    let out = dir.join("y.safetensors");
    let (w, x) = (fixture("squeezenet1_1.safetensors"), fixture("squeezenet1_1.io.safetensors"));
    let args = ["infer", "squeezenet1_1", "--weights", w.to_str().unwrap(), "--input", x.to_str().unwrap()];
    let stdout = ok(&simdnn(&[&args[..], &["--output", out.to_str().unwrap(), "--json"]].concat()));
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["output"], serde_json::json!([2, 10]));
    let y = Checkpoint::read(&out).unwrap().tensor("output").unwrap();
    let expected = Checkpoint::read(&x).unwrap().tensor("output").unwrap();
    assert!(relative_error(y.data(), expected.data()) <= 1e-4);
}

#[test]
fn bad_weights_and_inputs_are_clear_errors() {
    let dir = scratch("errors");
    let out = dir.join("y.safetensors");
    let out = out.to_str().unwrap();
    let (lenet, lenet_io) = (fixture("lenet5.safetensors"), fixture("lenet5.io.safetensors"));
    let (lenet, lenet_io) = (lenet.to_str().unwrap(), lenet_io.to_str().unwrap());
    // Weights of another model: the metadata names it.
    let err = stderr(&simdnn(&["infer", "squeezenet1_1", "--weights", lenet, "--input", lenet_io, "--output", out]));
    assert!(err.contains("weights of lenet5, not of squeezenet1_1"), "{err}");
    // A file that holds none of the model's tensors.
    let err = stderr(&simdnn(&["infer", "lenet5", "--weights", lenet_io, "--input", lenet_io, "--output", out]));
    assert!(err.contains("none of the model's tensors"), "{err}");
    // A wrong shape: ten classes in the file, seven asked for.
    let args = ["infer", "lenet5", "--weights", lenet, "--input", lenet_io, "--output", out, "--classes", "7"];
    let err = stderr(&simdnn(&args));
    assert!(err.contains("output.weight") && err.contains("[10, 84]") && err.contains("[7, 84]"), "{err}");
    // An input of the wrong rank, and a file without `input`.
    let err = stderr(&simdnn(&["infer", "lenet5", "--weights", lenet, "--input", lenet, "--output", out]));
    assert!(err.contains("tensor input is missing"), "{err}");
    assert!(!Path::new(out).exists());
    // An image that cannot be decoded, and an unknown layer.
    let err = stderr(&simdnn(&["classify", "lenet5", "--weights", lenet, "--image", lenet]));
    assert!(err.contains("cannot decode the image"), "{err}");
    let png = dir.join("maps.png");
    let show = |layer: &str| {
        simdnn(&[
            "show",
            "lenet5",
            "--weights",
            lenet,
            "--image",
            png.to_str().unwrap(),
            "--layer",
            layer,
            "--out",
            png.to_str().unwrap(),
        ])
    };
    write_test_png(&png);
    let err = stderr(&show("c9"));
    assert!(err.contains("no layer \"c9\"") && err.contains("c1, s2, c3"), "{err}");
    ok(&show("c3"));
}

/// A 28x28 grey PNG: a bright vertical bar on a dark ground.
fn write_test_png(path: &Path) {
    let pixels: Vec<u8> = (0..28 * 28).map(|i| if (12..16).contains(&(i % 28)) { 255 } else { 0 }).collect();
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, 28, 28);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&pixels).unwrap();
    writer.finish().unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn classify_and_show_a_picture() {
    let dir = scratch("classify");
    let (picture, maps, filters, labels) =
        (dir.join("bar.png"), dir.join("maps.png"), dir.join("filters.png"), dir.join("labels.txt"));
    write_test_png(&picture);
    std::fs::write(&labels, (0..10).map(|d| format!("digit {d}\n")).collect::<String>()).unwrap();
    let lenet = fixture("lenet5.safetensors");
    let (lenet, picture_path) = (lenet.to_str().unwrap(), picture.to_str().unwrap());
    let args = ["classify", "lenet5", "--weights", lenet, "--image", picture_path, "--top", "3", "--json"];
    let stdout = ok(&simdnn(&[&args[..], &["--labels", labels.to_str().unwrap()]].concat()));
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let top = report["top"].as_array().unwrap();
    assert_eq!(top.len(), 3);
    let p: Vec<f64> = top.iter().map(|t| t["probability"].as_f64().unwrap()).collect();
    assert!(p[0] >= p[1] && p[1] >= p[2] && p[0] <= 1.0);
    assert!(top[0]["label"].as_str().unwrap().starts_with("digit "));
    // C1's six feature maps and six filters: PNGs of three tiles by two.
    let args = ["show", "lenet5", "--weights", lenet, "--image", picture_path, "--layer", "c1"];
    let out = [maps.to_str().unwrap(), filters.to_str().unwrap()];
    ok(&simdnn(&[&args[..], &["--out", out[0], "--filters", out[1]]].concat()));
    for path in [&maps, &filters] {
        let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
        let info = decoder.read_info().unwrap().info().clone();
        assert!(
            info.width * 2 > info.height * 3 - 10 && info.width > info.height,
            "{path:?}: {}x{}",
            info.width,
            info.height
        );
    }
}
