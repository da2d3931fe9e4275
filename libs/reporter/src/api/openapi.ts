import { createDocument, type ZodOpenApiPathsObject } from 'zod-openapi';
import { API_ROUTES, apiProblem, type ApiRoute } from '#lumen/contracts';

const problem = (description: string) => ({
  description,
  content: { 'application/json': { schema: apiProblem } },
});

function operation(route: ApiRoute): ZodOpenApiPathsObject[string] {
  return {
    get: {
      summary: route.summary,
      ...(route.params || route.query
        ? {
            requestParams: {
              ...(route.params ? { path: route.params } : {}),
              ...(route.query ? { query: route.query } : {}),
            },
          }
        : {}),
      responses: {
        '200': {
          description: route.summary,
          content: { 'application/json': { schema: route.answer } },
        },
        '400': problem('A parameter is invalid; the message names it'),
        '401': problem('No valid bearer token'),
        ...(route.notFound
          ? { '404': problem('No such case, or the token’s scope does not see it') }
          : {}),
      },
    },
  };
}

/**
 * The API's OpenAPI 3.1 document, served at /api/v1/openapi.json, generated from the same
 * zod schemas that validate each route's parameters and type its answers.
 */
export function openApiDocument(): ReturnType<typeof createDocument> {
  return createDocument({
    openapi: '3.1.0',
    info: {
      title: 'Lumen reporter API',
      version: '1.0.0',
      description:
        'Outcomes of Lumen’s NetworkPolicy probes. Every endpoint but this document needs a bearer token; a token limited to namespaces sees only cases whose source or destination lies in them.',
    },
    security: [{ bearer: [] }],
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    paths: {
      '/api/v1/openapi.json': {
        get: {
          summary: 'This document',
          security: [],
          responses: { '200': { description: 'OpenAPI 3.1' } },
        },
      },
      ...Object.fromEntries(
        Object.values(API_ROUTES).map((route: ApiRoute) => [route.path, operation(route)]),
      ),
    },
  });
}
