import { Type } from 'typebox';

// The ports of the local stack, read from the environment by `make dev`
// (dev.ts) and by the emulators container (stack.ts) alike.
const Port = (defaultValue: number, description: string) =>
  Type.Integer({ minimum: 1, maximum: 65535, default: defaultValue, description });

export const EmulatorPorts = Type.Object({
  AWS_EMULATOR_PORT: Port(4566, 'SNS, SQS and S3 emulator (fauxqs)'),
  DYNAMODB_EMULATOR_PORT: Port(8000, 'DynamoDB emulator (dynalite)'),
  REDIS_PORT: Port(6379, 'redis-server'),
});
