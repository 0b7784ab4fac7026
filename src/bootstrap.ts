import { createAwsClients } from './adapters/aws.ts';
import { ensureResources } from './bootstrap/resources.ts';
import { loadConfig } from './config.ts';

// One-shot: creates every table, bucket, topic and queue (docker compose runs
// it before the service; on AWS, terraform owns them instead).
const config = loadConfig();
const aws = createAwsClients(config);
try {
  await ensureResources(config, aws, (message) => console.log(message));
  console.log('resources ready');
} finally {
  aws.destroy();
}
