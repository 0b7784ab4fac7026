import { SnsEventPublisher } from '../outbox/sns-event-publisher.ts';
import { ORDER_ACCEPTED, type Order, type OrderAcceptedEvent } from './schemas.ts';

/**
 * The event of an accepted order, built only from the stored order: the API's
 * first attempt and every later republication by the relay send the same
 * bytes, with the same id, so consumers can deduplicate on it.
 */
export function orderAcceptedEvent(tenant: string, order: Order): OrderAcceptedEvent {
  return {
    specversion: '1.0',
    id: order.orderId,
    type: ORDER_ACCEPTED,
    source: '/orders',
    time: order.acceptedAt,
    datacontenttype: 'application/json',
    tenant,
    data: order,
  };
}

/** Order events, to the order-events topic. */
export class OrderEventPublisher extends SnsEventPublisher<OrderAcceptedEvent> {}
