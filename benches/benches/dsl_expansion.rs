//! Compile-time cost of the `choreography!` DSL: expanding a 200-line choreography
//! (parsing, name resolution, the symbolic projection check and code generation),
//! timed on the macro's own expansion function, `stormchor_macros_core::choreography`.
//!
//! Run: `cargo bench -p stormchor-benches --bench dsl_expansion`
//!
//! Prints the median expansion time, its ratio to the 1 s goal, and for scale the
//! ratio to parsing the expansion's own output with syn (work the compiler does on
//! any expansion anyway), both measured in the same run. Proc-macros run unoptimized
//! in a normal build: `--profile dev` measures that case.

use std::str::FromStr;
use std::time::{Duration, Instant};

use proc_macro2::TokenStream;

use stormchor_macros_core::choreography as expand;

/// A 200-line choreography mixing every construct.
fn source(lines: usize) -> String {
    let mut body = String::new();
    let mut written = 0;
    let mut round = 0;
    while written < lines {
        body.push_str(&format!(
            "        Coordinator -> Worker: Msg::Task({round});\n\
             \x20       ext RunWorkload {{ seconds: {round} }} @ Worker[{index}];\n\
             \x20       Worker -> Coordinator: Msg::Done;\n\
             \x20       choice at Coordinator {{\n\
             \x20           commit{round} => {{ Coordinator -> Worker: Msg::Commit; Coordinator -> Backup: Msg::Commit; }}\n\
             \x20           abort{round} => {{ Coordinator -> Worker: Msg::Abort; Coordinator -> Backup: Msg::Abort; }}\n\
             \x20       }}\n\
             \x20       loop 3 {{\n\
             \x20           par {{ Coordinator -> Worker[0]: Msg::Task(1); }} and {{ Backup -> Coordinator: Msg::Done; }}\n\
             \x20       }}\n",
            index = round % 4,
        ));
        written += 10;
        round += 1;
    }
    format!(
        "pub enum Role {{ Coordinator, Backup, Worker(u16) }}\n\
         pub fn scenario(workers: u16) -> Program<Role, Msg> {{\n\
         \x20       roles Coordinator, Backup, Worker[workers];\n{body}}}\n"
    )
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn time(runs: usize, mut work: impl FnMut()) -> Duration {
    work();
    median(
        (0..runs)
            .map(|_| {
                let start = Instant::now();
                work();
                start.elapsed()
            })
            .collect(),
    )
}

fn main() {
    let text = source(200);
    let lines = text.lines().count();
    let tokens = TokenStream::from_str(&text).expect("the generated source tokenizes");
    let krate = TokenStream::from_str("::stormchor_choreography").expect("a path");
    let output = expand(tokens.clone(), &krate).to_string();
    assert!(
        !output.contains("compile_error"),
        "the benchmark's choreography must be accepted"
    );
    let expanded = TokenStream::from_str(&output).expect("the expansion tokenizes");
    assert!(
        syn::parse2::<syn::File>(expanded.clone()).is_ok(),
        "the expansion is Rust"
    );
    let expansion = time(30, || {
        std::hint::black_box(expand(tokens.clone(), &krate));
    });
    let parse_floor = time(30, || {
        std::hint::black_box(syn::parse2::<syn::File>(expanded.clone()).ok());
    });
    println!(
        "choreography: {lines} lines, expansion {} bytes",
        output.len()
    );
    println!("expansion: {expansion:?} (median of 30)");
    println!(
        "ratio to the 1 s goal: x{:.4}",
        expansion.as_secs_f64() / Duration::from_secs(1).as_secs_f64()
    );
    println!(
        "ratio to parsing its own output as Rust ({parse_floor:?}): x{:.1}",
        expansion.as_secs_f64() / parse_floor.as_secs_f64()
    );
}
