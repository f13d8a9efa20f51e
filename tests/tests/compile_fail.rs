//! Models whose shapes do not chain do not build: each file in `tests/ui/` must fail to
//! compile with the error recorded beside it (`TRYBUILD=overwrite` re-records after a
//! deliberate change of message).

#[test]
fn shape_mismatches_are_build_errors() {
    let t = trybuild::TestCases::new();
    // A passing case makes trybuild build (not only check) every case, so the `const`
    // assertions that fire at monomorphization are reached.
    t.pass("ui/pass/*.rs");
    t.compile_fail("ui/*.rs");
}
