import { describe, expect, it } from 'vitest';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import pino from 'pino';
import type { AwsClients } from '../../src/adapters/aws.ts';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { runProcess, type Factories } from '../../src/processes/runtime.ts';

// The runtime with every dependency swapped: what it calls, in what order.

function fakes(events: string[]): Partial<Factories> & { server: () => FastifyInstance | undefined; lines: Record<string, unknown>[] } {
  let armed: FastifyInstance | undefined;
  const lines: Record<string, unknown>[] = [];
  const log: FastifyBaseLogger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return {
    lines,
    server: () => armed,
    v8Flags: () => void events.push('v8 flags'),
    config: () => (events.push('config'), loadConfig({ HOST: '127.0.0.1' })),
    tracing: (_config, serviceName) => (events.push(`tracing ${serviceName}`), { serviceName, shutdown: async () => void events.push('tracing flushed') }),
    logger: (_config, name) => (events.push('logger'), log.child({ process: name })),
    aws: () => (events.push('aws'), { destroy: () => void events.push('aws destroyed') }) as unknown as AwsClients,
    untilSignalled: (server) => void ((armed = server), events.push('signals armed')),
    exit: (code) => {
      throw new Error(`exit ${code}`);
    },
  };
}

describe('runProcess', () => {
  it('starts config, tracing, logger, then the server; on close stops the process, then its clients, then flushes the spans', async () => {
    const events: string[] = [];
    const make = fakes(events);
    await runProcess(
      {
        name: 'probe',
        serve: async ({ aws, onClose, log }) => {
          aws();
          onClose(() => events.push('closer'));
          return {
            server: Fastify({ loggerInstance: log }),
            listen: { port: 0 },
            start: () => void events.push('started'),
            stop: async () => void events.push('stopped'),
          };
        },
      },
      make,
    );
    expect(make.lines.find((line) => line.msg === 'probe started')).toMatchObject({ process: 'probe', tracing: 'docsvc-probe' });
    await make.server()!.close();
    expect(events).toEqual([
      'v8 flags',
      'config',
      'tracing docsvc-probe',
      'logger',
      'aws',
      'started',
      'signals armed',
      'stopped',
      'closer',
      'aws destroyed',
      'tracing flushed',
    ]);
  });

  it('runs a one-shot task and closes its clients and tracing even when it fails', async () => {
    const events: string[] = [];
    await expect(
      runProcess(
        {
          name: 'task',
          run: async ({ aws }) => {
            aws();
            events.push('ran');
            throw new Error('failed');
          },
        },
        fakes(events),
      ),
    ).rejects.toThrow('failed');
    expect(events.slice(-3)).toEqual(['ran', 'aws destroyed', 'tracing flushed']);
  });

  it('ends a bad configuration with EX_CONFIG, before tracing or a logger', async () => {
    const events: string[] = [];
    const make = fakes(events);
    const bad = () => {
      throw new ConfigError(['PORT: must be a port']);
    };
    await expect(runProcess({ name: 'bad', run: async () => {} }, { ...make, config: bad })).rejects.toThrow('exit 78');
    expect(events).toEqual(['v8 flags']);
  });
});
