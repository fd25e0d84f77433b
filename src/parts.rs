//! Work split into independent parts, one thread each, the results kept in the parts' order
//! (reading a large export, mapping a large directory).

/// How many threads to use: what the machine (or its CPU quota) offers, at most `cap`.
pub fn threads(cap: usize) -> usize {
    std::thread::available_parallelism().map_or(1, usize::from).clamp(1, cap.max(1))
}

/// `work` applied to each part, each on its own thread (a single part on the calling thread); the
/// results in the parts' order. A panic in a part is a bug: it is passed on as it would be on one
/// thread.
pub fn map_on_threads<T: Send, R: Send>(parts: Vec<T>, work: impl Fn(T) -> R + Sync) -> Vec<R> {
    if parts.len() <= 1 {
        return parts.into_iter().map(work).collect();
    }
    let work = &work;
    std::thread::scope(|scope| {
        let handles: Vec<_> = parts.into_iter().map(|p| scope.spawn(move || work(p))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    })
}

/// `items` cut into chunks of `chunk`, each made into an `R` by `render` on one of `threads`
/// long-lived threads (chunk i on thread i mod threads), and given to `write` on the calling
/// thread in the chunks' order. At most two rendered chunks per thread wait to be written, so
/// memory stays bounded however long the list. The first error of `write` stops the work.
pub fn render_in_order<T: Sync, R: Send, E>(
    items: &[T],
    chunk: usize,
    threads: usize,
    render: impl Fn(&[T]) -> R + Sync,
    mut write: impl FnMut(R) -> Result<(), E>,
) -> Result<(), E> {
    let chunks: Vec<&[T]> = items.chunks(chunk.max(1)).collect();
    let threads = threads.clamp(1, chunks.len().max(1));
    if threads == 1 {
        return chunks.into_iter().try_for_each(|c| write(render(c)));
    }
    let (chunks, render) = (&chunks, &render);
    std::thread::scope(|scope| {
        let receivers: Vec<_> = (0..threads)
            .map(|t| {
                let (tx, rx) = std::sync::mpsc::sync_channel(1);
                scope.spawn(move || {
                    for c in chunks.iter().skip(t).step_by(threads) {
                        if tx.send(render(c)).is_err() {
                            return; // the writer stopped
                        }
                    }
                });
                rx
            })
            .collect();
        for i in 0..chunks.len() {
            // A worker only ends early when its receiver is gone, and it is not.
            let rendered = receivers[i % threads].recv().expect("a render thread ended early");
            write(rendered)?;
        }
        Ok(())
    })
}

/// Gives the memory the calling thread's allocator heap holds free back to the system
/// (mimalloc's `mi_collect`). A thread that allocates next takes fresh pages rather than the
/// pages another thread just freed, so a phase that frees much on one thread before another
/// thread allocates much would otherwise hold both at once.
pub fn return_freed_memory() {
    // SAFETY: `mi_collect` takes no pointers and may be called from any thread at any time; when
    // mimalloc is not the global allocator (unit tests) its heap is empty and nothing happens.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// Leaves `value` to the process's exit instead of dropping it, for a command whose process ends
/// next: freeing a large directory piece by piece takes longer than the exit's release of the
/// whole memory at once.
pub fn leave_to_exit<T>(value: T) {
    std::mem::forget(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_parts_order() {
        let slow_first = |i: u64| {
            std::thread::sleep(std::time::Duration::from_millis(20 - 4 * i));
            i * 10
        };
        assert_eq!(map_on_threads(vec![0, 1, 2, 3, 4], slow_first), [0, 10, 20, 30, 40]);
        assert_eq!(map_on_threads(vec![7], |i: u64| i + 1), [8]);
        assert!(threads(3) >= 1 && threads(3) <= 3);
    }
}
