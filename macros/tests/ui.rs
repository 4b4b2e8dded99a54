//! Compile-time behaviour of the macros: what compiles, and the errors (with their
//! spans) for what does not: `#[derive(ExtensionEffect)]` and the `choreography!` DSL.

#[test]
fn compile_time_cases() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass_*.rs");
    cases.compile_fail("tests/ui/fail_*.rs");
    cases.pass("tests/ui/dsl_pass_*.rs");
    cases.compile_fail("tests/ui/dsl_fail_*.rs");
}
