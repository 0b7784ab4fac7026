import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { Config } from '../config.ts';

/**
 * The current value of a Secrets Manager secret, read once (at start): the
 * process's own AWS identity is the only way to it, so the value sits in no
 * environment variable, command line or Kubernetes object. The call has the
 * same deadlines and attempts as every other AWS call; the client is closed
 * after it.
 */
export async function readSecretString(config: Config, secretId: string): Promise<string> {
  const endpoint = config.AWS_ENDPOINT_URL_SECRETS_MANAGER ?? config.AWS_ENDPOINT_URL;
  const client = new SecretsManagerClient({
    region: config.AWS_REGION,
    maxAttempts: config.AWS_MAX_ATTEMPTS,
    ...(endpoint ? { endpoint } : {}),
    requestHandler: new NodeHttpHandler({
      connectionTimeout: config.AWS_CONNECT_TIMEOUT_MS,
      requestTimeout: config.AWS_REQUEST_TIMEOUT_MS,
      throwOnRequestTimeout: true,
    }),
  });
  try {
    const { SecretString } = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
    if (!SecretString) throw new Error(`secret ${secretId} has no string value`);
    return SecretString;
  } finally {
    client.destroy();
  }
}

/** The Redis AUTH token, from REDIS_AUTH_SECRET_ID at start; none when unset (REDIS_URL then says it all). */
export async function readRedisPassword(config: Config): Promise<string | undefined> {
  return config.REDIS_AUTH_SECRET_ID ? readSecretString(config, config.REDIS_AUTH_SECRET_ID) : undefined;
}
