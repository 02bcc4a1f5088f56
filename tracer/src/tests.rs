//! Crate-wide tests: property tests that feed random and mutated bytes to every decoder
//! ([`fuzz`]). Each module's own tests are its `tests` child (inline when short, else
//! `<module>/tests.rs`, with more files in `<module>/tests/`).
mod fuzz;
