/**
 * The ONE bounded reader of an HTTP response body (fetch `Response`), used by the SCEP client
 * transport and the RA's validation webhook: a declared Content-Length over the limit is refused
 * before reading, and the stream is cancelled as soon as more than `max` bytes arrived, so a
 * hostile peer cannot make us buffer more than the limit.
 */

/** The body, or undefined when it is (or declares to be) larger than `max` bytes. */
export async function readBoundedBody(res: Response, max: number): Promise<Buffer | undefined> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > max) {
    await res.body?.cancel().catch(() => undefined);
    return undefined;
  }
  if (!res.body) return Buffer.alloc(0);
  const reader = res.body.getReader();
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel().catch(() => undefined);
      return undefined;
    }
    chunks.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
  }
  return Buffer.concat(chunks, total);
}
