import { describe, expect, it } from '@jest/globals';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv } from 'ajv';
import fc from 'fast-check';
import type { z } from 'zod';
import { API_ROUTES, type ApiRoute } from '#lumen/contracts';
import { openApiDocument } from '#lumen/reporter';

interface DocumentedParameter {
  readonly in: 'path' | 'query';
  readonly name: string;
  readonly required?: boolean;
  readonly schema: object;
}

const document = openApiDocument() as unknown as {
  paths: Record<string, { get: { parameters?: DocumentedParameter[] } }>;
};
const routes = Object.entries(API_ROUTES) as [string, ApiRoute][];

// Query strings are text: a documented integer accepts "10", as the validator coerces it.
const ajv = new Ajv({ coerceTypes: true, strict: false, validateFormats: false });

/** Values a client might send for any parameter: valid for some, invalid for others. */
const samples = [
  '',
  '0',
  '1',
  '100',
  '500',
  '501',
  '-3',
  '1.5',
  'abc',
  'pass',
  'passed',
  'inconclusive',
  'tenant-a',
  'Tenant-A',
  '-a',
  'a'.repeat(63),
  'a'.repeat(64),
  'tenant-a/web',
  'tenant-a/web.v2',
  'tenant-a/',
  '/web',
  'tenant-a/Web',
  '0123456789abcdef',
  '0123456789ABCDEF',
  '0123456789abcde',
  '2026-11-26T10:00:00Z',
  '2026-11-26T10:00:00.123+01:00',
  '2026-11-26',
  '2026-02-30T10:00:00Z',
  'yesterday',
  'x'.repeat(200),
  'x'.repeat(201),
];

function shapeOf(schema: z.ZodObject | undefined): Record<string, z.ZodType> {
  return schema?.shape ?? {};
}

describe('the OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document listing every route', async () => {
    const result = await new Validator().validate(
      openApiDocument() as unknown as Parameters<Validator['validate']>[0],
    );
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(Object.keys(document.paths).sort()).toEqual(
      ['/api/v1/openapi.json', ...routes.map(([, r]) => r.path)].sort(),
    );
  });

  it.each(routes)('documents exactly the parameters %s validates', (_name, route) => {
    const documented = document.paths[route.path]?.get.parameters ?? [];
    const expected = [
      ...Object.keys(shapeOf(route.params)).map((name) => ({ in: 'path', name, required: true })),
      ...Object.entries(shapeOf(route.query)).map(([name, schema]) => ({
        in: 'query',
        name,
        // A parameter with a default may be left out, like an optional one.
        required: !schema.safeParse(undefined).success,
      })),
    ];
    expect(
      documented.map((p) => ({ in: p.in, name: p.name, required: p.required ?? false })),
    ).toEqual(expected);
  });

  const parameters = routes.flatMap(([name, route]) =>
    (document.paths[route.path]?.get.parameters ?? []).map(
      (p) =>
        [
          `${name} ${p.in} ${p.name}`,
          p,
          shapeOf(p.in === 'path' ? route.params : route.query)[p.name]!,
        ] as const,
    ),
  );

  it.each(parameters)(
    'accepts and refuses the same values for %s as the validator does',
    (_label, parameter, validator) => {
      // Coercion works on a value inside an object, as a query parameter is.
      const documented = ajv.compile({
        type: 'object',
        properties: { value: parameter.schema },
        required: ['value'],
      });
      const agree = (value: string): void => {
        expect([value, documented({ value })]).toEqual([value, validator.safeParse(value).success]);
      };
      for (const value of samples) agree(value);
      fc.assert(
        fc.property(fc.oneof(fc.string(), fc.stringMatching(/^[a-z0-9./:+-]{0,70}$/)), (value) => {
          agree(value);
        }),
        { seed: 11, numRuns: 300 },
      );
    },
  );
});
