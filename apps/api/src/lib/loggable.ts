/**
 * What of an error may reach the log. Drizzle's "Failed query: … params: …" message carries the
 * statement's parameters (ids, emails, ciphertexts): log the driver's cause and the SQL text only,
 * never the parameters.
 */
export function loggable(err: unknown): Record<string, unknown> {
  const e = err as { name?: string; message?: string; stack?: string; code?: string; cause?: unknown };
  const cause = e?.cause as { name?: string; message?: string; code?: string } | undefined;
  const message = String(e?.message ?? err);
  if (message.startsWith('Failed query:')) {
    const sqlText = message.slice('Failed query:'.length).split('\nparams:')[0]!.trim();
    return { type: e.name, query: sqlText, cause: cause ? { type: cause.name, message: cause.message, code: cause.code } : undefined };
  }
  return {
    type: e?.name,
    message,
    code: e?.code,
    stack: e?.stack?.split('\n').slice(0, 8).join('\n'),
    ...(cause ? { cause: loggable(cause) } : {}),
  };
}
