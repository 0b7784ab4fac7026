/**
 * The run loop of the relay and the consumer: repeat a step until stopped,
 * pause between steps as the step asks, back off on failures, and let stop()
 * cut a pause (or, through `onStop`, a long poll) short while the step in
 * progress finishes.
 */
export class BackgroundLoop {
  private running: Promise<void> | undefined;
  private stopping = false;
  private wake: (() => void) | undefined;
  private failures = 0;
  private readonly step: () => Promise<number>;
  private readonly options: { backoffMs(failures: number): number; onError(err: unknown): void; onStop?(): void };

  /**
   * @param step one unit of work; resolves to how long to pause before the next (0: at once)
   */
  constructor(
    step: () => Promise<number>,
    options: { backoffMs(failures: number): number; onError(err: unknown): void; onStop?(): void },
  ) {
    this.step = step;
    this.options = options;
  }

  /**
   * A loop of long polls (the consumers'): the poll is the pause, failures
   * back off from 250 ms up to 10 s, and stop() cuts the poll in progress
   * short through `abort`.
   */
  static ofLongPolls(poll: () => Promise<unknown>, options: { abort(): void; onError(err: unknown): void }): BackgroundLoop {
    return new BackgroundLoop(
      async () => {
        await poll();
        return 0;
      },
      { backoffMs: (failures) => Math.min(250 * 2 ** failures, 10_000), onError: options.onError, onStop: options.abort },
    );
  }

  get stopped(): boolean {
    return this.stopping;
  }

  start(): void {
    if (this.running) return;
    this.stopping = false;
    this.running = this.run();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.options.onStop?.();
    this.wake?.();
    await this.running;
    this.running = undefined;
  }

  /** Running, and not failing again and again (a dependency down). */
  get healthy(): boolean {
    return this.running !== undefined && !this.stopping && this.failures < 3;
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      let pauseMs: number;
      try {
        pauseMs = await this.step();
        this.failures = 0;
      } catch (err) {
        if (this.stopping) break;
        this.failures += 1;
        this.options.onError(err);
        pauseMs = this.options.backoffMs(this.failures);
      }
      if (pauseMs > 0) await this.pause(pauseMs);
    }
  }

  private pause(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }
}

/**
 * What runs on a BackgroundLoop (the relay, the consumers, the sweeper):
 * start() runs it, stop() finishes the step in hand (and cuts a pause or a
 * long poll short), healthy while its steps succeed.
 */
export abstract class OnBackgroundLoop {
  protected abstract readonly loop: BackgroundLoop;

  start(): void {
    this.loop.start();
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  get healthy(): boolean {
    return this.loop.healthy;
  }
}
