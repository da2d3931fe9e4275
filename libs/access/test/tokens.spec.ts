import { describe, expect, it } from '@jest/globals';
import { ApiTokens } from '#lumen/access';

const file = `
tokens:
  - name: admin
    token: admin-token-0123456789abcdef
  - name: team-a
    token: team-a-token-0123456789abcdef
    namespaces: [tenant-a]
`;

describe('ApiTokens', () => {
  const tokens = ApiTokens.parse(file, 'tokens.yaml');

  it.each([
    ['Bearer admin-token-0123456789abcdef', 'admin', undefined],
    ['bearer team-a-token-0123456789abcdef', 'team-a', ['tenant-a']],
    ['Bearer team-a-token-0123456789abcdeX', undefined, undefined],
    ['Bearer team-a-token-0123456789abcde', undefined, undefined],
    ['team-a-token-0123456789abcdef', undefined, undefined],
    ['Basic dGVhbS1hOng=', undefined, undefined],
    ['', undefined, undefined],
  ])('%j → %s', (header, name, namespaces) => {
    const caller = tokens.callerOf(header);
    expect(caller?.name).toBe(name);
    expect(caller?.namespaces).toEqual(namespaces);
  });

  it.each([
    ['tokens: [{name: a, token: short}]', 'at least 24'],
    [
      'tokens: [{name: a, token: aaaaaaaaaaaaaaaaaaaaaaaaaa}, {name: a, token: bbbbbbbbbbbbbbbbbbbbbbbbbbbb}]',
      'unique',
    ],
    [
      'tokens: [{name: a, token: aaaaaaaaaaaaaaaaaaaaaaaaaa}, {name: b, token: aaaaaaaaaaaaaaaaaaaaaaaaaa}]',
      'share one token',
    ],
    [
      'tokens: [{name: a, token: aaaaaaaaaaaaaaaaaaaaaaaaaa, namespaces: []}]',
      'tokens.0.namespaces',
    ],
  ])('refuses %s', (text, problem) => {
    expect(() => ApiTokens.parse(text, 't.yaml')).toThrow(problem);
  });

  it('never puts a token in an error message', () => {
    const secret = 'very-secret-token-but-no-name-here';
    let message = '';
    try {
      ApiTokens.parse(`tokens: [{token: ${secret}}]`, 't.yaml');
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('tokens.0.name');
    expect(message).not.toContain(secret);
  });
});
