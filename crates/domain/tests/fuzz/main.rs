//! Fuzzing of every parser drover's domain exposes to outside input: app JSON,
//! constraints, `--resources`, `--attributes`, fault-domain JSON and `drover plan`'s node
//! inventory. How it works is in [`engine`]; how to run a long session is in
//! docs/fuzzing.md.

mod app;
mod constraint;
mod engine;
mod fault_domain;
mod inventory;
mod specs;

#[global_allocator]
static ALLOCATOR: engine::MeasuringAllocator = engine::MeasuringAllocator;
