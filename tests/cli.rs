//! The command-line contract: subcommands, `--json` keys, and clear errors for bad input.

use std::process::{Command, Output};

fn simdnn(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_simdnn"));
    cmd.args(args).env_remove("SIMDNN_ISA").env_remove("SIMDNN_THREADS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("simdnn runs")
}

fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

#[test]
fn bench_gemm_json_keys() {
    let out = simdnn(
        &["bench", "gemm", "--m", "33", "--n", "17", "--k", "9", "--threads", "2", "--min-ms", "1", "--json"],
        &[],
    );
    let v = json(&out);
    for key in ["gflops", "median_ms", "isa", "threads"] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert_eq!(v["threads"], 2);
    assert!(v["gflops"].as_f64().unwrap() > 0.0);
}

#[test]
fn bench_gemm_forced_isa_is_reported() {
    let out = simdnn(
        &["bench", "gemm", "--m", "8", "--n", "8", "--k", "8", "--min-ms", "1", "--json"],
        &[("SIMDNN_ISA", "portable")],
    );
    assert_eq!(json(&out)["isa"], "portable");
    let out = simdnn(
        &["bench", "gemm", "--m", "8", "--n", "8", "--k", "8", "--min-ms", "1", "--isa", "portable", "--json"],
        &[],
    );
    assert_eq!(json(&out)["isa"], "portable");
}

#[test]
fn bench_peak_json_keys() {
    let v = json(&simdnn(&["bench", "peak", "--threads", "1", "--min-ms", "1", "--json"], &[]));
    assert!(v["gflops"].as_f64().unwrap() > 0.0);
    assert_eq!(v["threads"], 1);
}

#[test]
fn unknown_isa_is_a_clear_error() {
    for (args, env) in [
        (vec!["info"], vec![("SIMDNN_ISA", "avx9")]),
        (vec!["bench", "peak", "--isa", "avx9", "--min-ms", "1"], vec![]),
    ] {
        let out = simdnn(&args, &env);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("unknown instruction set") && err.contains("avx9"), "{err}");
    }
}

#[test]
fn bad_thread_count_is_a_clear_error() {
    let out = simdnn(&["bench", "gemm", "--m", "4", "--n", "4", "--k", "4", "--threads", "0"], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("thread count"));
    let out = simdnn(&["info"], &[("SIMDNN_THREADS", "many")]);
    assert!(!out.status.success());
}

#[test]
fn unsupported_isa_is_a_clear_error() {
    use simdnn::kernels::Isa;
    if let Some(missing) = Isa::ALL.into_iter().find(|i| !i.is_supported()) {
        let out = simdnn(&["bench", "peak", "--isa", missing.name(), "--min-ms", "1"], &[]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("does not support"));
    }
}

#[test]
fn bench_conv_json_keys() {
    let args = ["bench", "conv", "--n", "2", "--c", "3", "--h", "9", "--w", "7", "--k", "4", "--r", "3", "--pad", "1"];
    let v = json(&simdnn(&[&args[..], &["--stride", "2", "--min-ms", "1", "--json"]].concat(), &[]));
    for key in ["gflops", "median_ms", "algo", "isa"] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert_eq!((v["out_h"].as_u64(), v["out_w"].as_u64()), (Some(5), Some(4)));
    let out = simdnn(&[&args[..], &["--algo", "fft", "--min-ms", "1"]].concat(), &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("fft"));
    assert_eq!(
        json(&simdnn(&[&args[..], &["--algo", "direct", "--min-ms", "1", "--json"]].concat(), &[]))["algo"],
        "direct"
    );
    let v = json(&simdnn(&[&args[..], &["--algo", "winograd", "--min-ms", "1", "--json"]].concat(), &[]));
    assert_eq!(v["algo"], "winograd");
    let v = json(&simdnn(&[&args[..], &["--algo", "winograd", "--prepared", "--min-ms", "1", "--json"]].concat(), &[]));
    assert_eq!((v["algo"].as_str(), v["prepared"].as_bool()), (Some("winograd"), Some(true)));
    let out = simdnn(&[&args[..], &["--algo", "winograd", "--stride", "2", "--min-ms", "1"]].concat(), &[]);
    assert!(!out.status.success(), "winograd needs stride 1");
    let out = simdnn(&["bench", "conv", "--n", "1", "--c", "1", "--h", "2", "--w", "2", "--k", "1", "--r", "3"], &[]);
    assert!(!out.status.success(), "a kernel larger than the input is an error");
}

#[test]
fn bench_pool_and_relu_report_bandwidth() {
    for args in [
        &["bench", "pool", "--c", "3", "--h", "17", "--w", "15", "--relu", "--min-ms", "1", "--json"][..],
        &["bench", "pool", "--c", "3", "--h", "17", "--w", "15", "--avg", "--pad", "1", "--min-ms", "1", "--json"][..],
        &["bench", "relu", "--len", "1001", "--min-ms", "1", "--json"][..],
    ] {
        let v = json(&simdnn(args, &[]));
        for key in ["gbps", "copy_gbps", "copy_ratio", "median_ms", "isa"] {
            assert!(v.get(key).is_some(), "missing {key} in {v}");
        }
    }
}

#[test]
fn info_lists_the_kernel_instances_of_the_path_in_use() {
    let v = json(&simdnn(&["info", "--json"], &[("SIMDNN_ISA", "portable")]));
    assert_eq!(v["isa"], "portable");
    let kernels = v["kernels"].as_array().expect("a kernels array");
    assert!(kernels.len() > 20, "{v}");
    for k in kernels {
        let name = k.as_str().unwrap();
        assert!(name.starts_with("f32_") && name.ends_with("_portable"), "{name}");
    }
    assert!(kernels.iter().any(|k| k == "f32_gemm_4x8_portable"), "{v}");
}

#[test]
fn summary_json_keys_and_counts() {
    let v = json(&simdnn(&["summary", "resnet50", "--count", "keras", "--json"], &[]));
    for key in ["model", "params", "trainable_params", "macs", "count", "input", "classes", "layers", "tensors"] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["params"], 25_636_712);
    assert_eq!(v["count"], "keras");
    assert!(v["macs"].as_u64().unwrap() > 4_000_000_000, "ResNet-50 takes about 4.1 GMACs: {}", v["macs"]);
    assert_eq!(v["tensors"]["fc.weight"], serde_json::json!([1000, 2048]));
    let v = json(&simdnn(
        &["summary", "densenet121", "--in-channels", "1", "--classes", "2", "--count", "keras", "--json"],
        &[],
    ));
    assert_eq!(v["params"], 7_033_282);
    assert_eq!(v["input"], serde_json::json!([1, 224, 224]));
    // VGG-11's summary says where the course's table went wrong.
    let out = simdnn(&["summary", "vgg11"], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("132863336") && text.contains("VGG-16's count"), "{text}");
    let out = simdnn(&["summary", "resnet51"], &[]);
    assert!(!out.status.success());
    let out = simdnn(&["summary", "resnet18", "--input", "0", "32"], &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("the input height must be from 1 to"), "{out:?}");
}

#[test]
fn bench_model_json_keys() {
    let args = ["bench", "model", "squeezenodule_v1", "--batch", "2", "--threads", "1", "--min-ms", "10", "--json"];
    let v = json(&simdnn(&args, &[]));
    for key in ["median_ms", "images_per_second", "gflops", "macs", "batch", "isa", "threads"] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert_eq!(v["input"], serde_json::json!([2, 1, 64, 64]));
    assert!(v["gflops"].as_f64().unwrap() > 0.0);
}
