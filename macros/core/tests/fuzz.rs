//! The `choreography!` DSL never panics, whatever it is given: random text (where it
//! tokenizes), random token trees of the DSL's words, and valid choreographies
//! mutated at random (a token deleted, duplicated, replaced, swapped, a group
//! inserted). Every expansion is tokens again (a `compile_error!` for a mistake),
//! and the valid seeds expand without one. Each test runs a fixed number of cases
//! from a fixed seed and prints how many inputs it tried.
#![allow(missing_docs)]

use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// A runner of `cases` cases from a fixed seed (the same inputs on every run).
fn runner(cases: u32) -> TestRunner {
    TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[16; 32]),
    )
}

fn krate() -> TokenStream {
    TokenStream::from_str("::stormchor_choreography").expect("a path")
}

/// Expands `tokens`; the expansion must be tokens again. Panics propagate (and fail
/// the case).
fn expand(tokens: TokenStream) -> Result<String, TestCaseError> {
    let out = stormchor_macros_core::choreography(tokens, &krate()).to_string();
    prop_assert!(
        TokenStream::from_str(&out).is_ok(),
        "the expansion does not tokenize: {out}"
    );
    Ok(out)
}

/// Valid choreographies: one per construct of the grammar, and a few whole ones.
const SEEDS: &[&str] = &[
    "pub enum Role { Coordinator, Backup, Worker(u16) }
     pub fn first(n: u16) -> Program<Role, Msg> {
         roles Coordinator, Worker[n];
         Coordinator -> Worker: Msg::Start;
         Worker -> Coordinator: Msg::Rows(0);
         Worker[1] -> Coordinator: Msg::Rows(1);
     }",
    "enum Role { Coordinator, Auditor, Worker(u16) }
     fn ledger(workers: u16, rounds: u64, amount: u64) -> Program<Role, Msg> {
         roles Coordinator, Auditor, Worker[workers];
         Coordinator -> Worker: Msg::Start;
         loop rounds { ext Deposit { amount } @ Worker; }
         Worker -> Coordinator: Msg::Balance(0);
         Coordinator -> Auditor: Msg::Balance(0);
         choice at Auditor {
             balanced => { Auditor -> Coordinator: Msg::Verdict(true); }
             \"not balanced\" => { Auditor -> Coordinator: Msg::Verdict(false); }
         }
         call checkpoint_all(Coordinator, Worker, Msg::Checkpoint, Msg::Flushed);
     }",
    "enum Role { Coordinator, Worker(u16) }
     fn rows_then_decide(workers: u16) -> Program<Role, &'static str> {
         roles Coordinator, Worker[workers];
         Coordinator -> Worker: \"start\";
         loop until Coordinator { Worker -> Coordinator: \"rows\"; }
         choice at Coordinator {
             commit => { Coordinator -> Worker: \"commit\"; }
             abort => { Coordinator -> Worker: \"abort\"; }
         }
     }",
    "pub enum Role { Coordinator, Backup, Worker(u16) }
     pub fn all(n: u16) -> Program<Role, Msg> {
         roles Coordinator, Backup, Worker[n];
         let ring = [Coordinator, Worker[0]];
         par { Coordinator -> Backup: Msg::A; } and { Worker[0] -> Coordinator: Msg::B; }
         timeout Duration::from_secs(5) at Worker[0] { Worker[0] -> Backup: Msg::C; }
         for w in Worker { Coordinator -> w: Msg::Start; }
         ext RecordPoint { on: PRIMARY } => POINT @ Coordinator;
         Coordinator -> Backup: POINT.carry();
         ext TakeBackup { node: Backup };
     }",
];

/// The words, punctuation and literals the DSL is made of, and a few it is not.
fn word() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "roles",
        "ext",
        "choice",
        "at",
        "loop",
        "until",
        "par",
        "and",
        "timeout",
        "call",
        "for",
        "in",
        "let",
        "fn",
        "enum",
        "pub",
        "Program",
        "Role",
        "Msg",
        "Coordinator",
        "Worker",
        "Backup",
        "w",
        "n",
        "u16",
        "->",
        ":",
        ";",
        ",",
        "@",
        "=>",
        "=",
        ".",
        "::",
        "<",
        ">",
        "&",
        "'static",
        "!",
        "#",
        "0",
        "1",
        "3",
        "18446744073709551615",
        "\"x\"",
        "2.5",
        "true",
        "Msg::Start",
        "POINT.carry()",
        "_",
    ])
}

/// A random token tree of DSL words, groups nested up to 4 deep.
fn tree() -> impl Strategy<Value = String> {
    let leaf = word().prop_map(str::to_owned);
    leaf.prop_recursive(4, 64, 8, |inner| {
        (
            prop::sample::select(vec![("{", "}"), ("(", ")"), ("[", "]")]),
            prop::collection::vec(inner, 0..8),
        )
            .prop_map(|((open, close), parts)| format!("{open} {} {close}", parts.join(" ")))
    })
}

#[test]
fn the_valid_seeds_expand_without_error() {
    for seed in SEEDS {
        let tokens = TokenStream::from_str(seed).expect("a seed tokenizes");
        let out = stormchor_macros_core::choreography(tokens, &krate()).to_string();
        assert!(!out.contains("compile_error"), "{seed}\n{out}");
    }
}

#[test]
fn random_text_never_panics() {
    let (tried, tokenized) = (AtomicU32::new(0), AtomicU32::new(0));
    runner(3000)
        .run(
            &prop_oneof![
                // Any printable text (rarely tokens), and text of the DSL's characters
                // (unbalanced groups fail to tokenize; the rest reaches the parser).
                "\\PC{0,200}",
                "[a-zA-Z0-9_ ;:,@=<>.\n{}()\\[\\]-]{0,200}",
                "[a-z ;:@>-]{0,100}",
            ],
            |text| {
                tried.fetch_add(1, Relaxed);
                if let Ok(tokens) = TokenStream::from_str(&text) {
                    tokenized.fetch_add(1, Relaxed);
                    expand(tokens)?;
                }
                Ok(())
            },
        )
        .expect("no panic");
    let (tried, tokenized) = (tried.into_inner(), tokenized.into_inner());
    eprintln!("random text: {tried} inputs, {tokenized} tokenized and expanded, 0 panics");
    assert!(tried >= 3000 && tokenized > 1000, "{tokenized} tokenized");
}

#[test]
fn random_token_trees_never_panic() {
    let tried = AtomicU32::new(0);
    let soup = (prop::collection::vec(tree(), 0..30), any::<bool>());
    runner(1500)
        .run(&soup, |(parts, wrapped)| {
            tried.fetch_add(1, Relaxed);
            let body = parts.join(" ");
            // Half of them inside a choreography's signature, so the statements parse.
            let text = if wrapped {
                format!("pub fn f(n: u16) -> Program<Role, Msg> {{ roles Coordinator, Worker[n]; {body} }}")
            } else {
                body
            };
            let tokens = TokenStream::from_str(&text).expect("balanced by construction");
            expand(tokens)?;
            Ok(())
        })
        .expect("no panic");
    let tried = tried.into_inner();
    eprintln!("random token trees: {tried} inputs, 0 panics");
    assert!(tried >= 1500);
}

/// The tokens of `stream`, flattened, with each group's delimiters as tokens and
/// joint punctuation kept together (`::`, `->`, `'static`).
fn flatten(stream: TokenStream, out: &mut Vec<String>) {
    let mut joint = String::new();
    for tree in stream {
        match tree {
            TokenTree::Group(group) => {
                let (open, close) = match group.delimiter() {
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::None => ("", ""),
                };
                out.push(std::mem::take(&mut joint) + open);
                flatten(group.stream(), out);
                out.push(close.to_owned());
            }
            TokenTree::Punct(punct) if punct.spacing() == proc_macro2::Spacing::Joint => {
                joint.push(punct.as_char());
            }
            other => out.push(std::mem::take(&mut joint) + &other.to_string()),
        }
    }
}

fn is_delimiter(token: &str) -> bool {
    matches!(token, "{" | "}" | "(" | ")" | "[" | "]" | "")
}

#[derive(Clone, Debug)]
enum Mutation {
    Delete(usize),
    Duplicate(usize),
    Replace(usize, &'static str),
    Swap(usize, usize),
    InsertGroup(usize, &'static str),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<prop::sample::Index>();
    prop_oneof![
        at.clone()
            .prop_map(|i| Mutation::Delete(i.index(usize::MAX))),
        at.clone()
            .prop_map(|i| Mutation::Duplicate(i.index(usize::MAX))),
        (at.clone(), word()).prop_map(|(i, w)| Mutation::Replace(i.index(usize::MAX), w)),
        (at.clone(), any::<prop::sample::Index>())
            .prop_map(|(i, j)| Mutation::Swap(i.index(usize::MAX), j.index(usize::MAX))),
        (
            at,
            prop::sample::select(vec!["{ }", "( )", "[ ]", "{ ; }", "( Worker )"])
        )
            .prop_map(|(i, g)| Mutation::InsertGroup(i.index(usize::MAX), g)),
    ]
}

/// Applies `mutation` to the non-delimiter tokens of `tokens` (so groups stay
/// balanced; a deleted or swapped delimiter would only fail tokenizing).
fn apply(tokens: &mut Vec<String>, mutation: &Mutation) {
    let leaves: Vec<usize> = (0..tokens.len())
        .filter(|&i| !is_delimiter(&tokens[i]))
        .collect();
    if leaves.is_empty() {
        return;
    }
    let pick = |i: usize| leaves[i % leaves.len()];
    match mutation {
        Mutation::Delete(i) => {
            tokens.remove(pick(*i));
        }
        Mutation::Duplicate(i) => {
            let at = pick(*i);
            let copy = tokens[at].clone();
            tokens.insert(at, copy);
        }
        Mutation::Replace(i, word) => {
            let at = pick(*i);
            tokens[at] = (*word).to_owned();
        }
        Mutation::Swap(i, j) => {
            let (a, b) = (pick(*i), pick(*j));
            tokens.swap(a, b);
        }
        Mutation::InsertGroup(i, group) => {
            let at = pick(*i);
            tokens.insert(at, (*group).to_owned());
        }
    }
}

#[test]
fn mutated_valid_choreographies_never_panic() {
    let seeds: Vec<Vec<String>> = SEEDS
        .iter()
        .map(|s| {
            let mut out = Vec::new();
            flatten(
                TokenStream::from_str(s).expect("a seed tokenizes"),
                &mut out,
            );
            out
        })
        .collect();
    let (tried, tokenized, errors) = (AtomicU32::new(0), AtomicU32::new(0), AtomicU32::new(0));
    let input = (0..seeds.len(), prop::collection::vec(mutation(), 1..6));
    runner(3000)
        .run(&input, |(seed, mutations)| {
            tried.fetch_add(1, Relaxed);
            let mut tokens = seeds[seed].clone();
            for m in &mutations {
                apply(&mut tokens, m);
            }
            let text = tokens.join(" ");
            // A mutation can split what lexes as one token (`'` `static`).
            let Ok(tokens) = TokenStream::from_str(&text) else {
                return Ok(());
            };
            tokenized.fetch_add(1, Relaxed);
            if expand(tokens)?.contains("compile_error") {
                errors.fetch_add(1, Relaxed);
            }
            Ok(())
        })
        .expect("no panic");
    let (tried, tokenized, errors) = (
        tried.into_inner(),
        tokenized.into_inner(),
        errors.into_inner(),
    );
    eprintln!(
        "mutated choreographies: {tried} inputs, {tokenized} tokenized and expanded, {errors} of them to a compile error, 0 panics"
    );
    assert!(
        tried >= 3000 && tokenized > tried * 9 / 10,
        "{tokenized} tokenized"
    );
    // Most mutations break a choreography: the errors are there, not swallowed.
    assert!(errors > tokenized / 2, "{errors} errors in {tokenized}");
}

#[test]
fn flattened_seeds_are_still_valid() {
    for seed in SEEDS {
        let mut tokens = Vec::new();
        flatten(
            TokenStream::from_str(seed).expect("a seed tokenizes"),
            &mut tokens,
        );
        let out =
            expand(TokenStream::from_str(&tokens.join(" ")).expect("tokenizes")).expect("expands");
        assert!(
            !out.contains("compile_error"),
            "{}\n{out}",
            tokens.join(" ")
        );
    }
}
