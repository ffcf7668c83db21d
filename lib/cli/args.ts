// Tiny argv parsing shared by the model-file commands.
export interface Parsed { positional: string[]; flags: Map<string, string | true> }

/** `--name value`, `--name=value`, `-o value`; `booleans` never take a value. */
export function parseArgs(argv: readonly string[], booleans: readonly string[] = []): Parsed {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('-') && a.length > 1) {
      const eq = a.indexOf('=');
      const name = a.replace(/^--?/, '').slice(0, eq > 0 ? eq - (a.startsWith('--') ? 2 : 1) : undefined);
      if (eq > 0) flags.set(name, a.slice(eq + 1));
      else if (booleans.includes(name) || i + 1 >= argv.length) flags.set(name, true);
      else flags.set(name, argv[++i]!);
    } else {
      positional.push(a);
    }
  }
  return { positional, flags };
}

export function formatBytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 2 : 1)} ${u[i]}`;
}
