#![no_main]

static DEFAULT_HOOK: std::sync::Once = std::sync::Once::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // `Parsed::new` catches mail-parser's own panics, which libfuzzer-sys's hook would turn into
    // an abort before the catch. With the default hook back, a panic that escapes the target
    // still aborts: libfuzzer-sys runs every input inside catch_unwind and aborts on a panic.
    DEFAULT_HOOK.call_once(|| drop(std::panic::take_hook()));
    tern_fuzz::mime(data)
});
