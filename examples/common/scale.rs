//! `--scale N`: the tutorial examples divide every delay by N (default 1),
//! so they run in milliseconds as well as in seconds.

/// The value of `--scale N` (or `--scale=N`): every delay is divided by it.
pub fn scale() -> u32 {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = args
        .iter()
        .enumerate()
        .find_map(|(i, a)| match a.strip_prefix("--scale") {
            Some("") => args.get(i + 1).cloned(),
            Some(v) => v.strip_prefix('=').map(str::to_owned),
            None => None,
        });
    match value {
        None => 1,
        Some(v) => match v.parse() {
            Ok(n) if n > 0 => n,
            _ => {
                eprintln!("--scale takes a positive integer, not {v:?}");
                std::process::exit(2)
            }
        },
    }
}
