import type { AwsClients } from '../adapters/aws.ts';
import type { Config } from '../config.ts';
import { ContentStore } from './content-store.ts';
import { DocumentStore } from './document-store.ts';

/** The metadata table and the content bucket, as the API and the lifecycle worker both use them. */
export function documentStores(config: Config, aws: AwsClients): { store: DocumentStore; content: ContentStore } {
  return {
    store: new DocumentStore({ dynamo: aws.dynamo, table: config.DOCUMENTS_TABLE, tombstoneSeconds: config.DOCUMENT_TOMBSTONE_SECONDS }),
    content: new ContentStore({
      s3: aws.s3,
      s3Transfer: aws.s3Transfer,
      bucket: config.DOCUMENTS_BUCKET,
      partSize: config.S3_PART_SIZE_BYTES,
      partsInFlight: config.S3_PARTS_IN_FLIGHT,
    }),
  };
}
