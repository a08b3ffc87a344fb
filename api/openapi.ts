import { OpenAPIRegistry, OpenApiGeneratorV3, extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import type { Request, Response, Router } from 'express';
import { z, type AnyZodObject, type ZodTypeAny } from 'zod';
import type { Role } from '../core/api-keys';
import { assertRole, principalOf, readerRoles, type Principal } from './auth';
import { badRequest } from '../core/http/problem';

/**
 * Request validation and the OpenAPI document from the same zod schemas: `route()` registers a route
 * with Express and with `registry`, and validates params, query and body with exactly the schemas it
 * documents, so the document at `/docs/openapi.json` cannot drift from what the API accepts.
 */
extendZodWithOpenApi(z);

export const registry = new OpenAPIRegistry();

/** RFC 9457 problem details (api/problem.ts): the body of every error. */
const ProblemSchema = registry.register(
  'Problem',
  z
    .object({
      type: z.string(),
      title: z.string(),
      status: z.number().int(),
      detail: z.string().optional(),
      errors: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
    })
    .openapi({ description: 'RFC 9457 problem details (application/problem+json)' }),
);

registry.registerComponent('securitySchemes', 'bearerAuth', {
  type: 'http',
  scheme: 'bearer',
  description:
    "API key `vgl_<key_id>_<secret>` (role reader or admin for tenant reads; admin for its tenant's exports and cache; operator, bound to no tenant, for rebuilds and every all-tenant action)",
});
registry.registerComponent('securitySchemes', 'apiKeyHeader', { type: 'apiKey', in: 'header', name: 'X-API-Key' });

type Method = 'get' | 'post' | 'put' | 'delete';

interface ResponseSpec {
  description: string;
  schema?: ZodTypeAny;
  /** Default application/json. */
  contentType?: string;
}

interface RouteSpec<P extends AnyZodObject, Q extends AnyZodObject, B extends ZodTypeAny> {
  method: Method;
  /** Express style, e.g. '/v1/sessions/:id'. */
  path: string;
  summary: string;
  /** Longer text shown before the roles in the document. */
  description?: string;
  tags: string[];
  /** Roles allowed (default: reader and admin). Every route() route needs `authenticate` before it. */
  roles?: Role[];
  params?: P;
  query?: Q;
  body?: B;
  responses: Record<number, ResponseSpec>;
}

interface RouteInput<P extends AnyZodObject, Q extends AnyZodObject, B extends ZodTypeAny> {
  params: z.infer<P>;
  query: z.infer<Q>;
  body: z.infer<B>;
  principal: Principal;
}

type RouteHandler<P extends AnyZodObject, Q extends AnyZodObject, B extends ZodTypeAny> = (
  input: RouteInput<P, Q, B>,
  req: Request,
  res: Response,
) => unknown;

/** '/v1/sessions/:id' → '/v1/sessions/{id}'. */
export const openApiPath = (expressPath: string): string => expressPath.replace(/:(\w+)/g, '{$1}');

const registered = new Set<string>();
const problemResponse = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: ProblemSchema } },
});

function register(spec: RouteSpec<AnyZodObject, AnyZodObject, ZodTypeAny>): void {
  const id = `${spec.method} ${spec.path}`;
  if (registered.has(id)) return; // one document per process, however many apps are created
  registered.add(id);
  const responses = Object.fromEntries(
    Object.entries(spec.responses).map(([status, r]) => [
      status,
      {
        description: r.description,
        ...(r.schema || r.contentType
          ? { content: { [r.contentType ?? 'application/json']: { schema: r.schema ?? z.string() } } }
          : {}),
      },
    ]),
  );
  registry.registerPath({
    method: spec.method,
    path: openApiPath(spec.path),
    summary: spec.summary,
    tags: spec.tags,
    description: `${spec.description ? `${spec.description}\n\n` : ''}Roles: ${(spec.roles ?? readerRoles).join(', ')}.`,
    security: [{ bearerAuth: [] }, { apiKeyHeader: [] }],
    request: {
      ...(spec.params ? { params: spec.params } : {}),
      ...(spec.query ? { query: spec.query } : {}),
      ...(spec.body ? { body: { content: { 'application/json': { schema: spec.body } } } } : {}),
    },
    responses: {
      400: problemResponse('invalid request: each bad field named in `errors`'),
      401: problemResponse('missing, unknown or revoked API key'),
      403: problemResponse("the key's role may not do this"),
      429: problemResponse(
        'over the per-key or per-client-address rate limit (or the open-stream cap); see Retry-After',
      ),
      ...responses,
    },
  });
}

function validate<T extends ZodTypeAny>(schema: T | undefined, value: unknown, where: 'params' | 'query' | 'body') {
  if (!schema) return { ok: true as const, value: where === 'body' ? undefined : {} };
  const parsed = schema.safeParse(value);
  if (parsed.success) return { ok: true as const, value: parsed.data as z.infer<T> };
  return {
    ok: false as const,
    errors: parsed.error.issues.map((i) => ({
      field: i.path.length ? i.path.join('.') : where === 'body' ? '(body)' : where,
      message: i.message,
    })),
  };
}

/**
 * Registers `handler` for `spec.method spec.path` on `router` and in the OpenAPI document. Before the
 * handler: the caller's role must be in `spec.roles` (403), and params, query and body must pass their
 * schemas (400 naming every bad field, all locations at once). The handler gets the parsed values.
 * A rejected promise reaches the problem handler (Express 5).
 */
export function route<
  P extends AnyZodObject = AnyZodObject,
  Q extends AnyZodObject = AnyZodObject,
  B extends ZodTypeAny = ZodTypeAny,
>(router: Router, spec: RouteSpec<P, Q, B>, handler: RouteHandler<P, Q, B>): void {
  register(spec as unknown as RouteSpec<AnyZodObject, AnyZodObject, ZodTypeAny>);
  const roles = spec.roles ?? readerRoles;
  router[spec.method](spec.path, async (req, res) => {
    const principal = principalOf(res);
    assertRole(principal, roles);
    const params = validate(spec.params, req.params, 'params');
    const query = validate(spec.query, req.query, 'query');
    const body = validate(spec.body, req.body, 'body');
    const errors = [params, query, body].flatMap((r) => (r.ok ? [] : r.errors));
    if (errors.length || !params.ok || !query.ok || !body.ok) throw badRequest(errors);
    const input = { params: params.value, query: query.value, body: body.value, principal } as RouteInput<P, Q, B>;
    await handler(input, req, res);
  });
}

let cached: { size: number; doc: unknown } | undefined;

/** The OpenAPI 3.0 document of every route registered so far (regenerated when routes were added). */
export function openApiDocument(): unknown {
  if (!cached || cached.size !== registry.definitions.length) {
    const doc = new OpenApiGeneratorV3(registry.definitions).generateDocument({
      openapi: '3.0.3',
      info: {
        title: 'Vigil API',
        version: '1',
        description:
          'Fatigue monitoring read models. Every /v1 route needs an API key; every query is filtered by the key’s tenant. Errors are application/problem+json.',
      },
    });
    cached = { size: registry.definitions.length, doc };
  }
  return cached.doc;
}
