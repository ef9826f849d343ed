//! Wall-clock time as the protocol carries it.

/// Milliseconds since the Unix epoch (the system's clock; a simulation's when it installed
/// one, see `state::runtime::set_wall_clock`).
pub fn now_ms() -> u64 {
    state::runtime::wall_clock_ms()
}
