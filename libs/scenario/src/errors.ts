/** Input that Lumen cannot use, naming the file and the object at fault. */
export class InputError extends Error {
  constructor(
    readonly file: string,
    readonly object: string,
    readonly reason: string,
  ) {
    super(`${file}: ${object}: ${reason}`);
    this.name = 'InputError';
  }
}
