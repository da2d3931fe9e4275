import { parse as parseYaml } from 'yaml';

/**
 * Parses a YAML file that holds secrets (API tokens, receivers' URLs and signing secrets).
 * The YAML parser's own messages quote the offending lines, so a syntax error says only
 * where it is and what kind it is: nothing of the file reaches an error or a log.
 */
export function parseSecretYaml(
  text: string,
): { ok: true; value: unknown } | { ok: false; reason: string } {
  try {
    return { ok: true, value: parseYaml(text) as unknown };
  } catch (error) {
    const { linePos, code } = error as { linePos?: { line: number; col: number }[]; code?: string };
    const where = linePos?.[0] ? ` at line ${linePos[0].line}, column ${linePos[0].col}` : '';
    return { ok: false, reason: `not YAML${where}${code ? ` (${code})` : ''}` };
  }
}
