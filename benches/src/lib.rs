//! Benchmarks of stormchor live under `benches/`; this library is empty.
