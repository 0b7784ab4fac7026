/**
 * A clock for the app's `now` override that runs with real time (so waits on
 * the real stack still end) and that a test moves forward past a window
 * instead of sleeping through it.
 */
export function testClock() {
  let offsetMs = 0;
  let heldAt: number | undefined;
  return {
    now: () => (heldAt ?? Date.now()) + offsetMs,
    advance(ms: number) {
      offsetMs += ms;
    },
    /** From now on the clock moves only when the test moves it: for requests that must fall in one short window, however slow the machine. */
    hold() {
      heldAt = Date.now();
    },
  };
}
