import { describe, expect, it } from '@jest/globals';
import { CommandError, run, runChecked } from '#lumen/host';

describe('run', () => {
  it('passes arguments verbatim, never through a shell', async () => {
    const result = await run('printf', ['%s|', '$(id)', 'a b', ';rm -rf /']);
    expect(result.stdout).toBe('$(id)|a b|;rm -rf /|');
    expect(result.code).toBe(0);
  });

  it('feeds standard input', async () => {
    expect((await run('cat', [], { input: 'hello' })).stdout).toBe('hello');
  });

  it('reports failure with what the program said', async () => {
    await expect(runChecked('ls', ['/no/such/dir'])).rejects.toThrow(
      /ls \/no\/such\/dir: exited with 2: .*No such file/,
    );
  });

  it('reports a program that does not exist', async () => {
    await expect(run('/no/such/program', [])).rejects.toBeInstanceOf(CommandError);
  });

  it('kills a program that runs too long', async () => {
    const result = await run('sleep', ['5'], { timeoutMs: 100 });
    expect(result.timedOut).toBe(true);
    expect(result.signal).toBe('SIGKILL');
  });
});
