import type { QueueSpec } from '../core/jobs';

/**
 * pg-boss queues of admin requests. Their handlers (the projection rebuild and the topic export) run
 * in `vigil jobs`; the API only enqueues and reads status. One attempt each: a rebuild or an export
 * that failed is looked at and requested again, not retried blindly.
 */
export const ADMIN_QUEUES = {
  rebuild: { name: 'projection-rebuild', retryLimit: 0, retryDelay: 30, retryBackoff: false, expireInSeconds: 3600 },
  export: { name: 'replay-export', retryLimit: 0, retryDelay: 30, retryBackoff: false, expireInSeconds: 3600 },
} as const satisfies Record<string, QueueSpec>;
