//! The process's allocator setting, in a process of its own (glibc's thresholds are process-wide):
//! after [`s3_trace_relay::lambda::fix_malloc_thresholds`], freeing a large buffer (an invocation's
//! 6 MB body, a connection's read buffer) no longer moves glibc's mmap threshold up to its size, so
//! the next large buffer again gets a mapping of its own, returned whole when freed, instead of heap
//! that stays with the process.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn a_freed_large_buffer_leaves_the_next_large_buffer_its_own_mapping() {
    s3_trace_relay::lambda::fix_malloc_thresholds();
    let body = std::hint::black_box(vec![7u8; 8 << 20]);
    drop(body);
    let before = mapped_bytes();
    let buffer = std::hint::black_box(vec![7u8; 1 << 20]);
    let after = mapped_bytes();
    drop(buffer);
    assert!(
        after >= before + (1 << 20),
        "a 1 MiB buffer after an 8 MiB one was freed came from the heap: {before} -> {after} bytes mapped"
    );
}

/// Bytes glibc holds in blocks mapped one each (`mallinfo2().hblkhd`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn mapped_bytes() -> usize {
    // SAFETY: mallinfo2 only reads the allocator's counters.
    unsafe { libc::mallinfo2() }.hblkhd
}
