/**
 * `${VAR}` and `${VAR:-default}` substitution in config strings; `$${` writes a literal `${`.
 * Returns the missing variable's name instead of throwing, so the caller can say where (file,
 * line, key) it was used. The substituted text may hold secrets: callers show `text`, not `value`.
 */
export type SubstituteResult =
  | { readonly ok: true; readonly value: string; readonly substituted: boolean }
  | { readonly ok: false; readonly missing: string }
  | { readonly ok: false; readonly malformed: string };

const REFERENCE = /\$\$\{|\$\{([^}]*)\}/g;
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function substituteEnv(
  text: string,
  env: Readonly<Record<string, string | undefined>>,
): SubstituteResult {
  let missing: string | undefined;
  let malformed: string | undefined;
  let substituted = false;
  const value = text.replace(REFERENCE, (match, body: string | undefined) => {
    if (body === undefined) return '${';
    const sep = body.indexOf(':-');
    const name = sep < 0 ? body : body.slice(0, sep);
    if (!NAME.test(name)) {
      malformed ??= match;
      return match;
    }
    substituted = true;
    const v = env[name];
    if (v !== undefined && v !== '') return v;
    if (sep >= 0) return body.slice(sep + 2);
    missing ??= name;
    return match;
  });
  if (malformed !== undefined) return { ok: false, malformed };
  if (missing !== undefined) return { ok: false, missing };
  return { ok: true, value, substituted };
}
