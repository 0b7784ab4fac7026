import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

// CPU accounting from /proc: utime + stime of the processes of a run and
// the busy time of the whole machine, read around each measured window.

export const clockTicks = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process (all its threads), in ms. */
export function cpuMs(pid: number | 'self'): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)": state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks;
  } catch {
    return Number.NaN;
  }
}

/** Busy and total time of the whole machine, in ms (first line of /proc/stat). */
function machineMs(): { busy: number; total: number } {
  const [, ...values] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = values.map(Number) as number[];
  const busy = user! + nice! + system! + irq! + softirq! + (steal ?? 0);
  return { busy: (busy * 1000) / clockTicks, total: ((busy + idle! + iowait!) * 1000) / clockTicks };
}

type CpuSnapshot = { at: number; server: number; bench: number; redis: number; load: number; machine: { busy: number; total: number } };

/** `server` is the process under test: the API, or the ceiling server for the ceiling rows. */
export type Pids = { server: number; redis: number | undefined; load: number };

export function snapshot(pids: Pids): CpuSnapshot {
  return {
    at: performance.now(),
    server: cpuMs(pids.server),
    bench: cpuMs('self'),
    redis: pids.redis ? cpuMs(pids.redis) : 0,
    load: cpuMs(pids.load),
    machine: machineMs(),
  };
}

export type CpuFigures = {
  /** CPU of the process under test (the API; the ceiling server in ceiling rows) per 2xx answer, ms. */
  serverMsPerOk: number | null;
  /** The same in µs with two decimals: serverMsPerOk's three digits are 2 % of a cached GET's 0.05 ms, too coarse for an A/B. */
  serverUsPerOk: number | null;
  /** Its average busy cores during the window. */
  serverCores: number;
  /** Emulators (this process) and redis-server, per 2xx answer, ms, and their busy cores. */
  stackMsPerOk: number | null;
  stackCores: number;
  loadGeneratorCores: number;
  machineBusyCores: number;
  /** Busy cores not accounted for by the API, the stack and the load generator: other work on the machine. */
  otherBusyCores: number;
};

/** CPU ms spent between two snapshots; slices of one interleaved scenario add up. */
export type CpuDelta = { wallMs: number; server: number; stack: number; load: number; machineBusy: number; machineTotal: number };

export function cpuDelta(before: CpuSnapshot, after: CpuSnapshot): CpuDelta {
  return {
    wallMs: after.at - before.at,
    server: after.server - before.server,
    stack: after.bench - before.bench + (after.redis - before.redis),
    load: after.load - before.load,
    machineBusy: after.machine.busy - before.machine.busy,
    machineTotal: after.machine.total - before.machine.total,
  };
}

export function addCpu(a: CpuDelta | undefined, b: CpuDelta): CpuDelta {
  if (!a) return b;
  return {
    wallMs: a.wallMs + b.wallMs,
    server: a.server + b.server,
    stack: a.stack + b.stack,
    load: a.load + b.load,
    machineBusy: a.machineBusy + b.machineBusy,
    machineTotal: a.machineTotal + b.machineTotal,
  };
}

export function cpuFigures(delta: CpuDelta, ok: number): CpuFigures {
  const { wallMs, server, stack: stackMs, load } = delta;
  const machineBusy = (delta.machineBusy / delta.machineTotal) * cpus().length;
  const r = (value: number, digits = 3) => Math.round(value * 10 ** digits) / 10 ** digits;
  return {
    serverMsPerOk: ok > 0 ? r(server / ok) : null,
    serverUsPerOk: ok > 0 ? r((server / ok) * 1000, 2) : null,
    serverCores: r(server / wallMs, 2),
    stackMsPerOk: ok > 0 ? r(stackMs / ok) : null,
    stackCores: r(stackMs / wallMs, 2),
    loadGeneratorCores: r(load / wallMs, 2),
    machineBusyCores: r(machineBusy, 2),
    otherBusyCores: r(Math.max(0, machineBusy - (server + stackMs + load) / wallMs), 2),
  };
}
