import { describe, expect, it } from '@jest/globals';
import { API_MAX_QUERY_PARAMETERS } from '#lumen/contracts';
import { ApiProblem, boundedQuery } from '#lumen/reporter';

const params = (n: number): Record<string, string> =>
  Object.fromEntries(Array.from({ length: n }, (_, i) => [`p${i}`, 'x']));

describe('boundedQuery', () => {
  it.each([
    ['nothing', undefined, {}],
    ['plain values', { namespace: 'tenant-a', limit: '3' }, { namespace: 'tenant-a', limit: '3' }],
    [
      `${API_MAX_QUERY_PARAMETERS} parameters`,
      params(API_MAX_QUERY_PARAMETERS),
      params(API_MAX_QUERY_PARAMETERS),
    ],
  ])('accepts %s', (_case, query, expected) => {
    expect(boundedQuery(query)).toEqual(expected);
  });

  it.each([
    [
      'too many parameters',
      params(API_MAX_QUERY_PARAMETERS + 1),
      /query: 11 parameters; at most 10/,
    ],
    ['a repeated parameter', { namespace: ['a', 'b'] }, /namespace: given 2 times; give it once/],
    ['a structure', { namespace: { x: 'a' } }, /namespace: must be a plain value/],
    ['something else', 'namespace=a', /query: must be name=value parameters/],
  ])('refuses %s with 400 and says what is wrong', (_case, query, message) => {
    let problem: unknown;
    try {
      boundedQuery(query);
    } catch (error) {
      problem = error;
    }
    expect(problem).toBeInstanceOf(ApiProblem);
    expect((problem as ApiProblem).status).toBe(400);
    expect((problem as ApiProblem).message).toMatch(message);
  });
});
