import type { TestProject } from 'vitest/node';
import { startLocalStack } from '../../src/local/emulators.ts';
import { ensureResources } from '../../src/bootstrap/resources.ts';
import { createAwsClients } from '../../src/adapters/aws.ts';
import { loadConfig } from '../../src/config.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    stackEnv: Record<string, string>;
  }
}

export default async function setup(project: TestProject) {
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local', AWS_EC2_METADATA_DISABLED: 'true' });
  const stack = await startLocalStack();
  const config = loadConfig(stack.env);
  const aws = createAwsClients(config);
  await ensureResources(config, aws);
  aws.destroy();
  project.provide('stackEnv', stack.env);
  return async () => {
    await stack.stop();
  };
}
