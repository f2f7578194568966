//! The line the filter's panic hook writes (at Critical) before `panic = "abort"` ends the VM:
//! without it a panic would only show as Envoy's generic wasm failure, with no location.

use std::panic::PanicHookInfo;

/// `semantic-cache panic: panicked at <file>:<line>:<col>: <message>`, on one line. The message is cut at 512
/// bytes: a panic's payload may quote input, and one log line must stay bounded.
pub fn panic_line(info: &PanicHookInfo) -> String {
    // One log line: the std format puts the message on a line of its own.
    let mut line = format!("semantic-cache panic: {info}").replace('\n', " ");
    if line.len() > 512 {
        let mut cut = 512;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push_str("...");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Installs a hook that records `panic_line` (as the filter's hook does, minus the host call),
    /// panics on purpose in a caught unwind, and restores the previous hook.
    fn line_of(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
        // The hook is process-wide: one test at a time swaps it.
        static HOOK: Mutex<()> = Mutex::new(());
        let _guard = HOOK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Ok(mut v) = s.lock() {
                v.push(panic_line(info));
            }
        }));
        let r = std::panic::catch_unwind(f);
        std::panic::set_hook(prev);
        assert!(r.is_err());
        let v = seen.lock().map(|v| v.clone()).unwrap_or_default();
        v.into_iter().find(|l| l.contains("deliberate")).unwrap_or_default()
    }

    #[test]
    #[allow(clippy::panic)]
    fn hook_line_has_prefix_location_and_message() {
        let line = line_of(|| panic!("deliberate test panic {}", 42));
        assert!(line.starts_with("semantic-cache panic: panicked at src/core/panic_log.rs:"), "{line}");
        assert!(line.ends_with(": deliberate test panic 42") && !line.contains('\n'), "{line}");
    }

    #[test]
    #[allow(clippy::panic)]
    fn hook_line_is_bounded() {
        let line = line_of(|| panic!("deliberate {}", "é".repeat(2000)));
        assert!(line.len() <= 515 && line.ends_with("..."), "{}", line.len());
    }
}
