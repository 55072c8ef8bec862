// Command-line flags of the benchmark scripts (`--name value`), and the median they report.

export function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];
