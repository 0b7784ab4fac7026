import type { AwsClients } from '../adapters/aws.ts';
import { PartBuffers } from '../adapters/s3-multipart.ts';
import type { Config } from '../config.ts';
import { ContentStore, type ContentStoreOptions } from './content-store.ts';
import { DocumentStore } from './document-store.ts';
import { contentKeys } from './encryption.ts';

/** The metadata table of the configured region (the relay needs no more of documents: its outbox). */
export function documentStore(config: Config, aws: AwsClients): DocumentStore {
  return new DocumentStore({ dynamo: aws.dynamo, table: config.DOCUMENTS_TABLE, tombstoneSeconds: config.DOCUMENT_TOMBSTONE_SECONDS, region: config.AWS_REGION });
}

/** The metadata table and the content bucket, as the API and the content sweeper both use them. */
export function documentStores(config: Config, aws: AwsClients): { store: DocumentStore; content: ContentStore } {
  return { store: documentStore(config, aws), content: new ContentStore(contentStoreOptions(config, aws)) };
}

/**
 * One bucket's content store, as configured. Its part buffers keep, between
 * uploads, as many as the uploads can hold at once: memory the pod's limit
 * already provides for (config.ts), and no buffer then needs a collection.
 */
export function contentStoreOptions(config: Config, aws: AwsClients): ContentStoreOptions {
  return {
    s3: aws.s3,
    s3Transfer: aws.s3Transfer,
    bucket: config.DOCUMENTS_BUCKET,
    partBuffers: new PartBuffers(config.S3_PART_SIZE_BYTES, { maxUploads: config.MAX_CONCURRENT_UPLOADS, spares: config.S3_SPARE_PART_BUFFERS }),
    partsInFlight: config.S3_PARTS_IN_FLIGHT,
    encryption: contentKeys(config).forObject,
  };
}
