/**
 * Web cache deception guard: `/account/settings/x.css` (or `/account;x.css`, `/account%2Fx.css`)
 * looks like a static file to a cache, while the origin reads it as `/account` and answers that
 * user's private page. A response whose Content-Type disagrees with the static extension of
 * its path is not stored. Pure; no I/O.
 */

/** Static extensions and the media types a genuine file of that kind is served with. */
const STATIC: Readonly<Record<string, (type: string) => boolean>> = {
  css: (t) => t === 'text/css',
  js: isScript,
  mjs: isScript,
  json: (t) => t === 'application/json' || t.endsWith('+json'),
  xml: (t) => t.endsWith('/xml') || t.endsWith('+xml'),
  txt: (t) => t === 'text/plain',
  png: isImage,
  jpg: isImage,
  jpeg: isImage,
  gif: isImage,
  webp: isImage,
  avif: isImage,
  svg: isImage,
  ico: isImage,
  bmp: isImage,
  woff: isFont,
  woff2: isFont,
  ttf: isFont,
  otf: isFont,
  eot: isFont,
  mp4: (t) => t.startsWith('video/'),
  webm: (t) => t.startsWith('video/') || t.startsWith('audio/'),
  mp3: (t) => t.startsWith('audio/'),
  pdf: (t) => t === 'application/pdf',
  zip: (t) => t === 'application/zip' || t === 'application/x-zip-compressed',
  wasm: (t) => t === 'application/wasm',
  map: (t) => t === 'application/json',
};

function isScript(type: string): boolean {
  return type.endsWith('/javascript') || type.endsWith('/ecmascript') || type === 'application/x-javascript';
}
function isImage(type: string): boolean {
  return type.startsWith('image/');
}
function isFont(type: string): boolean {
  return (
    type.startsWith('font/') ||
    type.startsWith('application/font-') ||
    type.startsWith('application/x-font-') ||
    type === 'application/vnd.ms-fontobject'
  );
}

/** The static extension a cache would read in `path` (with query), lower case, or undefined. */
export function staticExtension(path: string): string | undefined {
  const query = path.indexOf('?');
  const plain = query === -1 ? path : path.slice(0, query);
  const dot = plain.lastIndexOf('.');
  if (dot === -1 || dot < plain.lastIndexOf('/')) return undefined;
  const extension = plain.slice(dot + 1).toLowerCase();
  return extension in STATIC ? extension : undefined;
}

/**
 * Whether the response looks like another resource answered under a static-looking path:
 * its Content-Type does not fit the extension. Generic types (application/octet-stream) and
 * a missing Content-Type are given the benefit of the doubt, except that HTML never fits.
 */
export function deceptive(path: string, contentType: string | undefined): boolean {
  const extension = staticExtension(path);
  if (extension === undefined || contentType === undefined) return false;
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  if (type === 'text/html' || type === 'application/xhtml+xml') return true;
  if (type === '' || type === 'application/octet-stream') return false;
  return !STATIC[extension]!(type);
}
