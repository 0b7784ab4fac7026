import { Type, type Static } from 'typebox';
import { EventStatus } from '../outbox/outbox-store.ts';

// The order intake's shapes: the request validated by Fastify (AJV), the
// responses, and the event the relay publishes and the consumer checks.

export const CUSTOMER_ID_PATTERN = '^CUST-[0-9]{8}$';
export const SKU_PATTERN = '^[A-Z0-9][A-Z0-9-]{2,31}$';
/** What POST /orders hands out; GET answers 404 for anything else without asking the store. */
export const ORDER_ID_PATTERN = '^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$';

export const MAX_ORDER_LINES = 25;
export const MAX_ORDER_BODY_BYTES = 1024;

const CustomerId = Type.String({ pattern: CUSTOMER_ID_PATTERN, description: 'CUST- and 8 digits' });

export const OrderLine = Type.Object(
  {
    sku: Type.String({ pattern: SKU_PATTERN, description: '3-32 of A-Z 0-9 -, not starting with -' }),
    quantity: Type.Integer({ minimum: 1, maximum: 100 }),
  },
  { additionalProperties: false },
);
export type OrderLine = Static<typeof OrderLine>;

const OrderLines = Type.Array(OrderLine, { minItems: 1, maxItems: MAX_ORDER_LINES });

export const NewOrder = Type.Object(
  { customerId: CustomerId, items: OrderLines },
  {
    additionalProperties: false,
    description: `At most ${MAX_ORDER_BODY_BYTES} bytes of JSON. The same payload (RFC 8785 canonical JSON) within the dedup window is the same order.`,
  },
);
export type NewOrder = Static<typeof NewOrder>;

export const OrderId = Type.String({ pattern: ORDER_ID_PATTERN, description: 'UUIDv7' });

export const Order = Type.Object({
  orderId: OrderId,
  status: Type.Literal('ACCEPTED'),
  acceptedAt: Type.String({ format: 'date-time', maxLength: 32 }),
  customerId: CustomerId,
  items: OrderLines,
});
export type Order = Static<typeof Order>;

export const OrderView = Type.Object({
  ...Order.properties,
  event: Type.Object({ status: EventStatus }, { description: 'PENDING until order.accepted is on the topic' }),
});
export type OrderView = Static<typeof OrderView>;

// No pattern here: a malformed id is an order that does not exist (404), not a 400.
export const OrderParams = Type.Object({ orderId: Type.String({ description: 'The orderId POST /orders answered' }) });

export const ORDER_ACCEPTED = 'order.accepted';

/**
 * CloudEvents 1.0, structured JSON mode. `tenant` is an extension attribute.
 * Unknown attributes are tolerated (CloudEvents allows extensions); the data
 * must be a well-formed order.
 */
export const OrderAcceptedEvent = Type.Object({
  specversion: Type.Literal('1.0'),
  id: Type.String({ minLength: 1, maxLength: 128 }),
  type: Type.Literal(ORDER_ACCEPTED),
  source: Type.Literal('/orders'),
  time: Type.String({ format: 'date-time' }),
  datacontenttype: Type.Literal('application/json'),
  tenant: Type.String({ minLength: 1, maxLength: 128 }),
  data: Order,
});
export type OrderAcceptedEvent = Static<typeof OrderAcceptedEvent>;
