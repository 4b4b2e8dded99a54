//! Compile-time behaviour of `#[derive(ExtensionEffect)]`: what compiles, and the
//! errors (with their spans) for what does not.

#[test]
fn derive_cases() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass_*.rs");
    cases.compile_fail("tests/ui/fail_*.rs");
}
