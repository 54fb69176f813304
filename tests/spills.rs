//! Every named kernel instance keeps its vector values in registers inside its inner loops:
//! no xmm, ymm or zmm register is stored to or loaded from a fixed stack slot there.
//!
//! The test disassembles its own executable (which links every instance through
//! `Instance::all`) with `objdump`, finds each instance by its name, finds its innermost
//! loops from the backward jumps, and reports every vector access to `disp(%rsp)` inside
//! them. Compiling AVX-512 code needs no AVX-512 CPU, so this runs on any x86-64 machine.
//! It also checks that every function of the kernels crate that uses ymm or zmm registers is
//! a named instance (or a closure inside one), so no vector loop escapes the check.
//!
//! Unoptimised builds spill everything, so the check runs only in release builds (the
//! README's test command, and CI's).

use simdnn::kernels::isa::Instance;
use std::collections::BTreeMap;
use std::process::Command;

/// One disassembled instruction.
struct Insn {
    addr: u64,
    mnemonic: String,
    operands: String,
}

/// The functions of a binary, by demangled name.
fn disassemble(path: &std::path::Path) -> BTreeMap<String, Vec<Insn>> {
    let tools = ["objdump", "llvm-objdump"];
    let out = tools
        .iter()
        .find_map(|tool| {
            Command::new(tool)
                .args(["-d", "--no-show-raw-insn", "-C"])
                .arg(path)
                .output()
                .ok()
                .filter(|o| o.status.success())
        })
        .unwrap_or_else(|| panic!("the spill check needs objdump (binutils) or llvm-objdump on PATH"));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut funcs: BTreeMap<String, Vec<Insn>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        // "000000000012a0c0 <name>:"
        if let Some(name) = line.strip_suffix(">:").and_then(|l| l.split_once(" <")).map(|(_, n)| n) {
            current = Some(name.to_string());
            funcs.entry(name.to_string()).or_default();
            continue;
        }
        // "  12a0c0:\tmnemonic operands"
        let (Some(name), Some((addr, rest))) = (&current, line.trim_start().split_once(":\t")) else { continue };
        let Ok(addr) = u64::from_str_radix(addr, 16) else { continue };
        let rest = rest.trim();
        let (mnemonic, operands) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let insn = Insn { addr, mnemonic: mnemonic.to_string(), operands: operands.trim().to_string() };
        funcs.get_mut(name).expect("entry made above").push(insn);
    }
    funcs
}

/// The innermost loops of a function, as address ranges: back edges to the same target
/// merged into one loop, then the loops that contain no other.
fn innermost_loops(insns: &[Insn]) -> Vec<(u64, u64)> {
    let (Some(first), Some(last)) = (insns.first(), insns.last()) else { return vec![] };
    let mut by_target: BTreeMap<u64, u64> = BTreeMap::new();
    for i in insns.iter().filter(|i| i.mnemonic.starts_with('j')) {
        let Some(target) = i.operands.split_whitespace().next().and_then(|t| u64::from_str_radix(t, 16).ok()) else {
            continue;
        };
        if (first.addr..=i.addr).contains(&target) && target <= last.addr {
            let end = by_target.entry(target).or_insert(i.addr);
            *end = (*end).max(i.addr);
        }
    }
    // A range that returns or jumps through a pointer is cleanup code laid out around a
    // backward branch, not a loop body.
    let exits = |(s, e): (u64, u64)| {
        insns
            .iter()
            .any(|i| (s..=e).contains(&i.addr) && (i.mnemonic.starts_with("ret") || i.operands.starts_with('*')))
    };
    let loops: Vec<(u64, u64)> = by_target.into_iter().filter(|&l| !exits(l)).collect();
    loops
        .iter()
        .copied()
        .filter(|&(s, e)| !loops.iter().any(|&(s2, e2)| (s2, e2) != (s, e) && s <= s2 && e2 <= e))
        .collect()
}

fn uses_vector_register(operands: &str) -> bool {
    ["%xmm", "%ymm", "%zmm"].iter().any(|r| operands.contains(r))
}

/// Instructions that move or use a single scalar in a vector register (`movss`, `addsd`,
/// `movd`, `vbroadcastss` from memory, conversions): a spilled scalar, not a vector.
fn is_scalar(mnemonic: &str) -> bool {
    let m = mnemonic.trim_start_matches('v');
    m.ends_with("ss")
        || m.ends_with("sd")
        || matches!(m, "movd" | "movq" | "pinsrd" | "pinsrq" | "pextrd" | "pextrq")
        || m.starts_with("cvtsi2")
        || m.starts_with("broadcasts")
}

/// A vector stored to or loaded from a fixed stack slot (`disp(%rsp)`, no index register):
/// a spill or a reload.
fn is_vector_stack_access(i: &Insn) -> bool {
    uses_vector_register(&i.operands)
        && i.operands.contains("(%rsp)")
        && !i.mnemonic.starts_with("lea")
        && !i.mnemonic.starts_with("prefetch")
        && !is_scalar(&i.mnemonic)
}

/// Instance `name`'s functions: itself and the closures inside it.
fn instance_functions<'a>(funcs: &'a BTreeMap<String, Vec<Insn>>, name: &str) -> Vec<(&'a String, &'a Vec<Insn>)> {
    let own = format!("::{name}");
    let inner = format!("::{name}::");
    funcs.iter().filter(|(f, _)| f.ends_with(&own) || f.contains(&inner)).collect()
}

/// Whether a call's target is kernel code or an intrinsic that should have been inlined
/// into the calling instance: a closure of the kernels crate, or `core::arch`.
fn calls_out_of_line(target: &str) -> bool {
    (target.contains("simdnn_kernels::") && target.contains("{{closure}}")) || target.contains("core_arch")
}

#[test]
fn kernel_instances_keep_vectors_in_registers_in_inner_loops() {
    if cfg!(debug_assertions) {
        eprintln!("skipped: the spill check needs an optimised build (cargo test --release)");
        return;
    }
    if !cfg!(target_arch = "x86_64") {
        eprintln!("skipped: the spill check reads x86-64 disassembly");
        return;
    }
    let instances = Instance::all();
    // Taking every address keeps every instance linked into this executable.
    let addresses: u64 = instances.iter().map(|i| i.address() as u64).fold(0, u64::wrapping_add);
    std::hint::black_box(addresses);
    let exe = std::env::current_exe().expect("the test knows its executable");
    let funcs = disassemble(&exe);

    let mut problems = Vec::new();
    for inst in &instances {
        let found = instance_functions(&funcs, inst.name);
        if found.is_empty() {
            problems.push(format!("{}: not found in the disassembly of {}", inst.name, exe.display()));
        }
        for (fname, insns) in found {
            // Kernel code or an intrinsic compiled out of line (a closure called in a loop
            // was: outside the instance's target features, it ran eight times slower).
            for i in insns.iter().filter(|i| i.mnemonic.starts_with("call") && calls_out_of_line(&i.operands)) {
                problems.push(format!("{fname}: {:#x} calls out of line: {}", i.addr, i.operands));
            }
            for (start, end) in innermost_loops(insns) {
                for i in insns.iter().filter(|i| (start..=end).contains(&i.addr) && is_vector_stack_access(i)) {
                    problems.push(format!(
                        "{fname}: loop {start:#x}..={end:#x}: {:#x} {} {}",
                        i.addr, i.mnemonic, i.operands
                    ));
                }
            }
        }
    }

    // Every function of the kernels crate that uses ymm or zmm registers must be an instance
    // (or inside one), or its loops would escape the check above.
    let names: Vec<&str> = instances.iter().map(|i| i.name).collect();
    for (fname, insns) in &funcs {
        let wide = insns.iter().any(|i| i.operands.contains("%ymm") || i.operands.contains("%zmm"));
        let ours = fname.contains("simdnn_kernels::");
        let named = names.iter().any(|n| fname.ends_with(&format!("::{n}")) || fname.contains(&format!("::{n}::")));
        if wide && ours && !named {
            problems.push(format!("{fname}: uses ymm/zmm registers outside a named kernel instance"));
        }
    }

    assert!(
        problems.is_empty(),
        "{} vector spills, intrinsic calls or unchecked functions in {} kernel instances:\n{}",
        problems.len(),
        instances.len(),
        problems.join("\n")
    );
}

#[test]
fn instance_names_follow_the_convention() {
    let instances = Instance::all();
    assert!(instances.len() >= 30, "only {} instances", instances.len());
    let mut seen = std::collections::HashSet::new();
    for inst in &instances {
        assert!(inst.name.starts_with("f32_"), "{}: names start with the dtype", inst.name);
        assert!(inst.name.ends_with(&format!("_{}", inst.isa.name())), "{}: names end with the ISA", inst.name);
        assert!(seen.insert(inst.name), "{} is declared twice", inst.name);
    }
}
