/** An API error, rendered as the `Status` object the real API server sends. */
export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }

  toStatus(): Record<string, unknown> {
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      details: this.details,
      code: this.code,
    };
  }

  static notFound(kind: string, group: string, plural: string, name: string): ApiError {
    return new ApiError(
      404,
      'NotFound',
      `${plural}${group ? `.${group}` : ''} "${name}" not found`,
      {
        name,
        group,
        kind: plural,
      },
    );
  }

  static alreadyExists(group: string, plural: string, name: string): ApiError {
    return new ApiError(
      409,
      'AlreadyExists',
      `${plural}${group ? `.${group}` : ''} "${name}" already exists`,
      {
        name,
        group,
        kind: plural,
      },
    );
  }

  static conflict(group: string, plural: string, name: string): ApiError {
    return new ApiError(
      409,
      'Conflict',
      `Operation cannot be fulfilled on ${plural}${group ? `.${group}` : ''} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
      { name, group, kind: plural },
    );
  }

  static invalid(
    kind: string,
    group: string,
    name: string,
    causes: readonly { field: string; message: string }[],
  ): ApiError {
    const summary = causes.map((c) => `${c.field}: ${c.message}`).join(', ');
    return new ApiError(
      422,
      'Invalid',
      `${kind}${group ? `.${group}` : ''} "${name}" is invalid: ${summary}`,
      {
        name,
        group,
        kind,
        causes: causes.map((c) => ({
          reason: 'FieldValueInvalid',
          message: c.message,
          field: c.field,
        })),
      },
    );
  }

  static badRequest(message: string): ApiError {
    return new ApiError(400, 'BadRequest', message);
  }
}
