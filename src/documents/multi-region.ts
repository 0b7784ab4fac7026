import { Counter, type Registry } from 'prom-client';
import { v7 as uuidv7 } from 'uuid';
import type { Config } from '../config.ts';
import type { RegionalClients, Regions } from '../adapters/regions.ts';
import { ContentStore } from './content-store.ts';
import { SnsDeletionAnnouncer } from './deletion-events.ts';
import type { DocumentServiceOptions } from './document-service.ts';
import type { DocumentCacheOptions } from './document-cache.ts';
import { HomedDocumentStore } from './homed-document-store.ts';
import { ReplicatedContentStore } from './replicated-content.ts';
import { StaleReads } from './stale-reads.ts';
import { contentStoreOptions, documentStore } from './stores.ts';

/**
 * The document path of one region of several (docs/design.md, "Multi-region
 * documents"): creates and deletes at each id's home region, reads on the
 * local replica, content that has not replicated yet read from the bucket
 * that has it, deletes announced to the other regions, and the reads a late
 * announcement made stale counted.
 */
export function multiRegionDocuments(
  config: Config,
  regions: Regions,
  clients: RegionalClients,
  registry: Registry,
): Pick<DocumentServiceOptions, 'store' | 'content' | 'regions'> & Pick<DocumentCacheOptions, 'onRemoteDelete'> {
  const stores = new Map(regions.names.map((region) => [region, documentStore(regions.configOf(region), clients.of(region))]));
  const buckets = (region: string) => contentStoreOptions(regions.configOf(region), clients.of(region));

  const remoteReads = new Counter({
    name: 'document_content_remote_reads_total',
    help: "Document content read from another region's bucket because it had not replicated here yet",
    registers: [registry],
  });
  const staleReads = new StaleReads(
    new Counter({
      name: 'document_stale_reads_total',
      help: 'Reads this instance served of a document after its delete in another region (origin), counted when this region learns of it',
      labelNames: ['origin'],
      registers: [registry],
    }),
  );
  const others = regions.names.filter((region) => region !== regions.local);
  return {
    store: new HomedDocumentStore(regions, stores),
    content: new ReplicatedContentStore(
      buckets(regions.local),
      others.map((region) => new ContentStore(buckets(region))),
      () => remoteReads.inc(),
    ),
    regions: {
      newId(tenant) {
        // A new id is homed here, so that a POST never leaves the region (N tries on average, for N regions).
        for (;;) {
          const id = uuidv7();
          if (regions.homeOf(`${tenant}#${id}`) === regions.local) return id;
        }
      },
      deletions: new SnsDeletionAnnouncer({ sns: clients.of(regions.local).sns, topicArn: config.DOCUMENT_EVENTS_TOPIC_ARN, region: regions.local }),
      staleReads,
    },
    onRemoteDelete: (tenant, id, remote) => staleReads.deleted(tenant, id, remote.deletedAtMs, remote.origin),
  };
}
