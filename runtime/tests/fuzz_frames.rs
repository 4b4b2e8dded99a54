//! The TCP frame decoder on mutated real frames: valid wire records of messages
//! with strings, vectors and nesting, with bytes flipped, cut short, or a length
//! field overwritten with a huge value. Decoding never panics, and a declared length
//! larger than the bytes that follow is refused before anything that size is
//! allocated (a 2^60-element vector would abort the process, so a pass proves it).
//! `tests/tcp.rs` adds 100,000 random byte strings, and the stream's length prefix
//! (above `MAX_FRAME` is refused without reading it).

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use bincode::Options;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde::{Deserialize, Serialize};
use stormchor_runtime::Frame;
use stormchor_runtime::tcp::decode_frame;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Rich {
    Text(String),
    Numbers(Vec<u64>),
    Nested(Option<Box<Rich>>, (u8, i64)),
    Map(std::collections::BTreeMap<String, Vec<u8>>),
}

fn rich() -> impl Strategy<Value = Rich> {
    let leaf = prop_oneof![
        ".{0,12}".prop_map(Rich::Text),
        prop::collection::vec(any::<u64>(), 0..8).prop_map(Rich::Numbers),
        prop::collection::btree_map(".{0,4}", prop::collection::vec(any::<u8>(), 0..6), 0..3)
            .prop_map(Rich::Map),
    ];
    leaf.prop_recursive(3, 16, 2, |inner| {
        (prop::option::of(inner), any::<(u8, i64)>())
            .prop_map(|(rich, pair)| Rich::Nested(rich.map(Box::new), pair))
    })
}

fn frame() -> impl Strategy<Value = Frame<Rich>> {
    prop_oneof![
        4 => rich().prop_map(Frame::Message),
        1 => any::<u32>().prop_map(Frame::Label),
        1 => any::<bool>().prop_map(Frame::Loop),
        1 => Just(Frame::Order),
    ]
}

/// The wire form of `frame` as a sender writes it: variant 0 (a frame) of the wire
/// record, then the frame, fixed-width integers.
fn wire(frame: &Frame<Rich>) -> Vec<u8> {
    let mut bytes = 0u32.to_le_bytes().to_vec();
    bytes.extend(
        bincode::DefaultOptions::new()
            .with_fixint_encoding()
            .serialize(frame)
            .expect("encode"),
    );
    bytes
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Cut(usize),
    /// Overwrites 8 bytes at an offset with a huge little-endian length.
    HugeLength(usize, u64),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = || any::<prop::sample::Index>().prop_map(|i| i.index(usize::MAX));
    prop_oneof![
        (at(), 1..=255u8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        at().prop_map(Mutation::Cut),
        (
            at(),
            prop::sample::select(vec![1 << 31, 1 << 40, 1 << 60, u64::MAX, u64::MAX / 2])
        )
            .prop_map(|(i, n)| Mutation::HugeLength(i, n)),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    match *mutation {
        Mutation::Flip(i, b) => {
            let at = i % bytes.len();
            bytes[at] ^= b;
        }
        Mutation::Cut(i) => bytes.truncate(i % bytes.len()),
        Mutation::HugeLength(i, n) => {
            let at = i % bytes.len();
            for (k, b) in n.to_le_bytes().into_iter().enumerate() {
                if let Some(slot) = bytes.get_mut(at + k) {
                    *slot = b;
                }
            }
        }
    }
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[9; 32]),
    )
}

#[test]
fn mutated_frames_never_panic_and_valid_ones_decode_to_themselves() {
    let (tried, refused) = (AtomicU32::new(0), AtomicU32::new(0));
    let input = (frame(), prop::collection::vec(mutation(), 0..4));
    runner(20_000)
        .run(&input, |(frame, mutations)| {
            tried.fetch_add(1, Relaxed);
            let mut bytes = wire(&frame);
            if mutations.is_empty() {
                prop_assert_eq!(decode_frame::<Rich>(&bytes), Ok(frame));
                return Ok(());
            }
            for m in &mutations {
                apply(&mut bytes, m);
            }
            if decode_frame::<Rich>(&bytes).is_err() {
                refused.fetch_add(1, Relaxed);
            }
            Ok(())
        })
        .expect("no panic");
    let (tried, refused) = (tried.into_inner(), refused.into_inner());
    eprintln!("mutated frames: {tried} inputs, {refused} refused as malformed, 0 panics");
    assert!(
        tried >= 20_000 && refused > tried / 4,
        "{refused} of {tried}"
    );
}

#[test]
fn a_declared_length_beyond_the_frame_is_refused_without_allocating_it() {
    // A vector of two numbers, then its length field claims 2^60 and u64::MAX.
    let bytes = wire(&Frame::Message(Rich::Numbers(vec![1, 2])));
    // wire variant (4) + frame variant (4) + Rich variant (4), then the length (8).
    assert_eq!(&bytes[12..20], &2u64.to_le_bytes());
    for huge in [1u64 << 60, u64::MAX, 1 << 31] {
        let mut forged = bytes.clone();
        forged[12..20].copy_from_slice(&huge.to_le_bytes());
        let error = decode_frame::<Rich>(&forged).expect_err("a forged length");
        assert!(error.contains("malformed frame of 36 bytes"), "{error}");
    }
    // The same for a string's length.
    let mut forged = wire(&Frame::Message(Rich::Text("lsn".into())));
    forged[12..20].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(decode_frame::<Rich>(&forged).is_err());
}
