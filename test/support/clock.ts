/**
 * A clock for the app's `now` override that runs with real time (so waits on
 * the real stack still end) and that a test moves forward past a window
 * instead of sleeping through it.
 */
export function testClock() {
  let offsetMs = 0;
  return {
    now: () => Date.now() + offsetMs,
    advance(ms: number) {
      offsetMs += ms;
    },
  };
}
