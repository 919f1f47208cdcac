import type { FastifyInstance } from 'fastify';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * JSON bodies must be well-formed UTF-8 (RELIABILITY A6). Fastify's own parser decodes invalid
 * bytes to U+FFFD, which would silently change a password or a secret value (and make different
 * byte strings the same password); here they are refused with 400 instead. Everything else,
 * including the prototype-poisoning refusals and the body limit, is Fastify's parser as before.
 */
export function registerStrictJsonParser(app: FastifyInstance) {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    let text: string;
    try {
      text = utf8.decode(body as Buffer);
    } catch {
      done(Object.assign(new Error('The request body is not valid UTF-8.'), { statusCode: 400 }), undefined);
      return;
    }
    parseJson(request, text, done);
  });
}
