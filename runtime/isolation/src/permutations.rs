//! The permutations a spec runs: its `permutation` lines, or, when it has none, every
//! interleaving of the sessions' steps that keeps each session's own order.
//!
//! The generated ones come in isolationtester's order. Upstream picks, position after
//! position, the next step of the first session that still has one, recursing before
//! trying the next session (its `run_all_permutations_recurse`); written as the
//! sequence of session indices, that is the lexicographic order of the arrangements of
//! the multiset `{0^n0, 1^n1, ...}`, which [`Interleavings`] walks with a
//! next-permutation step, lazily (their number grows as a multinomial coefficient).
//!
//! # Example
//! ```
//! use stormchor_isolation::permutations::{count, permutations};
//! use stormchor_isolation::spec::Spec;
//!
//! let spec = Spec::parse(
//!     "session a step a1 {} step a2 {}  session b step b1 {}",
//!     "x.spec",
//! )?;
//! let names: Vec<Vec<String>> = permutations(&spec)
//!     .map(|p| p.step_names().map(String::from).collect())
//!     .collect();
//! assert_eq!(names, [["a1", "a2", "b1"], ["a1", "b1", "a2"], ["b1", "a1", "a2"]]);
//! assert_eq!(count(&spec), Some(3));
//! # Ok::<(), stormchor_isolation::spec::SpecError>(())
//! ```

use crate::spec::{Permutation, PermutationStep, Spec};

/// The permutations `spec` runs, in the order isolationtester runs them.
pub fn permutations(spec: &Spec) -> Permutations<'_> {
    if spec.permutations.is_empty() {
        Permutations::Generated(Interleavings::new(spec))
    } else {
        Permutations::Listed(spec.permutations.iter())
    }
}

/// How many permutations `spec` runs (`None` if the number does not fit in a `u128`).
pub fn count(spec: &Spec) -> Option<u128> {
    if !spec.permutations.is_empty() {
        return u128::try_from(spec.permutations.len()).ok();
    }
    // The multinomial coefficient (n0 + n1 + ...)! / (n0! n1! ...), as a product of
    // binomials C(total so far, n_i), each computed exactly.
    let mut result: u128 = 1;
    let mut total: u128 = 0;
    for session in &spec.sessions {
        for k in 1..=session.steps.len() as u128 {
            total += 1;
            // result * total / k is an integer (it is the running product of binomials
            // times C(total, k)); dividing by g = gcd(result, k) first keeps it exact,
            // since k / g is coprime with result / g and so divides total.
            let g = gcd(result, k);
            result = (result / g).checked_mul(total / (k / g))?;
        }
    }
    Some(result)
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The iterator of [`permutations`].
#[derive(Debug)]
pub enum Permutations<'a> {
    /// The spec's `permutation` lines.
    Listed(std::slice::Iter<'a, Permutation>),
    /// Every interleaving.
    Generated(Interleavings<'a>),
}

impl Iterator for Permutations<'_> {
    type Item = Permutation;

    fn next(&mut self) -> Option<Permutation> {
        match self {
            Permutations::Listed(iter) => iter.next().cloned(),
            Permutations::Generated(iter) => iter.next(),
        }
    }
}

/// Every interleaving of the sessions' steps, in isolationtester's order.
#[derive(Debug)]
pub struct Interleavings<'a> {
    spec: &'a Spec,
    /// The session index of each position; `None` once exhausted.
    order: Option<Vec<usize>>,
}

impl<'a> Interleavings<'a> {
    /// Starts with every step of session 0, then of session 1, and so on.
    pub fn new(spec: &'a Spec) -> Self {
        let order = spec
            .sessions
            .iter()
            .enumerate()
            .flat_map(|(i, s)| std::iter::repeat_n(i, s.steps.len()))
            .collect();
        Interleavings {
            spec,
            order: Some(order),
        }
    }

    fn build(&self, order: &[usize]) -> Permutation {
        let mut taken = vec![0; self.spec.sessions.len()];
        let steps = order
            .iter()
            .map(|&session| {
                let step = &self.spec.sessions[session].steps[taken[session]];
                taken[session] += 1;
                PermutationStep {
                    name: step.name.clone(),
                    blockers: Vec::new(),
                    position: None,
                }
            })
            .collect();
        Permutation {
            steps,
            position: None,
        }
    }
}

/// Rearranges `v` into the next arrangement in lexicographic order; `false` if `v` was
/// the last one.
fn next_arrangement(v: &mut [usize]) -> bool {
    let Some(i) = (1..v.len()).rev().find(|&i| v[i - 1] < v[i]) else {
        return false;
    };
    let pivot = i - 1;
    // The rightmost element greater than the pivot exists: v[i] is one.
    let j = (i..v.len()).rev().find(|&j| v[j] > v[pivot]).unwrap_or(i);
    v.swap(pivot, j);
    v[i..].reverse();
    true
}

impl Iterator for Interleavings<'_> {
    type Item = Permutation;

    fn next(&mut self) -> Option<Permutation> {
        let mut order = self.order.take()?;
        let permutation = self.build(&order);
        if next_arrangement(&mut order) {
            self.order = Some(order);
        }
        Some(permutation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Upstream's recursion, transcribed as a reference to compare with.
    fn recurse(
        spec: &Spec,
        piles: &mut Vec<usize>,
        acc: &mut Vec<String>,
        out: &mut Vec<Vec<String>>,
    ) {
        let mut found = false;
        for i in 0..spec.sessions.len() {
            if piles[i] < spec.sessions[i].steps.len() {
                acc.push(spec.sessions[i].steps[piles[i]].name.clone());
                piles[i] += 1;
                recurse(spec, piles, acc, out);
                piles[i] -= 1;
                acc.pop();
                found = true;
            }
        }
        if !found {
            out.push(acc.clone());
        }
    }

    fn spec_with(sizes: &[usize]) -> Spec {
        let mut text = String::new();
        for (i, n) in sizes.iter().enumerate() {
            text.push_str(&format!("session s{i}\n"));
            for j in 0..*n {
                text.push_str(&format!("step s{i}_{j} {{ SELECT {j}; }}\n"));
            }
        }
        Spec::parse(&text, "gen.spec").expect("valid")
    }

    #[test]
    fn generated_order_is_upstreams_recursion_order() {
        for sizes in [
            &[1][..],
            &[2, 1],
            &[1, 2],
            &[2, 2],
            &[3, 1, 2],
            &[2, 2, 2],
            &[1, 1, 1, 1],
        ] {
            let spec = spec_with(sizes);
            let mut expected = Vec::new();
            recurse(
                &spec,
                &mut vec![0; sizes.len()],
                &mut Vec::new(),
                &mut expected,
            );
            let got: Vec<Vec<String>> = permutations(&spec)
                .map(|p| p.step_names().map(String::from).collect())
                .collect();
            assert_eq!(got, expected, "sizes {sizes:?}");
            assert_eq!(
                count(&spec),
                Some(expected.len() as u128),
                "sizes {sizes:?}"
            );
        }
    }

    #[test]
    fn listed_permutations_are_returned_as_written() {
        let spec = Spec::parse(
            "session a step x {} session b step y {} permutation y x permutation x(y) y",
            "p.spec",
        )
        .expect("valid");
        let got: Vec<Permutation> = permutations(&spec).collect();
        assert_eq!(got, spec.permutations);
        assert_eq!(count(&spec), Some(2));
    }

    #[test]
    fn count_is_the_multinomial_and_reports_overflow() {
        // 20 steps in 4 sessions of 5: 20! / (5!)^4 = 11732745024.
        assert_eq!(count(&spec_with(&[5, 5, 5, 5])), Some(11_732_745_024));
        assert_eq!(count(&spec_with(&[3, 3])), Some(20));
        // 200 one-step sessions: 200! overflows.
        assert_eq!(count(&spec_with(&[1; 200])), None);
        // ...but the iterator is lazy: taking a few is cheap.
        assert_eq!(permutations(&spec_with(&[1; 200])).take(3).count(), 3);
    }
}
