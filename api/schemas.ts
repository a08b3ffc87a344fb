import { z } from 'zod';
import './openapi'; // extendZodWithOpenApi before any .openapi() call

/**
 * zod pieces shared by the routes: they validate requests and describe them in the OpenAPI document.
 */

/** Session, driver and alert ids: letters, digits and `_.:-`, 1-128 characters; anything else never reaches SQL. */
export const Id = (what: string) =>
  z
    .string()
    .regex(
      /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/,
      'must be 1-128 letters, digits or _.:- and start with a letter or digit',
    )
    .openapi({ description: `${what} id`, example: 'a1b2c3' });

export const SessionIdParams = z.object({ id: Id('session') });

/** An ISO-8601 instant with a zone (`2026-03-01T08:00:00Z`), as a Date. */
export const Instant = (description: string) =>
  z
    .string()
    .datetime({ offset: true, message: 'must be an ISO-8601 time with a zone, e.g. 2026-03-01T08:00:00Z' })
    .transform((s) => new Date(s))
    .openapi({ description, example: '2026-03-01T08:00:00Z', type: 'string', format: 'date-time' });

export const Limit = (max: number, dflt: number) =>
  z.coerce
    .number({ invalid_type_error: 'must be a number' })
    .int('must be an integer')
    .min(1)
    .max(max)
    .default(dflt)
    .openapi({ description: `page size, 1-${max}`, example: dflt });

/**
 * An opaque page cursor: base64url of the JSON array of the last row's sort key. Decoded and checked
 * against `shape` (a malformed or foreign cursor is a 400 on `cursor`, never a SQL error).
 */
export function Cursor<T extends z.ZodTypeAny>(shape: T) {
  return z
    .string()
    .max(512)
    .regex(/^[A-Za-z0-9_-]+$/, 'is not a cursor this API issued')
    .transform((s, ctx): z.infer<T> => {
      let value: unknown;
      try {
        value = JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
      } catch {
        value = undefined;
      }
      const parsed = shape.safeParse(value);
      if (!parsed.success) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'is not a cursor this API issued' });
        return z.NEVER;
      }
      return parsed.data;
    })
    .openapi({ description: 'next_cursor of the previous page', type: 'string' });
}

export const encodeCursor = (key: unknown): string => Buffer.from(JSON.stringify(key), 'utf8').toString('base64url');

/** A keyset cursor of (time or null, id). */
export const TimeIdKey = z.tuple([z.string().datetime({ offset: true }).nullable(), z.string().min(1).max(128)]);

export const iso = (d: Date | null | undefined): string | null => (d ? d.toISOString() : null);
export const num = (v: string | number | null | undefined): number | null =>
  v === null || v === undefined ? null : Number(v);
