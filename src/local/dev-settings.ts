import { Type } from 'typebox';
import { EmulatorPorts } from './ports.ts';

// The settings of `make dev` (dev.ts), apart so that tests and the README's
// tour test read the same defaults.

const Port = (defaultValue: number, description: string) =>
  Type.Integer({ minimum: 1, maximum: 65535, default: defaultValue, description });

export const DevSettings = Type.Object({
  // Loopback unless told otherwise: a laptop's dev stack is nobody else's business.
  HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  PORT: Port(3000, 'The API'),
  ...EmulatorPorts.properties,
  // Fixed, like the API's, so that the README's commands name them.
  RELAY_METRICS_PORT: Port(9464, "The relay's /health and /metrics"),
  CONSUMER_METRICS_PORT: Port(9465, "The consumer's /health and /metrics"),
  LIFECYCLE_METRICS_PORT: Port(9466, "The content sweeper's /health and /metrics"),
});

/**
 * The service's DOCUMENT_REDIRECT_MIN_BYTES under make dev unless set: on
 * (off by default in a deployment), so that the README's tour shows a large
 * read leaving through a link.
 */
export const DEV_REDIRECT_MIN_BYTES = 1_048_576;
