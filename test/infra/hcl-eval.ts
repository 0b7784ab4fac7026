// Evaluates the terraform expressions of terraform/*.tf, as @cdktf/hcl2json
// leaves them ("${...}" strings), for given variables: enough of the
// language to expand the multi-region configuration offline with two
// regions (for_each, for-expressions, conditionals, the functions used
// there) and check what it would create. No library does this (hcl2json
// only parses; terraform itself is not installed). Values terraform only
// knows after apply (ARNs, DNS names, module outputs) are Unknown: they keep
// the address they come from, and print as <address>.

export class Unknown {
  readonly address: string;
  constructor(address: string) {
    this.address = address;
  }
  toString(): string {
    return `<${this.address}>`;
  }
}

type Node =
  | { kind: 'literal'; value: unknown }
  | { kind: 'template'; parts: (string | Node)[] }
  | { kind: 'name'; name: string }
  | { kind: 'attribute'; of: Node; name: string }
  | { kind: 'index'; of: Node; key: Node }
  | { kind: 'call'; name: string; args: Node[] }
  | { kind: 'tuple'; items: Node[] }
  | { kind: 'object'; entries: { key: Node; value: Node }[] }
  | { kind: 'for'; object: boolean; keyVar?: string; valueVar: string; collection: Node; key?: Node; value: Node; condition?: Node }
  | { kind: 'conditional'; test: Node; then: Node; else: Node }
  | { kind: 'binary'; op: string; left: Node; right: Node }
  | { kind: 'unary'; op: string; operand: Node };

/** Resolves the first name of a reference (var, local, each, a resource type, module, data, a loop variable). */
export type Scope = (name: string) => unknown;

const BINARY: string[][] = [['||'], ['&&'], ['==', '!='], ['<=', '>=', '<', '>'], ['+', '-'], ['*', '/', '%']];

class Parser {
  private readonly source: string;
  private pos = 0;

  constructor(source: string) {
    this.source = source;
  }

  static template(text: string): Node {
    const parser = new Parser(text);
    const node = parser.templateUntil(undefined);
    return node.kind === 'template' && node.parts.length === 1 && typeof node.parts[0] !== 'string' ? node.parts[0]! : node;
  }

  private fail(message: string): never {
    throw new Error(`${message} at ${this.pos} in: ${this.source.slice(Math.max(0, this.pos - 40), this.pos + 40)}`);
  }

  private space() {
    while (this.pos < this.source.length) {
      const char = this.source[this.pos]!;
      if (/\s/.test(char)) this.pos++;
      else if (this.source.startsWith('#', this.pos) || this.source.startsWith('//', this.pos)) {
        while (this.pos < this.source.length && this.source[this.pos] !== '\n') this.pos++;
      } else break;
    }
  }

  private eat(token: string): boolean {
    this.space();
    if (!this.source.startsWith(token, this.pos)) return false;
    const after = this.source[this.pos + token.length];
    if (/^\w+$/.test(token) && after !== undefined && /\w/.test(after)) return false;
    this.pos += token.length;
    return true;
  }

  private expect(token: string) {
    if (!this.eat(token)) this.fail(`expected ${token}`);
  }

  /** Text with ${...} interpolations up to `end` (a closing quote) or the end of the source. */
  private templateUntil(end: string | undefined): Node {
    const parts: (string | Node)[] = [];
    let text = '';
    while (this.pos < this.source.length && !(end !== undefined && this.source[this.pos] === end)) {
      if (this.source.startsWith('${', this.pos)) {
        if (text) parts.push(text);
        text = '';
        this.pos += 2;
        parts.push(this.expression());
        this.expect('}');
      } else if (end !== undefined && this.source[this.pos] === '\\') {
        const escaped = this.source[this.pos + 1];
        text += escaped === 'n' ? '\n' : escaped === 't' ? '\t' : (escaped ?? '');
        this.pos += 2;
      } else text += this.source[this.pos++];
    }
    if (end !== undefined) this.expect(end);
    if (text || parts.length === 0) parts.push(text);
    return { kind: 'template', parts };
  }

  expression(): Node {
    const test = this.binary(0);
    if (!this.eat('?')) return test;
    const then = this.expression();
    this.expect(':');
    return { kind: 'conditional', test, then, else: this.expression() };
  }

  private binary(level: number): Node {
    if (level === BINARY.length) return this.unary();
    let left = this.binary(level + 1);
    for (;;) {
      this.space();
      const op = BINARY[level]!.find((candidate) => this.source.startsWith(candidate, this.pos));
      // `=>` of an object for-expression is not `>=`/`>`; `==` is not `=`.
      if (!op || this.source.startsWith('=>', this.pos)) return left;
      this.pos += op.length;
      left = { kind: 'binary', op, left, right: this.binary(level + 1) };
    }
  }

  private unary(): Node {
    if (this.eat('!')) return { kind: 'unary', op: '!', operand: this.unary() };
    if (this.eat('-')) return { kind: 'unary', op: '-', operand: this.unary() };
    return this.postfix(this.primary());
  }

  private postfix(node: Node): Node {
    for (;;) {
      this.space();
      if (this.source[this.pos] === '.' && /[A-Za-z_]/.test(this.source[this.pos + 1] ?? '')) {
        this.pos++;
        node = { kind: 'attribute', of: node, name: this.identifier() };
      } else if (this.source[this.pos] === '.' && /\d/.test(this.source[this.pos + 1] ?? '')) {
        this.pos++;
        node = { kind: 'index', of: node, key: { kind: 'literal', value: Number(this.number()) } };
      } else if (this.source[this.pos] === '[') {
        this.pos++;
        node = { kind: 'index', of: node, key: this.expression() };
        this.expect(']');
      } else return node;
    }
  }

  private identifier(): string {
    this.space();
    const match = /^[A-Za-z_][\w-]*/.exec(this.source.slice(this.pos));
    if (!match) this.fail('expected a name');
    this.pos += match[0].length;
    return match[0];
  }

  private number(): string {
    const match = /^\d+(\.\d+)?/.exec(this.source.slice(this.pos));
    if (!match) this.fail('expected a number');
    this.pos += match[0].length;
    return match[0];
  }

  private primary(): Node {
    this.space();
    const char = this.source[this.pos];
    if (char === '"') {
      this.pos++;
      return this.templateUntil('"');
    }
    if (char !== undefined && /\d/.test(char)) return { kind: 'literal', value: Number(this.number()) };
    if (this.eat('(')) {
      const inner = this.expression();
      this.expect(')');
      return inner;
    }
    if (this.eat('[')) return this.eat('for') ? this.forExpression(false, ']') : this.list(']', () => this.expression());
    if (this.eat('{')) return this.eat('for') ? this.forExpression(true, '}') : this.object();
    const name = this.identifier();
    if (name === 'true' || name === 'false') return { kind: 'literal', value: name === 'true' };
    if (name === 'null') return { kind: 'literal', value: null };
    this.space();
    if (this.source[this.pos] === '(') {
      this.pos++;
      const args = this.list(')', () => this.expression()).items;
      return { kind: 'call', name, args };
    }
    return { kind: 'name', name };
  }

  private list(end: string, item: () => Node): { kind: 'tuple'; items: Node[] } {
    const items: Node[] = [];
    while (!this.eat(end)) {
      items.push(item());
      if (!this.eat(',')) {
        this.expect(end);
        break;
      }
    }
    return { kind: 'tuple', items };
  }

  private object(): Node {
    const entries: { key: Node; value: Node }[] = [];
    while (!this.eat('}')) {
      this.space();
      const key: Node = this.source[this.pos] === '(' || this.source[this.pos] === '"' ? this.primary() : { kind: 'literal', value: this.identifier() };
      if (!this.eat('=') && !this.eat(':')) this.fail('expected = in an object');
      entries.push({ key, value: this.expression() });
      this.eat(',');
    }
    return { kind: 'object', entries };
  }

  private forExpression(object: boolean, end: string): Node {
    const first = this.identifier();
    const second = this.eat(',') ? this.identifier() : undefined;
    this.expect('in');
    const collection = this.expression();
    this.expect(':');
    const head = this.expression();
    let value = head;
    let key: Node | undefined;
    if (object) {
      this.expect('=>');
      key = head;
      value = this.expression();
    }
    const condition = this.eat('if') ? this.expression() : undefined;
    this.expect(end);
    return {
      kind: 'for',
      object,
      valueVar: second ?? first,
      ...(second ? { keyVar: first } : {}),
      collection,
      value,
      ...(key ? { key } : {}),
      ...(condition ? { condition } : {}),
    };
  }
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Unknown);

function entriesOf(collection: unknown): [unknown, unknown][] {
  if (Array.isArray(collection)) return collection.map((item, index) => [index, item]);
  if (isRecord(collection)) return Object.entries(collection);
  throw new Error(`cannot iterate over ${String(collection)}`);
}

/** An IPv4 CIDR block as [address as a number, prefix length] (IPv6, which terraform also takes, is refused here). */
function ipv4(cidr: string): [number, number] {
  const match = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(cidr);
  const octets = match?.slice(1, 5).map(Number) ?? [];
  const prefix = Number(match?.[5]);
  if (!match || octets.some((octet) => octet > 255) || prefix > 32) throw new Error(`not an IPv4 CIDR block: ${cidr}`);
  return [octets.reduce((address, octet) => address * 256 + octet, 0), prefix];
}
const dotted = (address: number) => [24, 16, 8, 0].map((shift) => Math.floor(address / 2 ** shift) % 256).join('.');

const FUNCTIONS: Record<string, (...args: any[]) => unknown> = {
  floor: (value: number) => Math.floor(value),
  length: (value) => (Array.isArray(value) ? value.length : typeof value === 'string' ? value.length : Object.keys(value).length),
  slice: (list: unknown[], start: number, end: number) => list.slice(start, end),
  toset: (list: unknown[]) => [...new Set(list)].sort(),
  tolist: (list: unknown[]) => [...list],
  sort: (list: unknown[]) => [...list].map(String).sort(),
  distinct: (list: unknown[]) => [...new Set(list)],
  contains: (list: unknown[], value: unknown) => list.includes(value),
  concat: (...lists: unknown[][]) => lists.flat(),
  flatten: (list: unknown[]) => list.flat(Number.POSITIVE_INFINITY),
  join: (separator: string, list: unknown[]) => list.map(String).join(separator),
  keys: (map: Record<string, unknown>) => Object.keys(map).sort(),
  values: (map: Record<string, unknown>) => Object.keys(map).sort().map((key) => map[key]),
  merge: (...maps: Record<string, unknown>[]) => Object.assign({}, ...maps),
  index: (list: unknown[], value: unknown) => list.indexOf(value),
  alltrue: (list: unknown[]) => list.every((value) => value === true),
  setproduct: (...lists: unknown[][]) => lists.reduce<unknown[][]>((product, list) => product.flatMap((prefix) => list.map((item) => [...prefix, item])), [[]]),
  regex: (pattern: string, text: string) => {
    const match = new RegExp(pattern).exec(text);
    if (!match) throw new Error(`no match of ${pattern}`);
    return match[0];
  },
  jsonencode: (value: unknown) => JSON.stringify(value),
  split: (separator: string, text: string) => text.split(separator),
  lookup: (map: Record<string, unknown>, key: string, fallback: unknown) => (key in map ? map[key] : fallback),
  cidrhost: (cidr: string, host: number) => {
    const [address, prefix] = ipv4(cidr);
    if (host >= 2 ** (32 - prefix)) throw new Error(`host ${host} is outside ${cidr}`);
    return dotted(address - (address % 2 ** (32 - prefix)) + host);
  },
};

export function evaluateNode(node: Node, scope: Scope): unknown {
  const evaluate = (inner: Node) => evaluateNode(inner, scope);
  switch (node.kind) {
    case 'literal':
      return node.value;
    case 'template':
      return node.parts.map((part) => (typeof part === 'string' ? part : String(evaluate(part)))).join('');
    case 'name':
      return scope(node.name);
    case 'attribute': {
      const of = evaluate(node.of);
      if (of instanceof Unknown) return new Unknown(`${of.address}.${node.name}`);
      if (!isRecord(of) || !(node.name in of)) throw new Error(`no attribute ${node.name} in ${JSON.stringify(of)}`);
      return of[node.name];
    }
    case 'index': {
      const of = evaluate(node.of);
      const key = evaluate(node.key);
      if (of instanceof Unknown) return new Unknown(`${of.address}[${JSON.stringify(key)}]`);
      const value = (of as Record<string, unknown>)?.[key as string];
      if (value === undefined) throw new Error(`no ${JSON.stringify(key)} in ${JSON.stringify(of)}`);
      return value;
    }
    case 'call': {
      // can() and try() catch the errors of their arguments.
      if (node.name === 'can') {
        try {
          evaluate(node.args[0]!);
          return true;
        } catch {
          return false;
        }
      }
      if (node.name === 'try') {
        for (const arg of node.args) {
          try {
            return evaluate(arg);
          } catch {
            // the next one
          }
        }
        throw new Error('no argument of try() evaluated');
      }
      const fn = FUNCTIONS[node.name];
      if (!fn) throw new Error(`function ${node.name} is not supported offline`);
      const args = node.args.map(evaluate);
      // Of something only apply knows (an availability zone list), the result is known after apply too.
      const unknown = args.find((arg) => arg instanceof Unknown);
      if (unknown) return new Unknown(`${node.name}(${unknown.address})`);
      return fn(...args);
    }
    case 'tuple':
      return node.items.map(evaluate);
    case 'object':
      return Object.fromEntries(node.entries.map(({ key, value }) => [String(evaluate(key)), evaluate(value)]));
    case 'for': {
      const collection = evaluate(node.collection);
      // Over something only apply knows (a certificate's validation options): known after apply too.
      if (collection instanceof Unknown) return new Unknown(`[for ${node.valueVar} in ${collection.address}]`);
      const results: [unknown, unknown][] = [];
      for (const [key, value] of entriesOf(collection)) {
        const inner: Scope = (name) => (name === node.valueVar ? value : name === node.keyVar ? key : scope(name));
        if (node.condition && evaluateNode(node.condition, inner) !== true) continue;
        results.push([node.key ? evaluateNode(node.key, inner) : key, evaluateNode(node.value, inner)]);
      }
      return node.object ? Object.fromEntries(results.map(([key, value]) => [String(key), value])) : results.map(([, value]) => value);
    }
    case 'conditional':
      return evaluate(node.test) === true ? evaluate(node.then) : evaluate(node.else);
    case 'unary': {
      const operand = evaluate(node.operand);
      return node.op === '!' ? !operand : -(operand as number);
    }
    case 'binary': {
      if (node.op === '&&') return evaluate(node.left) === true && evaluate(node.right) === true;
      if (node.op === '||') return evaluate(node.left) === true || evaluate(node.right) === true;
      const [left, right] = [evaluate(node.left), evaluate(node.right)] as [any, any];
      switch (node.op) {
        case '==':
          return JSON.stringify(left) === JSON.stringify(right);
        case '!=':
          return JSON.stringify(left) !== JSON.stringify(right);
        case '<':
          return left < right;
        case '>':
          return left > right;
        case '<=':
          return left <= right;
        case '>=':
          return left >= right;
        case '+':
          return left + right;
        case '-':
          return left - right;
        case '*':
          return left * right;
        case '/':
          return left / right;
        default:
          return left % right;
      }
    }
  }
}

/**
 * A value of the parsed configuration: a "${...}" string is evaluated, lists
 * and objects element by element, and `dynamic "x"` blocks are expanded into
 * the `x` blocks they make (each with `x.key` and `x.value` in its scope).
 */
export function evaluate(value: unknown, scope: Scope): unknown {
  if (typeof value === 'string') return value.includes('${') ? evaluateNode(Parser.template(value), scope) : value;
  if (Array.isArray(value)) return value.map((item) => evaluate(item, scope));
  if (!isRecord(value)) return value;
  const result: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) if (key !== 'dynamic') result[key] = evaluate(item, scope);
  for (const [key, item] of Object.entries(value)) {
    if (key !== 'dynamic') continue;
    for (const [name, [block]] of Object.entries(item as Record<string, [{ for_each: unknown; content: [unknown] }]>)) {
      const made = entriesOf(evaluate(block.for_each, scope)).map(([each, element]) =>
        evaluate(block.content[0], (ref) => (ref === name ? { key: each, value: element } : scope(ref))),
      );
      result[name] = [...((result[name] as unknown[] | undefined) ?? []), ...made];
    }
  }
  return result;
}
