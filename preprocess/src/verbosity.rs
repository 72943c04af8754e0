//! `-v` / `-vv` / `-vvv` on every kreplay binary: the default log level they stand for.
//! `RUST_LOG`, when set, still wins (the binaries fall back to this only without it).

/// The `tracing` filter for `count` `-v` flags: warn, info, debug, then trace.
pub fn log_level(count: u8) -> &'static str {
    match count {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn levels() {
        assert_eq!(super::log_level(0), "warn");
        assert_eq!(super::log_level(2), "debug");
        assert_eq!(super::log_level(9), "trace");
    }
}
