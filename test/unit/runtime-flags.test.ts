import { describe, expect, it } from 'vitest';
import { STREAMING_V8_FLAGS, streamingV8FlagsFor } from '../../src/processes/v8-flags.ts';

describe('the V8 flags set at run time', () => {
  it('are all set when the command line names none of them', () => {
    expect(streamingV8FlagsFor(['--max-semi-space-size=4', '--enable-source-maps'])).toEqual([...STREAMING_V8_FLAGS]);
  });

  it('leave out one the command line gives, with or without a value', () => {
    expect(streamingV8FlagsFor(['--heap-growing-percent=0'])).toEqual(['--scavenger-max-new-space-capacity-mb=4']);
    expect(streamingV8FlagsFor(['--scavenger-max-new-space-capacity-mb=32', '--heap-growing-percent'])).toEqual([]);
  });

  it('do not take a flag for another whose name it begins', () => {
    expect(streamingV8FlagsFor(['--heap-growing-percent-extra=1'])).toEqual([...STREAMING_V8_FLAGS]);
  });
});
