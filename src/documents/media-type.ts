/**
 * A media type as RFC 9110 §8.3.1 compares them: type, subtype and parameter
 * names ignore case, as does a charset's value; other values are kept as sent.
 */
export function comparableMediaType(contentType: string): string {
  const [essence = '', ...parameters] = contentType.split(';');
  const normalized = parameters.map((parameter) => {
    const equals = parameter.indexOf('=');
    const name = (equals < 0 ? parameter : parameter.slice(0, equals)).trim().toLowerCase();
    const value = equals < 0 ? '' : parameter.slice(equals + 1).trim();
    return `${name}=${name === 'charset' ? value.toLowerCase() : value}`;
  });
  return [essence.trim().toLowerCase(), ...normalized].join(';');
}
