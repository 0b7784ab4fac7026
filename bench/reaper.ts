// A watchdog child of bench/run.ts. run.ts tells it (over IPC) the pid of
// every process it starts, and 'clear' once it has stopped them itself. If
// run.ts dies without doing so (SIGKILL, a crash), the IPC channel closes
// and this kills exactly those pids: no API, ceiling server or redis-server
// outlives a benchmark run.

const pids = new Set<number>();

process.on('message', (message: { watch?: number; forget?: number; clear?: true }) => {
  if (message.watch) pids.add(message.watch);
  if (message.forget) pids.delete(message.forget);
  if (message.clear) pids.clear();
});

process.on('disconnect', () => {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  process.exit(0);
});

// Ctrl-C reaches the whole process group: let run.ts do the orderly stop,
// and act only if it dies without finishing it.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});

process.send?.({ ready: true });
